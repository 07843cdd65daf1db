"""Read-only evidence in the admin: audit entries, approval records, exception records
and version logs, scoped by guardian `view_audit`; nobody (superusers included) may
add, change or delete them here. Plus the chain verification button. (The privacy
summary's pages are oversight's: oversight/admin_views.py, at the same addresses.)"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from approvals.models import ActionRequest, ApprovalRecord, Tool
from approvals.policy.selectors import policy_version_for
from audit.attachments import attachment_add, target_type_of
from audit.models import AuditAction, AuditEntry, EvidenceAttachment, ExceptionRecord, VersionLog
from audit.selectors import attachments_of, audit_entries
from audit.services import exception_resolve
from common.errors import WardenError
from common.scopes import APPROVALS_DECIDE, AUDIT_READ, PRIVACY_DOWNLOAD, SCOPE_PERMISSION
from common.text import reveal_invisible_html
from keys.models import MachineKey
from notifications.services import chain_verification_run
from oversight.tasks import verify_chain_task
from tenants.admin_base import WardenModelAdmin, holds_in, permission_missing

# The permissions of these pages, read from the API's scope table.
VIEW_AUDIT = SCOPE_PERMISSION[AUDIT_READ]
DOWNLOAD_PRIVACY_SUMMARY = SCOPE_PERMISSION[PRIVACY_DOWNLOAD]
DECIDE = SCOPE_PERMISSION[APPROVALS_DECIDE]


def _pretty(value: Any):
    """JSON evidence, indented and escaped (agent-supplied text stays data), hidden
    characters shown as markers."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="warden-json">{}</pre>', reveal_invisible_html(text))


class ActorPrefixFilter(admin.SimpleListFilter):
    title = "actor kind"
    parameter_name = "actor_prefix"

    def lookups(self, request, model_admin):
        return (("key:", "key: (agents)"), ("user:", "user: (humans)"), ("system:", "system:"))

    def queryset(self, request, queryset):
        value = self.value()
        if value in ("key:", "user:", "system:"):
            return queryset.filter(actor_type=value[:-1])
        return queryset


class WorkspaceFilter(admin.SimpleListFilter):
    """Workspaces the user may read evidence of (from guardian, not a DISTINCT scan)."""

    title = "workspace"
    parameter_name = "workspace"

    def lookups(self, request, model_admin):
        return [
            (ws.slug, ws.name)
            for ws in model_admin.permitted_workspaces(request, model_admin.view_permission)
        ]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(workspace__slug=self.value())
        return queryset


class ToolFilter(admin.SimpleListFilter):
    """Tools offered from the catalogs the user can see; any ?tool= value still works
    (for tools since removed from a catalog)."""

    title = "tool"
    parameter_name = "tool"

    def lookups(self, request, model_admin):
        workspaces = model_admin.permitted_workspaces(request, model_admin.view_permission)
        names = (
            Tool.objects.filter(workspace__in=workspaces)
            .order_by("name")
            .values_list("name", flat=True)
            .distinct()
        )
        names = list(names)
        choices = [(name, name) for name in names]
        if self.value() and self.value() not in names:
            choices.append((self.value(), self.value()))
        return choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(tool=self.value())
        return queryset


class DecisionFilter(admin.SimpleListFilter):
    title = "decision"
    parameter_name = "decision"
    DECISIONS = (
        ("allowed", "allowed"),
        ("denied", "denied"),
        ("requires_confirmation", "requires confirmation"),
        ("approve", "approve (human)"),
        ("deny", "deny (human)"),
        ("expired", "expired"),
        ("ok", "chain ok"),
        ("broken", "chain broken"),
    )

    def lookups(self, request, model_admin):
        return self.DECISIONS

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(decision=self.value())
        return queryset


class ResolvedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return (("no", "open"), ("yes", "resolved"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "no")
        return queryset


class EvidenceAdmin(WardenModelAdmin):
    """Evidence: readable with audit:read, never added, changed or deleted here."""

    view_scope = AUDIT_READ
    change_scope = None
    list_per_page = 50
    show_full_result_count = False  # no second COUNT over a large, filtered table
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)

    def get_list_filter(self, request):
        return [WorkspaceFilter, *self.list_filter]

    @admin.display(description="when", ordering="created_at")
    def when(self, obj):
        return _time_with_zone(obj.created_at)

    def get_search_results(self, request, queryset, search_term):
        """The one search field (a request id, an approver, a target id) is matched
        exactly, through its index: no LIKE scan over a large evidence table."""
        term = search_term.strip()
        if not term or not self.search_fields:
            return queryset, False
        [field] = self.search_fields
        return queryset.filter(**{field: term}), False


