"""The admin login's refusal for people who may not use the admin.

Django tells an active member with the right password to "enter the correct
username and password for a staff account", which reads as a wrong password. Admin
access follows roles here (tenants.services keeps `is_staff` in step with them), so
the honest answer is that the account has no role that opens the admin. Only said
after the password was checked: it tells nothing to someone without it."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from tenants.models import Role
from tenants.services import ADMIN_SITE_ROLES

NO_ADMIN_ACCESS = (
    "Your account has no access to the admin: ask a workspace admin for a role that "
    "includes it ({roles})."
)


class AdminLoginForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user):
        if user.is_active and not user.is_staff:
            roles = ", ".join(str(r.label).lower() for r in Role if r in ADMIN_SITE_ROLES)
            raise ValidationError(NO_ADMIN_ACCESS.format(roles=roles), code="no_admin_access")
        super().confirm_login_allowed(user)
