"""Guardian-scoped admin: a workspace admin sees and edits only rows of workspaces
where they hold the named object permission; superusers see all."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied

from tenants.models import ROLE_PERMISSIONS, Role, Workspace
from tenants.selectors import permission_checker, workspaces_with_permission


def permission_missing(perm: str) -> PermissionDenied:
    """A refusal that says which permission is missing and which roles carry it; the
    admin's 403 page (common.views.permission_denied) shows the message."""
    description = dict(Workspace._meta.permissions).get(perm, perm)
    roles = ", ".join(str(role.label) for role in Role if perm in ROLE_PERMISSIONS[role])
    return PermissionDenied(
        f"This page needs the permission “{description}” ({perm}) in a workspace. "
        f"Roles that have it: {roles or 'none'}. Ask a workspace admin if you need it."
    )


def holds_in(request, perm: str, workspace) -> bool:
    """Whether the admin user holds `perm` in `workspace`. One guardian checker per
    request: a page asks view/change/delete for the same object several times, and the
    first question fetches all of that workspace's permissions (two statements)."""
    checker = request.__dict__.get("_warden_permission_checker")
    if checker is None:
        checker = request._warden_permission_checker = permission_checker(request.user)
    return checker.has_perm(perm, workspace)


class BoundedChangeList(ChangeList):
    """Django's date drill-down computes the end of the chosen period outside its own
    error handling: `?created_at__year=9999` raises ValueError and `&created_at__month=12`
    OverflowError (a 500). Treat them as any bad lookup: back to the list with `?e=1`."""

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class WorkspaceScopedAdmin(admin.ModelAdmin):
    # Guardian permission (on Workspace) needed to view rows of this admin.
    view_permission: str = "manage_workspace"
    # Permission needed to add/change/delete; None makes the admin read-only.
    change_permission: str | None = "manage_workspace"
    workspace_field = "workspace"

    def get_changelist(self, request, **kwargs):
        return BoundedChangeList

    def permitted_workspaces(self, request, perm: str):
        return workspaces_with_permission(user=request.user, perm=perm)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(
            **{
                f"{self.workspace_field}__in": self.permitted_workspaces(
                    request, self.view_permission
                )
            }
        )

    def _workspace_of(self, obj):
        for part in self.workspace_field.split("__"):
            obj = getattr(obj, part)
        return obj

    def _holds(self, request, perm: str | None, obj=None) -> bool:
        if perm is None:
            return False
        if not request.user.is_active or not request.user.is_staff:
            return False
        if request.user.is_superuser:
            return True
        if obj is None:
            # "Holds `perm` in any workspace" is asked for every model on every admin
            # page (index, sidebar): one guardian query per permission per request.
            held = request.__dict__.setdefault("_warden_holds_anywhere", {})
            if perm not in held:
                held[perm] = self.permitted_workspaces(request, perm).exists()
            return held[perm]
        return holds_in(request, perm, self._workspace_of(obj))

    def has_module_permission(self, request):
        return self._holds(request, self.view_permission)

    def has_view_permission(self, request, obj=None):
        return self._holds(request, self.view_permission, obj) or self.has_change_permission(
            request, obj
        )

    def has_add_permission(self, request):
        return self._holds(request, self.change_permission)

    def has_change_permission(self, request, obj=None):
        return self._holds(request, self.change_permission, obj)

    def has_delete_permission(self, request, obj=None):
        return self._holds(request, self.change_permission, obj)

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except PermissionDenied as exc:
            raise (exc if str(exc) else permission_missing(self.view_permission)) from None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PermissionDenied as exc:
            perm = self.view_permission if object_id else self.change_permission
            raise (exc if str(exc) or not perm else permission_missing(perm)) from None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Only offer workspaces the admin may change.
        if db_field.name == "workspace" and not request.user.is_superuser:
            kwargs["queryset"] = self.permitted_workspaces(request, self.change_permission)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyWorkspaceAdmin(WorkspaceScopedAdmin):
    """Evidence views: no add, change or delete for anyone, superusers included."""

    change_permission = None

    def has_view_permission(self, request, obj=None):
        return self._holds(request, self.view_permission, obj)