class AttachableEvidenceAdmin(EvidenceAdmin):
    """Evidence with attachment links (URL + SHA-256): listed on its page and added at
    `<pk>/attach/` through the same audited service as the API. Anyone who may see the
    object (view_audit in its workspace) may attach a link to it."""

    @admin.display(description="attachments")
    def attachments_shown(self, obj):
        rows = attachments_of(
            workspace=obj.workspace, target_type=target_type_of(obj), target_id=obj.pk
        )
        items = format_html_join(
            "",
            '<li><a href="{}" rel="noopener noreferrer nofollow">{}</a> '
            "<code>sha256:{}</code> ({}, {})</li>",
            (
                (a.url, a.title or a.url, a.sha256, a.added_by, _time_with_zone(a.created_at))
                for a in rows
            ),
        )
        return format_html("<ul>{}</ul>", items) if items else "none"

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/attach/",
                self.admin_site.admin_view(self.attach_view),
                name=f"{opts.app_label}_{opts.model_name}_attach",
            ),
            *super().get_urls(),
        ]

    def attach_view(self, request, object_id):
        obj = (
            self.get_queryset(request).filter(pk=object_id).first()
            if _valid_pk(self.model, object_id)
            else None
        )
        if obj is None:
            raise Http404("Not found.")
        opts = self.model._meta
        change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        values = {"url": "", "sha256": "", "title": ""}
        if request.method == "POST":
            values = {name: (request.POST.get(name) or "").strip() for name in values}
            try:
                attachment_add(
                    workspace=obj.workspace, target=obj, actor=self.actor(request), **values
                )
            except WardenError as exc:
                problems = "; ".join(
                    f"{field}: {' '.join(map(str, msgs))}" for field, msgs in exc.detail.items()
                )
                messages.error(request, f"Not attached: {problems or exc.message}")
            else:
                messages.success(request, f"Link attached to {opts.verbose_name} {obj.pk}.")
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "title": f"Attach a link to {opts.verbose_name} {obj.pk}",
            "original": obj,
            "change_url": change_url,
            "values": values,
        }
        return TemplateResponse(request, "admin/audit/attach.html", context)


def _valid_pk(model, value) -> bool:
    try:
        model._meta.pk.to_python(value)
    except ValidationError:
        return False
    return True


def actor_names(entries) -> dict[tuple[Any, str], str]:
    """Readable names for the actors of `entries`, keyed by (workspace id, actor):
    "key:<id>" -> the key's name (a key of the entry's own workspace only),
    "user:<email>" -> the person's name. At most two queries for any page size."""
    key_ids, emails = set(), set()
    for entry in entries:
        kind, _, ident = entry.actor.partition(":")
        if kind == "key":
            try:
                key_ids.add(uuid.UUID(ident))
            except ValueError:
                continue
        elif kind == "user":
            emails.add(ident)
    workspaces = {entry.workspace_id for entry in entries}
    names = {}
    if key_ids:
        for pk, workspace_id, name in MachineKey.objects.filter(
            pk__in=key_ids, workspace_id__in=workspaces
        ).values_list("pk", "workspace_id", "name"):
            names[(workspace_id, f"key:{pk}")] = name
    people = {}
    if emails:
        for email, first, last in (
            get_user_model()
            .objects.filter(email__in=emails)
            .values_list("email", "first_name", "last_name")
        ):
            if f"{first} {last}".strip():
                people[f"user:{email}"] = f"{first} {last}".strip()
    for entry in entries:
        if entry.actor in people:
            names[(entry.workspace_id, entry.actor)] = people[entry.actor]
    return names


def _identifier_html(value: Any):
    """An identifier (tool name, action, decision), revealed, that may wrap only after
    `.`, `_` or `/`: never inside a word ("billing.ref/und" at 1280 px)."""
    parts, current = [], ""
    for char in "" if value is None else str(value):
        current += char
        if char in "._/":
            parts.append(current)
            current = ""
    parts.append(current)
    return format_html_join(mark_safe("<wbr>"), "{}", ((reveal_invisible_html(p),) for p in parts))


