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

from common.actor import Actor
from common.errors import WardenError
from common.net import client_ip
from tenants import services
from tenants.admin_login import ThrottledAdminAuthenticationForm
from tenants.admin_scoping import WorkspaceScopedAdmin
from tenants.models import Membership, Workspace

User = get_user_model()
# Guessing resistance on the admin login (README: "Login and key-guessing policy").
admin.site.login_form = ThrottledAdminAuthenticationForm

# Safety switches that only change through the confirmed, audited flow (DESIGN.md 5, 6).
GATED_WORKSPACE_FIELDS = ("writes_enabled", "mode", "live_after", "outbound_allowed")
EDITABLE_WORKSPACE_FIELDS = (
    "name",
    "confirmation_ttl",
    "require_two_approvals_for_irreversible",
    "plan_rank",
    "audit_retention_days",
)


def admin_actor(request) -> Actor:
    return Actor.for_user(
        request.user,
        request_id=getattr(request, "request_id", ""),
        client_ip=client_ip(request),
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
        return ("slug", *EDITABLE_WORKSPACE_FIELDS, *GATED_WORKSPACE_FIELDS, "created_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("slug", *GATED_WORKSPACE_FIELDS, "created_at")

    def save_model(self, request, obj, form, change):
        actor = admin_actor(request)
        try:
            if change:
                changes = {f: form.cleaned_data[f] for f in form.changed_data}
                if changes:
                    services.workspace_update(workspace=obj, actor=actor, changes=changes)
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
        actor = admin_actor(request)
        try:
            if change:
                if "role" in form.changed_data:
                    services.membership_change_role(
                        membership=obj, role=form.cleaned_data["role"], actor=actor
                    )
                return
            user = services.user_get_or_create(email=form.cleaned_data["email"])
            created = services.membership_add(
                workspace=obj.workspace, user=user, role=obj.role, actor=actor
            )
            obj.pk, obj.user = created.pk, user
            obj._state.adding = False
        except WardenError as exc:
            self.refuse(request, exc)

    def delete_model(self, request, obj):
        try:
            services.membership_remove(membership=obj, actor=admin_actor(request))
        except WardenError as exc:
            self.refuse(request, exc)

    def delete_queryset(self, request, queryset):
        removed = 0
        for membership in queryset.select_related("user", "workspace"):
            try:
                services.membership_remove(membership=membership, actor=admin_actor(request))
                removed += 1
            except WardenError as exc:
                self.refuse(request, exc)
        if self.refused(request) and removed:
            messages.success(request, f"Removed {removed} member(s).")

    def response_delete(self, request, obj_display, obj_id):
        if self.refused(request):
            return self._back(request, "change", obj_id)
        return super().response_delete(request, obj_display, obj_id)
