"""Workspaces and memberships in the admin, scoped with guardian.

Every write goes through tenants.services, exactly as the API does, so guardian
permissions, the staff flag and the audit chain stay right. A refusal from a service
(last owner, owner-only change) is shown as an admin error message.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django.urls import reverse

from approvals import proposals
from approvals.admin_door import through_door
from common.actor import Actor
from common.errors import WardenError
from tenants import services
from tenants.admin_login import ThrottledAdminAuthenticationForm
from tenants.admin_scoping import WorkspaceScopedAdmin
from tenants.models import Membership, Workspace

User = get_user_model()
# Guessing resistance on the admin login (README: "Login and key-guessing policy").
admin.site.login_form = ThrottledAdminAuthenticationForm

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


class ServiceRefusalMixin:
    """Turns a WardenError raised by a service into an admin error message.

    The refusal is remembered on the request so the success message, the admin
    history entry and the redirect to a non-existent object are all skipped."""

    refusal_attr = "_warden_refused"

    def refuse(self, request, exc: WardenError) -> None:
        setattr(request, self.refusal_attr, True)
        self.message_user(request, exc.message, messages.ERROR)

    def refused(self, request) -> bool:
        return getattr(request, self.refusal_attr, False)

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        if self.refused(request) and level == messages.SUCCESS:
            return
        super().message_user(request, message, level, *args, **kwargs)

    def log_addition(self, request, obj, message):
        if not self.refused(request):
            return super().log_addition(request, obj, message)
        return None

    def log_change(self, request, obj, message):
        if not self.refused(request):
            return super().log_change(request, obj, message)
        return None

    def _back(self, request, name: str, *args):
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=args)
        )

    def response_add(self, request, obj, post_url_continue=None):
        if self.refused(request):
            return self._back(request, "add")
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self.refused(request):
            return self._back(request, "change", obj.pk)
        return super().response_change(request, obj)


class WorkspaceAddForm(forms.ModelForm):
    owner_email = forms.EmailField(
        label="Owner email", help_text="The first owner; the user is created if missing."
    )

    class Meta:
        model = Workspace
        fields = ["slug", "name"]


@admin.register(Workspace)
class WorkspaceAdmin(ServiceRefusalMixin, WorkspaceScopedAdmin):
    """Owners see and edit their workspaces' settings; only superusers add workspaces.
    Deleting a workspace and flipping the safety switches go through the confirmed flow,
    never a plain admin save."""

    view_permission = "manage_workspace"
    change_permission = "manage_workspace"
    workspace_field = "pk"
    list_display = ("slug", "name", "mode", "writes_enabled", "outbound_allowed", "created_at")
    search_fields = ("slug", "name")
    ordering = ("slug",)

    def get_queryset(self, request):
        qs = admin.ModelAdmin.get_queryset(self, request).filter(deleted_at__isnull=True)
        if request.user.is_superuser:
            return qs
        return qs.filter(pk__in=self.permitted_workspaces(request, self.view_permission))

    def _workspace_of(self, obj):
        return obj

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

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

    def save_model(self, request, obj, form, change):
        actor = Actor.for_request(request)
        try:
            if change:
                changes = {f: form.cleaned_data[f] for f in form.changed_data}
                if changes:
                    current = Workspace.objects.get(pk=obj.pk)
                    through_door(
                        self,
                        request,
                        workspace=current,
                        proposal=proposals.workspace_update(current, changes),
                    )
                return
            owner = services.user_get_or_create(email=form.cleaned_data["owner_email"])
            created = services.workspace_create(
                slug=obj.slug, name=obj.name, owner=owner, actor=actor
            )
            obj.pk = created.pk
            obj._state.adding = False
        except WardenError as exc:
            self.refuse(request, exc)


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


@admin.register(Membership)
class MembershipAdmin(ServiceRefusalMixin, WorkspaceScopedAdmin):
    view_permission = "manage_members"
    change_permission = "manage_members"
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

    def save_model(self, request, obj, form, change):
        if change:
            if "role" in form.changed_data:
                current = Membership.objects.select_related("user").get(pk=obj.pk)
                through_door(
                    self,
                    request,
                    workspace=obj.workspace,
                    proposal=proposals.membership_change_role(current, form.cleaned_data["role"]),
                )
            return
        user = services.user_get_or_create(email=form.cleaned_data["email"])
        if services.needs_invitation(user=user, workspace=obj.workspace):
            try:
                services.invitation_create(
                    workspace=obj.workspace,
                    user=user,
                    role=obj.role,
                    actor=Actor.for_request(request),
                )
            except WardenError as exc:
                self.refuse(request, exc)
                return
            setattr(request, self.refusal_attr, True)  # no membership yet: no "added"
            self.message_user(
                request,
                f"{user.email} belongs to another workspace: invited. They join when they "
                "accept in their own session (GET /api/v1/invitations).",
                messages.WARNING,
            )
            return
        applied, created = through_door(
            self,
            request,
            workspace=obj.workspace,
            proposal=proposals.membership_add(obj.workspace, user, obj.role),
        )
        if applied:
            obj.pk, obj.user = created.pk, user
            obj._state.adding = False

    def delete_model(self, request, obj):
        # The same door as the API: removing the last approver waits for a second person.
        through_door(
            self, request, workspace=obj.workspace, proposal=proposals.membership_remove(obj)
        )

    def delete_queryset(self, request, queryset):
        removed = 0
        for membership in queryset.select_related("user", "workspace"):
            applied, _ = through_door(
                self,
                request,
                workspace=membership.workspace,
                proposal=proposals.membership_remove(membership),
            )
            removed += applied
        if self.refused(request) and removed:
            messages.success(request, f"Removed {removed} member(s).")

    def response_delete(self, request, obj_display, obj_id):
        if self.refused(request):
            return self._back(request, "change", obj_id)
        return super().response_delete(request, obj_display, obj_id)