def _time_with_zone(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z") if value else ""


@admin.register(AuditEntry)
class AuditEntryAdmin(EvidenceAdmin):
    # What happened first (tool, decision, outcome, request id), so it fits 1280 px.
    list_display = (
        "when",
        "tool_shown",
        "decision_shown",
        "outcome",
        "request_id",
        "actor_shown",
        "action_shown",
        "workspace",
        "seq",
    )
    list_select_related = ("workspace",)
    list_filter = (ActorPrefixFilter, "action", ToolFilter, DecisionFilter)
    date_hierarchy = "created_at"
    search_fields = ("request_id",)
    search_help_text = "Exact request id (X-Request-Id)."
    ordering = ("-created_at", "-seq")
    readonly_fields = (
        "input_pretty",
        "when",
        "tool_shown",
        "rationale_shown",
        "target_shown",
        "request_link",
        "policy_version_link",
    )
    fields = (
        "workspace",
        "seq",
        "when",
        "actor",
        "actor_type",
        "action",
        "target_type",
        "target_shown",
        "request_link",
        "tool_shown",
        "input_pretty",
        "decision",
        "rationale_shown",
        "policy_version",
        "policy_version_link",
        "request_id",
        "client_ip",
        "outcome",
        "prev_hash",
        "hash",
    )

    @admin.display(description="input")
    def input_pretty(self, obj):
        return _pretty(obj.input)

    @admin.display(description="tool", ordering="tool")
    def tool_shown(self, obj):
        return _identifier_html(obj.tool)

    @admin.display(description="decision", ordering="decision")
    def decision_shown(self, obj):
        return _identifier_html(obj.decision)

    @admin.display(description="action", ordering="action")
    def action_shown(self, obj):
        return _identifier_html(obj.action)

    @admin.display(description="action request")
    def request_link(self, obj):
        """The request an approval, denial, expiry or decision is about, one click away."""
        request_id = (obj.input or {}).get("action_request") or (
            obj.target_id if obj.target_type == "action_request" else ""
        )
        if not _valid_pk(ActionRequest, request_id):
            return "—"
        url = reverse("admin:approvals_actionrequest_change", args=[request_id])
        return format_html('<a href="{}">{}</a>', url, request_id)

    @admin.display(description="policy file version")
    def policy_version_link(self, obj):
        """The policy-as-code version in force when this entry was recorded, one click
        away (the latest version applied at or before its catalog counter)."""
        if obj.policy_version is None:
            return "—"
        version = policy_version_for(workspace=obj.workspace, policy_version=obj.policy_version)
        if version is None:
            return "—"
        url = reverse("admin:approvals_policyversion_change", args=[version.pk])
        return format_html('<a href="{}">version {}</a>', url, version.number)

    @admin.display(description="rationale")
    def rationale_shown(self, obj):
        return reveal_invisible_html(obj.rationale)

    @admin.display(description="target id")
    def target_shown(self, obj):
        return reveal_invisible_html(obj.target_id)

    @admin.display(description="actor", ordering="actor")
    def actor_shown(self, obj):
        name = getattr(obj, "actor_name", "")
        actor = reveal_invisible_html(obj.actor)
        if not name:
            return actor
        return format_html(
            '{}<div class="warden-quiet warden-id">{}</div>', reveal_invisible_html(name), actor
        )

    def get_changelist_instance(self, request):
        """Names beside actor ids: the page's entries are read once, their actors named
        in two queries (the template iterates the same, cached, entries)."""
        changelist = super().get_changelist_instance(request)
        entries = list(changelist.result_list)
        names = actor_names(entries)
        for entry in entries:
            entry.actor_name = names.get((entry.workspace_id, entry.actor), "")
        return changelist

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "verify_workspaces": list(self.permitted_workspaces(request, VIEW_AUDIT)),
            "privacy_workspaces": list(
                self.permitted_workspaces(request, DOWNLOAD_PRIVACY_SUMMARY)
            ),
        }
        return super().changelist_view(request, extra_context)

    # -- custom pages ---------------------------------------------------------------

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("verify/", wrap(self.verify_view), name=f"{name}_verify"),
            *super().get_urls(),
        ]

    def _workspace(self, request, perm: str, slug: str):
        if not self.holds(request, perm):
            raise permission_missing(perm)
        return get_object_or_404(self.permitted_workspaces(request, perm), slug=slug)

    def verify_view(self, request):
        """POST runs a verification; GET shows the latest recorded verdicts."""
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        params = request.POST if request.method == "POST" else request.GET
        workspace = self._workspace(request, VIEW_AUDIT, params.get("workspace", ""))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Audit chain verification: {workspace.name}",
            "opts": self.model._meta,
            "workspace": workspace,
            "result": None,
            "task_id": None,
        }
        if request.method == "POST":
            if not settings.CELERY_TASK_ALWAYS_EAGER:
                # A worker runs it (and notifies on a broken chain); the verdict lands
                # in the chain itself, recorded as this person's verification.
                context["task_id"] = verify_chain_task.delay(
                    str(workspace.pk), self.actor(request).label
                ).id
                messages.info(request, "Verification queued; its verdict is recorded below.")
            else:
                result = chain_verification_run(workspace=workspace, actor=self.actor(request))
                context["result"] = result
                if result.ok:
                    messages.success(
                        request, f"Chain intact: {result.entries_checked} entries verified."
                    )
                else:
                    messages.error(
                        request,
                        f"Chain broken at entry #{result.first_bad_seq}: {result.problem}",
                    )
        context["last_verifications"] = list(
            audit_entries(workspace=workspace, filters={"action": AuditAction.AUDIT_VERIFIED})[:10]
        )
        return TemplateResponse(request, "admin/audit/verify_result.html", context)


