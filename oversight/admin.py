"""Oversight in the admin: the audit export destination (workspace admins; directory
destinations are chosen by platform operators only), export batches and anomaly
findings (read-only evidence). Every write goes through the services, so it is audited;
re-pointing or switching off where the evidence goes goes through the door."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from approvals.admin_door import through_door
from common.scopes import AUDIT_READ, WORKSPACE_ADMIN
from oversight import governance as export_governance
from oversight import scheduled_export
from oversight.models import AnomalyFinding, AuditExportBatch, AuditExportDestination
from tenants.admin_base import (
    AdminWrite,
    ServiceCalls,
    WardenModelAdmin,
    secret_issued_response,
)

# --- audit export -------------------------------------------------------------------


class ExportDestinationForm(forms.ModelForm):
    url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    rotate_secret = forms.BooleanField(
        required=False, help_text="Issue a new signing secret (webhook destinations)."
    )
    # Not required: a form that does not carry it keeps the current format.
    format = forms.ChoiceField(
        choices=AuditExportDestination._meta.get_field("format").choices,
        required=False,
        help_text="How each entry is written: Warden's JSONL, OCSF 1.2.0 or RFC 5424 syslog "
        "(all keep the chain fields). Changing it needs a second person.",
    )

    class Meta:
        model = AuditExportDestination
        fields = ["workspace", "kind", "directory", "url", "enabled", "batch_size", "format"]


def _destination_configure(write: AdminWrite) -> AuditExportDestination | None:
    """Created or changed alike, through the audited service. Switching the outside
    copy off is governed: it goes through the door. Only operators choose
    directories; others keep the one they have."""
    data, obj, request = write.data, write.obj, write.request
    operator = request.user.is_superuser
    adding = obj._state.adding
    # Not a field of a non-operator's form: they keep the directory they have.
    kept = "" if adding else obj.directory
    directory = (data.get("directory", "") or "") if operator else kept
    if not adding and obj.enabled is False:
        current = AuditExportDestination.objects.get(pk=obj.pk)
        if current.enabled:
            through_door(
                write.admin,
                request,
                workspace=current.workspace,
                proposal=export_governance.export_disable(current),
            )
            return None
    if not adding:
        # Re-pointing where the evidence goes is governed (closed world): the door.
        current = AuditExportDestination.objects.get(pk=obj.pk)
        wanted = {
            "kind": data["kind"],
            "directory": directory,
            "url": data.get("url", "") or "",
            "enabled": data["enabled"],
            "format": data.get("format") or current.format,
        }
        moved = {k: v for k, v in wanted.items() if getattr(current, k) != v}
        if moved:
            applied, _ = through_door(
                write.admin,
                request,
                workspace=current.workspace,
                proposal=export_governance.export_configure(current, moved),
            )
            if not applied:
                return None
    configured = scheduled_export.destination_configure(
        workspace=obj.workspace,
        kind=data["kind"],
        directory=directory,
        url=data.get("url", "") or "",
        # A new destination sends the evidence somewhere new (closed world): created
        # switched off at once, switching it on goes through the door below.
        enabled=data["enabled"] and not adding,
        batch_size=data["batch_size"],
        # A new destination starts in the format asked for; changing it later went
        # through the door above (only its batch size and secret apply here at once).
        format=data.get("format") or ("jsonl" if adding else obj.format),
        actor=write.actor,
        operator=operator,
        rotate_secret=data.get("rotate_secret", False),
        reason=write.reason,
    )
    request._warden_issued_secret = configured.secret
    if adding and data["enabled"]:
        through_door(
            write.admin,
            request,
            workspace=obj.workspace,
            proposal=export_governance.export_configure(configured.destination, {"enabled": True}),
        )
    return configured.destination


@admin.register(AuditExportDestination)
class AuditExportDestinationAdmin(WardenModelAdmin):
    view_scope = WORKSPACE_ADMIN
    change_scope = WORKSPACE_ADMIN
    writes = ServiceCalls(create=_destination_configure, update=_destination_configure)
    form = ExportDestinationForm
    list_display = (
        "workspace",
        "kind",
        "target",
        "enabled",
        "last_exported_seq",
        "last_success_at",
        "last_error",
    )
    list_select_related = ("workspace",)
    readonly_fields = (
        "last_exported_seq",
        "last_success_at",
        "last_attempt_at",
        "last_error",
        "consecutive_failures",
    )

    @admin.display(description="target")
    def target(self, obj):
        return obj.directory or obj.url

    def get_fields(self, request, obj=None):
        fields = ["kind", "url", "enabled", "format", "batch_size", "rotate_secret"]
        if request.user.is_superuser:
            fields.insert(1, "directory")
        head = ["workspace"] if obj is None else []
        tail = list(self.readonly_fields) if obj is not None else []
        return head + fields + tail

    def _issued(self, request, obj):
        secret = getattr(request, "_warden_issued_secret", None)
        if not secret:  # set only once a row holds it (created switched off, or changed)
            return None
        return secret_issued_response(
            self,
            request,
            title="Export signing secret issued: copy it now",
            what=f"the audit export of {obj.workspace}",
            secret=secret,
            back="../",
        )

    def response_add(self, request, obj, post_url_continue=None):
        issued = self._issued(request, obj)
        return issued or super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self.refused(request):
            return super().response_change(request, obj)
        return self._issued(request, obj) or super().response_change(request, obj)


@admin.register(AuditExportBatch)
class AuditExportBatchAdmin(WardenModelAdmin):
    view_scope = AUDIT_READ
    change_scope = None
    list_display = ("sent_at", "workspace", "kind", "first_seq", "last_seq", "entries", "target")
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("workspace",)
    readonly_fields = (
        "workspace",
        "kind",
        "first_seq",
        "last_seq",
        "entries",
        "sha256",
        "target",
        "sent_at",
    )
    fields = readonly_fields


@admin.register(AnomalyFinding)
class AnomalyFindingAdmin(WardenModelAdmin):
    view_scope = AUDIT_READ
    change_scope = None
    list_display = ("window_start", "workspace", "key", "kind", "exception_record")
    list_filter = ("kind", ("workspace", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("workspace", "key", "exception_record")
    readonly_fields = (
        "workspace",
        "key",
        "kind",
        "window_start",
        "window_end",
        "evidence",
        "exception_record",
        "created_at",
    )
    fields = readonly_fields
