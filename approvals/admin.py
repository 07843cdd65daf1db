"""Minimal admin for the gate: the tool catalog (saved through the audited approvals.catalog)
and a read-only view of action requests. The approval queue lives in admin_queue
(views in admin_views)."""

from django.contrib import admin

from approvals import catalog, proposals
from approvals.admin_door import through_door
from approvals.admin_queue import register as register_approval_queue
from approvals.admin_views import pretty_json
from approvals.models import ActionRequest, Tool
from common.actor import Actor
from tenants.admin import ServiceRefusalMixin
from tenants.admin_scoping import ReadOnlyWorkspaceAdmin, WorkspaceScopedAdmin


@admin.register(Tool)
class ToolAdmin(ServiceRefusalMixin, WorkspaceScopedAdmin):
    view_permission = "manage_tools"
    change_permission = "manage_tools"
    list_display = ("name", "workspace", "level", "confirmation", "irreversible", "enabled")
    list_filter = ("level", "confirmation", "enabled", "irreversible")
    search_fields = ("name", "description")
    fields = ("workspace", *Tool.EDITABLE_FIELDS)

    def get_readonly_fields(self, request, obj=None):
        return ("workspace",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        # The same door as the API: bumps the policy version and records before/after;
        # a loosening (no confirmation, lower level, enabling...) waits for a second person.
        fields = {f: getattr(obj, f) for f in Tool.EDITABLE_FIELDS}
        if change:
            current = Tool.objects.get(pk=obj.pk)
            changes = {f: v for f, v in fields.items() if getattr(current, f) != v}
            proposal = proposals.tool_update(current, changes)
        else:
            proposal = proposals.tool_create(obj.workspace, fields)
        applied, saved = through_door(self, request, workspace=obj.workspace, proposal=proposal)
        if applied and saved is not None:
            obj.pk = saved.pk
            obj._state.adding = False

    def delete_model(self, request, obj):
        catalog.tool_delete(tool=obj, actor=Actor.for_request(request))

    def delete_queryset(self, request, queryset):
        for tool in queryset:
            catalog.tool_delete(tool=tool, actor=Actor.for_request(request))


@admin.register(ActionRequest)
class ActionRequestAdmin(ReadOnlyWorkspaceAdmin):
    view_permission = "view_audit"
    list_display = ("created_at", "tool_name", "requested_by", "decision", "status", "dry_run")
    list_filter = ("decision", "status", "dry_run")
    search_fields = ("tool_name", "requested_by", "id")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        # Params as people see them: a governed proposal's sealed values stay hidden.
        return ["shown_params" if f.name == "params" else f.name for f in self.model._meta.fields]

    @admin.display(description="params")
    def shown_params(self, obj) -> str:
        return pretty_json(obj.shown_params)


# The approval queue: ConfirmationRequest's admin is the queue (admin_queue.py).
register_approval_queue()
