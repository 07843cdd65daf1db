"""The admin login form: guessing resistance (tenants.login_guard) and an honest
refusal for people who may not use the admin.

A throttled account or address is refused before the password is checked, with one
message whatever the account; every refused password counts as a failure.

Django tells an active member with the right password to "enter the correct username
and password for a staff account", which reads as a wrong password. Admin access
follows roles here (tenants.services keeps `is_staff` in step with them), so the
honest answer is that the account has no role that opens the admin. It is said only
after the password was checked (it tells nothing to someone without it) and is not
counted as a failed guess."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm

from common.net import client_ip
from tenants.login_guard import LOCKOUT_MESSAGE, login_blocked, login_failed
from tenants.models import Role
from tenants.services import ADMIN_SITE_ROLES

NO_ADMIN_ACCESS = (
    "Your account has no access to the admin: ask a workspace admin for a role that "
    "includes it ({roles})."
)


LOCAL_PASSWORDS_OFF = (
    "Password login is switched off on this server: use “Log in with single sign-on”."
)


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # People sign in with their e-mail address (it is their username).
        self.fields["username"].label = "E-mail"

    def clean(self):
        if not settings.WARDEN_LOCAL_PASSWORDS:  # the deployment signs people in by SSO only
            raise forms.ValidationError(LOCAL_PASSWORDS_OFF, code="local_passwords_off")
        username = self.cleaned_data.get("username") or ""
        password = self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()
        ip = client_ip(self.request) if self.request is not None else None
        if login_blocked(username=username, ip=ip) is not None:
            raise forms.ValidationError(LOCKOUT_MESSAGE, code="throttled")
        try:
            return super().clean()
        except forms.ValidationError as exc:
            if exc.code != "no_admin_access":  # the right password is no failed guess
                login_failed(
                    username=username,
                    ip=ip,
                    request_id=getattr(self.request, "request_id", ""),
                )
            raise

    def confirm_login_allowed(self, user):
        if user.is_active and not user.is_staff:
            roles = ", ".join(str(r.label).lower() for r in Role if r in ADMIN_SITE_ROLES)
            raise forms.ValidationError(NO_ADMIN_ACCESS.format(roles=roles), code="no_admin_access")
        super().confirm_login_allowed(user)