@admin.register(ApprovalRecord)
class ApprovalRecordAdmin(AttachableEvidenceAdmin):
    list_display = (
        "when",
        "workspace",
        "tool",
        "verdict",
        "approver",
        "threshold",
        "reason_shown",
    )
    list_select_related = ("workspace", "confirmation__action_request")
    list_filter = ("verdict",)
    date_hierarchy = "created_at"
    search_fields = ("approver",)
    search_help_text = "Exact approver, e.g. user:alice@example.com."
    ordering = ("-created_at",)
    readonly_fields = ("attachments_shown",)

    @admin.display(description="tool")
    def tool(self, obj):
        return reveal_invisible_html(obj.confirmation.action_request.tool_name)

    @admin.display(description="reason")
    def reason_shown(self, obj):
        return reveal_invisible_html(obj.reason)


@admin.register(ExceptionRecord)
class ExceptionRecordAdmin(AttachableEvidenceAdmin):
    list_display = ("when", "workspace", "kind", "severity", "what_shown", "subject", "resolved_at")
    list_select_related = ("workspace",)
    list_filter = (ResolvedFilter, "kind", "severity")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = ("evidence_pretty",)
    exclude = ("evidence",)

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields if f.name != "evidence"]
        return [*fields, "evidence_pretty", "attachments_shown"]

    @admin.display(description="evidence")
    def evidence_pretty(self, obj):
        return _pretty(obj.evidence)

    @admin.display(description="what")
    def what_shown(self, obj):
        return reveal_invisible_html(obj.what)

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<int:pk>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name=f"{opts.app_label}_{opts.model_name}_resolve",
            ),
            *super().get_urls(),
        ]

    def resolve_view(self, request, pk):
        """Close an exception with a reason (required) and the mitigation applied; the
        same audited service as the API. Needs view_audit and approve_actions."""
        record = get_object_or_404(self.get_queryset(request), pk=pk)
        if not holds_in(request, DECIDE, record.workspace):
            raise permission_missing(DECIDE)
        change_url = reverse("admin:audit_exceptionrecord_change", args=[record.pk])
        if request.method == "POST":
            reason = (request.POST.get("reason") or "").strip()
            if not reason:
                messages.error(request, "A reason is required to resolve an exception.")
            else:
                try:
                    exception_resolve(
                        record=record,
                        actor=self.actor(request),
                        reason=reason,
                        mitigation=(request.POST.get("mitigation") or "").strip(),
                    )
                except WardenError as exc:
                    messages.error(request, f"Not resolved: {exc.message}")
                else:
                    messages.success(request, f"Exception {record.pk} resolved.")
                    return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Resolve exception {record.pk}",
            "record": record,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/audit/exceptionrecord/resolve.html", context)


@admin.register(VersionLog)
class VersionLogAdmin(AttachableEvidenceAdmin):
    list_display = ("when", "workspace", "actor", "target_type", "target_id", "reason_shown")
    list_select_related = ("workspace",)
    list_filter = ("target_type",)
    date_hierarchy = "created_at"
    search_fields = ("target_id",)
    search_help_text = "Exact target id."
    ordering = ("-created_at",)
    exclude = ("before", "after")

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields if f.name not in ("before", "after")]
        return [*fields, "before_pretty", "after_pretty", "attachments_shown"]

    @admin.display(description="reason")
    def reason_shown(self, obj):
        return reveal_invisible_html(obj.reason)

    @admin.display(description="before")
    def before_pretty(self, obj):
        return _pretty(obj.before)

    @admin.display(description="after")
    def after_pretty(self, obj):
        return _pretty(obj.after)


@admin.register(EvidenceAttachment)
class EvidenceAttachmentAdmin(EvidenceAdmin):
    """Every attachment link, read-only; links are added from the object they belong to."""

    list_display = ("created_at", "workspace", "target_type", "target_id", "url", "added_by")
    list_select_related = ("workspace",)
    list_filter = ("target_type",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
