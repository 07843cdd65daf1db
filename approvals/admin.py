"""Minimal admin for the gate: the tool catalog (saved through the audited approvals.catalog)
and a read-only view of action requests. The approval queue lives in admin_queue
(views in admin_views)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html_join

from approvals import catalog, gate, personal_data, proposals
from approvals.admin_door import through_door
from approvals.admin_queue import register as register_approval_queue
from approvals.admin_views import pretty_json
from approvals.models import ActionRequest, PolicyVersion, Tool
from approvals.policy.document import export_document
from approvals.policy.selectors import document_diff, policy_version_neighbours
from common.scopes import AUDIT_READ, TOOLS_WRITE
from tenants.admin_base import AdminWrite, ServiceCalls, WardenModelAdmin


def _tool_fields(write: AdminWrite) -> dict:
    return {f: getattr(write.obj, f) for f in Tool.EDITABLE_FIELDS}


def _through_door(write: AdminWrite, proposal) -> Tool | None:
    """The same door as the API: bumps the policy version and records before/after; a
    loosening (no confirmation, lower level, enabling...) waits for a second person."""
    applied, saved = through_door(
        write.admin, write.request, workspace=write.obj.workspace, proposal=proposal
    )
    return saved if applied else None


def _tool_create(write: AdminWrite) -> Tool | None:
    return _through_door(write, proposals.tool_create(write.obj.workspace, _tool_fields(write)))


def _tool_update(write: AdminWrite) -> Tool | None:
    current = Tool.objects.get(pk=write.obj.pk)
    changes = {f: v for f, v in _tool_fields(write).items() if getattr(current, f) != v}
    return _through_door(write, proposals.tool_update(current, changes))


def _tool_delete(write: AdminWrite) -> None:
    catalog.tool_delete(tool=write.obj, actor=write.actor, reason=write.reason)


@admin.register(Tool)
class ToolAdmin(WardenModelAdmin):
    view_scope = TOOLS_WRITE
    change_scope = TOOLS_WRITE
    writes = ServiceCalls(create=_tool_create, update=_tool_update, delete=_tool_delete)
    list_display = ("name", "workspace", "level", "waits_for_a_human", "irreversible", "enabled")
    list_filter = ("level", "confirmation", "enabled", "irreversible")
    search_fields = ("name", "description")
    fields = ("workspace", *Tool.EDITABLE_FIELDS)

    def get_readonly_fields(self, request, obj=None):
        return ("workspace", "waits_for_a_human") if obj is not None else ()

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return (*fields, "waits_for_a_human") if obj is not None else fields

    @admin.display(description="Waits for a human")
    def waits_for_a_human(self, tool: Tool) -> str:
        """The effective rule (floor and outbound applied), not the tool's own field:
        the same answer as posture and the agent's GET /tools."""
        effective = gate.tool_confirmation(tool.workspace, tool)
        label = {"always": "Always", "conditional": "When the condition holds", "never": "Never"}
        return f"{label[effective.rule]} ({effective.reason})"


@admin.register(ActionRequest)
class ActionRequestAdmin(WardenModelAdmin):
    view_scope = AUDIT_READ
    change_scope = None
    list_display = ("created_at", "tool_name", "requested_by", "decision", "status", "dry_run")
    list_filter = ("decision", "status", "dry_run")
    search_fields = ("tool_name", "requested_by", "id")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    # Ciphertext and the wrapped data key (approvals.personal_data) mean nothing to people:
    # the params and the reported output are shown opened, or "(erased)".
    HIDDEN = frozenset({"data_key", "sealed_params", "sealed_output", "subject_digest"})

    def get_readonly_fields(self, request, obj=None):
        # Params as people see them: a governed proposal's sealed values stay hidden.
        fields = []
        for f in self.model._meta.fields:
            if f.name == "plain_params":
                fields.append("shown_params")
            elif f.name == "result_output":
                fields.append("shown_output")
            elif f.name not in self.HIDDEN:
                fields.append(f.name)
        return fields

    @admin.display(description="params")
    def shown_params(self, obj) -> str:
        return pretty_json(obj.shown_params)

    @admin.display(description="result output")
    def shown_output(self, obj) -> str:
        if obj.is_erased:
            return personal_data.ERASED
        output = obj.reported_output if obj.sealed_output else obj.result_output
        return pretty_json(output)


@admin.register(PolicyVersion)
class PolicyVersionAdmin(WardenModelAdmin):
    """Policy versions (policy as code), read-only: who proposed, who approved, the
    diff, the whole document, and how it differs from the policy now. Rolling back is
    `POST /api/v1/policy/versions/<n>/rollback` or `manage.py policy rollback`."""

    view_scope = TOOLS_WRITE
    change_scope = None
    list_display = ("number", "created_at", "workspace", "source", "author", "changes_count")
    list_filter = ("source",)
    list_select_related = ("workspace",)
    ordering = ("-created_at", "-number")
    date_hierarchy = "created_at"
    fields = (
        "workspace",
        "number",
        "created_at",
        "source",
        "author",
        "approvers",
        "reason",
        "operations",
        "policy_version",
        "request",
        "neighbours",
        "diff_pretty",
        "diff_to_current",
        "document_pretty",
    )

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description="changes")
    def changes_count(self, obj) -> int:
        return len(obj.diff or {})

    @admin.display(description="other versions")
    def neighbours(self, obj) -> str:
        """The versions before and after, to walk the history page by page."""
        links = [
            (label, reverse("admin:approvals_policyversion_change", args=[v.pk]), v.number)
            for label, v in zip(
                ("previous", "next"), policy_version_neighbours(version=obj), strict=True
            )
            if v is not None
        ]
        if not links:
            return "-"
        return format_html_join(" · ", '{} <a href="{}">version {}</a>', links)

    @admin.display(description="diff")
    def diff_pretty(self, obj) -> str:
        return pretty_json(obj.diff)

    @admin.display(description="differs from the policy now")
    def diff_to_current(self, obj) -> str:
        return pretty_json(document_diff(obj.document, export_document(obj.workspace)))

    @admin.display(description="document")
    def document_pretty(self, obj) -> str:
        return pretty_json(obj.document)


# The approval queue: ConfirmationRequest's admin is the queue (admin_queue.py).
register_approval_queue()
