"""Workspaces and memberships in the admin, scoped with guardian.

Every write goes through tenants.services or the governed-operation door, exactly as
the API does, so guardian permissions, the staff flag and the audit chain stay right.
A refusal from a service (last owner, owner-only change) is shown as an admin error
message (tenants.admin_base).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from approvals import proposals
from approvals.admin_door import through_door
from common.scopes import MEMBERS_WRITE, WORKSPACE_ADMIN
from tenants import services
from tenants.admin_base import AdminWrite, ServiceCalls, WardenModelAdmin
from tenants.admin_login import ThrottledAdminAuthenticationForm
from tenants.models import Membership, Workspace

User = get_user_model()
# Guessing resistance on the admin login (docs: "Login and key-guessing policy").
admin.site.login_form = ThrottledAdminAuthenticationForm
# Says which request a signed review link will open once logged in.
admin.site.login_template = "admin/warden_login.html"


def _history_behind_permission(base: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """Django's stock history view looks the object up before it asks for permission,
    so any staff user (every workspace role but `member`) could tell which user and
    group ids exist: 403 for one that does, a redirect for one that does not. Asking
    first gives both the same 403 (tests/security/test_tenant_matrix.py)."""

    class PermissionFirstAdmin(base):
        def history_view(self, request, object_id, extra_context=None):
            if not self.has_view_or_change_permission(request):
                raise PermissionDenied
            return super().history_view(request, object_id, extra_context)

    PermissionFirstAdmin.__name__ = f"PermissionFirst{base.__name__}"
    return PermissionFirstAdmin


for _model, _admin in ((User, UserAdmin), (Group, GroupAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, _history_behind_permission(_admin))

# Every setting is edited through the governed-operation door, as on the API: the
# registry (approvals.governance), not this list, decides which change waits for a
# second person.
EDITABLE_WORKSPACE_FIELDS = (
    "name",
    "writes_enabled",
    "mode",
    "live_after",
    "outbound_allowed",
    "sensitivity_floor",
    "confirmation_ttl",
    "require_two_approvals_for_irreversible",
    "plan_rank",
    "audit_retention_days",
    "plain_copy_retention_days",
)


class WorkspaceAddForm(forms.ModelForm):
    owner_email = forms.EmailField(
        label="Owner email", help_text="The first owner; the user is created if missing."
    )

    class Meta:
        model = Workspace
        fields = ["slug", "name"]


def _workspace_create(write: AdminWrite) -> Workspace:
    owner = services.user_get_or_create(email=write.data["owner_email"])
    return services.workspace_create(
        slug=write.obj.slug,
        name=write.obj.name,
        owner=owner,
        actor=write.actor,
        reason=write.reason,
    )


def _workspace_update(write: AdminWrite) -> None:
    if write.changed:
        current = Workspace.objects.get(pk=write.obj.pk)
        through_door(
            write.admin,
            write.request,
            workspace=current,
            proposal=proposals.workspace_update(current, write.changed),
        )


@admin.register(Workspace)
class WorkspaceAdmin(WardenModelAdmin):
    """Owners see and edit their workspaces' settings; only superusers add workspaces.
    Deleting a workspace and flipping the safety switches go through the confirmed flow,
    never a plain admin save (no delete call here)."""

    view_scope = WORKSPACE_ADMIN
    change_scope = WORKSPACE_ADMIN
    workspace_field = "pk"
    writes = ServiceCalls(create=_workspace_create, update=_workspace_update)
    list_display = ("slug", "name", "mode", "writes_enabled", "outbound_allowed", "created_at")
    search_fields = ("slug", "name")
    ordering = ("slug",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = WorkspaceAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("slug", "name", "owner_email")
        return ("slug", *EDITABLE_WORKSPACE_FIELDS, "created_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("slug", "created_at")


class MembershipAddForm(forms.ModelForm):
    email = forms.EmailField(
        max_length=254, help_text="The member's email; the user is created if missing."
    )

    class Meta:
        model = Membership
        fields = ["workspace", "role"]

    def clean(self):
        cleaned = super().clean()
        workspace, email = cleaned.get("workspace"), cleaned.get("email")
        if (
            workspace
            and email
            and Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists()
        ):
            raise forms.ValidationError("This user is already a member of this workspace.")
        return cleaned


def _membership_add(write: AdminWrite) -> Membership | None:
    """A person of another workspace is invited (they accept in their own session);
    anyone else is added through the door, as on the API."""
    admin_, request, obj = write.admin, write.request, write.obj
    user = services.user_get_or_create(email=write.data["email"])
    if services.needs_invitation(user=user, workspace=obj.workspace):
        # Offering a role that may approve is governed like adding one (the door).
        applied, _ = through_door(
            admin_,
            request,
            workspace=obj.workspace,
            proposal=proposals.invitation_create(obj.workspace, user, obj.role),
        )
        if not applied:
            return None
        admin_.withhold_success(request)  # no membership yet: no "added"
        admin_.message_user(
            request,
            f"{user.email} belongs to another workspace: invited. They join when they "
            "accept in their own session (GET /api/v1/invitations).",
            messages.WARNING,
        )
        return None
    applied, created = through_door(
        admin_,
        request,
        workspace=obj.workspace,
        proposal=proposals.membership_add(obj.workspace, user, obj.role),
    )
    return created if applied else None


def _membership_change_role(write: AdminWrite) -> None:
    if "role" in write.changed:
        current = Membership.objects.select_related("user").get(pk=write.obj.pk)
        through_door(
            write.admin,
            write.request,
            workspace=write.obj.workspace,
            proposal=proposals.membership_change_role(current, write.changed["role"]),
        )


def _membership_remove(write: AdminWrite) -> bool:
    # The same door as the API: removing the last approver waits for a second person.
    applied, _ = through_door(
        write.admin,
        write.request,
        workspace=write.obj.workspace,
        proposal=proposals.membership_remove(write.obj),
    )
    return applied


@admin.register(Membership)
class MembershipAdmin(WardenModelAdmin):
    view_scope = MEMBERS_WRITE
    change_scope = MEMBERS_WRITE
    writes = ServiceCalls(
        create=_membership_add, update=_membership_change_role, delete=_membership_remove
    )
    deleted_message = "Removed {count} member(s)."
    list_display = ("email", "workspace", "role", "created_at")
    list_filter = ("role", ("workspace", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__email",)
    list_select_related = ("user", "workspace")
    ordering = ("workspace__slug", "user__email")

    @admin.display(ordering="user__email", description="email")
    def email(self, obj):
        return obj.user.email

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = MembershipAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("workspace", "email", "role")
        return ("workspace", "email", "role", "created_at")

    def get_readonly_fields(self, request, obj=None):
        # Never a user picker: it would list every user of every tenant.
        if obj is None:
            return ()
        return ("workspace", "email", "created_at")
