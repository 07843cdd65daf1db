"""Connectors in the admin, saved through gateway.services. Header values are
write-only: the form never renders them (not even after a validation error)."""

import json

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from approvals import gate
from approvals.admin_door import through_door
from common.errors import WardenError
from common.scopes import AUDIT_READ, CONNECTORS_READ, CONNECTORS_WRITE
from gateway import governance, services
from gateway.models import Connector, Execution
from tenants.admin_base import AdminWrite, ServiceCalls, WardenModelAdmin


class WriteOnlyTextarea(forms.Textarea):
    def format_value(self, value):
        return ""


class ConnectorForm(forms.ModelForm):
    headers = forms.CharField(
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="Write-only, one header a line: <code>Authorization: Bearer …</code> or "
        "<code>Authorization: env:WARDEN_CRED_CRM</code> (a JSON object works too). "
        "Replaces all headers; blank keeps them.",
    )

    class Meta:
        model = Connector
        fields = ("workspace", "name", "kind", "url", "declared_tools", "enabled")

    def clean_headers(self):
        raw = (self.cleaned_data.get("headers") or "").strip()
        if not raw:
            return None
        if raw.startswith("{"):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                raise forms.ValidationError("Headers must be a JSON object.") from None
            if not isinstance(value, dict):
                raise forms.ValidationError("Headers must be a JSON object.")
            return value
        headers = {}
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                # Never echo the line: it may hold a credential.
                raise forms.ValidationError(f"Line {number} is not 'Name: value'.")
            headers[name.strip()] = value.strip()
        return headers

    def validate_unique(self):
        """The service checks uniqueness (and answers with a message)."""


def _connector_through_door(write: AdminWrite, workspace, proposal) -> Connector | None:
    """Through the governed-operation door, like the API: a new connector, a new URL or
    new credential values wait for another person's approval."""
    applied, saved = through_door(
        write.admin, write.request, workspace=workspace, proposal=proposal
    )
    return saved if applied else None


def _connector_create(write: AdminWrite) -> Connector | None:
    data = write.data
    fields = {
        "name": data["name"],
        "kind": data["kind"],
        "url": data["url"],
        "headers": data.get("headers") or {},
        "declared_tools": data["declared_tools"],
        "enabled": data["enabled"],
    }
    workspace = data["workspace"]
    return _connector_through_door(write, workspace, governance.connector_create(workspace, fields))


def _connector_update(write: AdminWrite) -> Connector | None:
    data = write.data
    changes = {k: data[k] for k in ("url", "declared_tools", "enabled") if k in data}
    if data.get("headers") is not None:
        changes["headers"] = data["headers"]
    current = Connector.objects.get(pk=write.obj.pk)
    return _connector_through_door(
        write, write.obj.workspace, governance.connector_update(current, changes)
    )


def _connector_delete(write: AdminWrite) -> None:
    services.connector_delete(connector=write.obj, actor=write.actor, reason=write.reason)


@admin.register(Connector)
class ConnectorAdmin(WardenModelAdmin):
    form = ConnectorForm
    view_scope = CONNECTORS_READ
    change_scope = CONNECTORS_WRITE
    writes = ServiceCalls(
        create=_connector_create, update=_connector_update, delete=_connector_delete
    )
    list_display = ("name", "workspace", "kind", "url", "enabled", "last_synced_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "url")
    readonly_fields = ("header_names_shown", "tools_shown", "last_synced_at", "created_at")
    actions = ["sync_selected"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("workspace", "name", "kind", "url", "headers", "declared_tools", "enabled")
        # An MCP connector's tools come from the upstream's tools/list (sync), not from
        # a declared list: the field would only ever read "[]".
        declared = ("declared_tools",) if obj.kind != Connector.Kind.MCP else ()
        return ("url", "headers", *declared, "enabled", *self.readonly_fields)

    @admin.display(description="credential headers (values write-only)")
    def header_names_shown(self, obj):
        return ", ".join(obj.header_names) or "none"

    @admin.display(description="tools")
    def tools_shown(self, obj):
        """The catalog tools this connector backs, with what each does for an agent."""
        tools = list(obj.tools.select_related("workspace").order_by("name"))
        if not tools:
            return "None imported yet: run “Import the upstream catalog”."
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a> — {}, {}; waits for a human: {}</li>',
            (
                (
                    reverse("admin:approvals_tool_change", args=[tool.pk]),
                    tool.name,
                    tool.level,
                    "enabled" if tool.enabled else "disabled (not callable until reviewed)",
                    gate.tool_confirmation(tool.workspace, tool).rule,
                )
                for tool in tools
            ),
        )
        return format_html('<ul class="warden-connector-tools">{}</ul>', rows)

    @admin.action(description="Import the upstream catalog (new tools start disabled)")
    def sync_selected(self, request, queryset):
        for connector in queryset:
            if not self.has_change_permission(request, connector):
                continue
            try:
                report = services.connector_sync(connector=connector, actor=self.actor(request))
            except WardenError as exc:
                self.message_user(request, f"{connector.name}: {exc.message}", messages.ERROR)
                continue
            summary = ", ".join(f"{k}: {len(v)}" for k, v in report.items())
            self.message_user(request, f"{connector.name}: {summary}", messages.SUCCESS)


@admin.register(Execution)
class ExecutionAdmin(WardenModelAdmin):
    view_scope = AUDIT_READ
    change_scope = None
    list_display = ("started_at", "upstream_tool", "connector", "status", "latency_ms")
    list_filter = ("status",)
    list_select_related = ("connector", "workspace")

    def get_readonly_fields(self, request, obj=None):
        return [
            "withheld_shown" if f.name == "withheld" else f.name for f in self.model._meta.fields
        ]

    @admin.display(description="withheld from the agent (output projection)")
    def withheld_shown(self, obj):
        """What the tool's output projection kept from the agent: where, how large, and
        the keyed digest; the values themselves were never kept."""
        if obj.withheld is None:
            return "Nothing: the tool has no output projection."
        entries = obj.withheld.get("entries") or []
        count = obj.withheld.get("count", len(entries))
        if not count:
            return "Nothing: every field of the result is on the projection."
        rows = format_html_join(
            "",
            "<li><code>{}</code> — {} bytes, {}</li>",
            ((e.get("path"), e.get("bytes"), e.get("digest")) for e in entries),
        )
        more = f" (the first {len(entries)} listed)" if count > len(entries) else ""
        return format_html(
            '{} value(s) withheld{}:<ul class="warden-withheld">{}</ul>', count, more, rows
        )
