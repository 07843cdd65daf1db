"""The approval queue in the admin: list, review, approve, deny, bulk deny.

Reads go through the queue admin's guardian-scoped queryset (rows of workspaces where
the user holds `approve_actions`); every decision goes through the same services as
the API (`confirmation_approve` / `confirmation_deny`), so permission, four eyes,
two approvals for irreversible actions and expiry are enforced identically. Agent
text (params, reasons, summaries) reaches templates only as data: autoescaped,
never rendered as a template, markdown or HTML.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from approvals.confirmations import (
    APPROVE_PERMISSION,
    confirmation_approve,
    confirmation_deny,
    is_answerable,
    required_permission,
)
from approvals.governance import BY_NAME
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest
from approvals.params_display import params_shown
from approvals.policy_impact import REVIEW_LIMIT, request_impact
from common.actor import Actor
from common.errors import WardenError
from common.text import reveal_invisible
from tenants.scoping import scoped

QUEUE_PAGE_SIZE = 50
BULK_MAX = 200
HISTORY_LIMIT = 25
EXPIRES_SOON = timedelta(hours=1)
REASON_MAX_LENGTH = 2000
NAME_SUMMARY_CHARS = 80


def pretty_json(value: Any) -> str:
    """Indented JSON for display; the template escapes it."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def queue_queryset(model_admin, request):
    """Pending, unexpired confirmations the user may decide on, oldest first."""
    return (
        model_admin.get_queryset(request)
        .filter(status=ConfirmationRequest.Status.PENDING, expires_at__gt=timezone.now())
        .select_related(
            "workspace",
            "action_request",
            "action_request__tool",
            "action_request__tool__connector",
            "action_request__key",
            "action_request__key__owner",
            "action_request__accountable_user",
        )
        .order_by("created_at", "pk")
    )


def page_context(model_admin, request) -> dict[str, Any]:
    """AdminSite.each_context without the app list: these pages have no navigation
    sidebar, so they skip a permission check per registered admin and their query
    count does not depend on how many admins other apps register."""
    site = model_admin.admin_site
    script_name = request.META.get("SCRIPT_NAME", "")
    return {
        "site_title": site.site_title,
        "site_header": site.site_header,
        "site_url": script_name if site.site_url == "/" and script_name else site.site_url,
        "has_permission": site.has_permission(request),
        "available_apps": [],
        "is_popup": False,
        "is_nav_sidebar_enabled": False,
        "log_entries": site.get_log_entries(request),
    }


def _approval_progress(records, confirmation) -> dict[str, int]:
    return {
        "approvals": sum(1 for r in records if r.verdict == ApprovalRecord.Verdict.APPROVE),
        "required": confirmation.approvals_required,
    }


def upstream_server(tool) -> str:
    """The connector's name when `tool` was imported from one (its description is the
    upstream's text), else ''."""
    connector = getattr(tool, "connector", None) if getattr(tool, "connector_id", None) else None
    return connector.name if connector is not None else ""


def _catalog_entry(action: ActionRequest):
    """The tool as the gate saw it: the catalog row, or the governed operation."""
    if action.tool is not None:
        return action.tool
    operation = BY_NAME.get(action.tool_name)
    if operation is None:
        return None
    return SimpleNamespace(
        name=operation.name, level="write", data_classes=[], description=operation.title
    )


class DecidePermissions:
    """Workspaces where the user holds each permission a decision needs, read once per
    permission per page (not once per row): `approve_actions`, plus the permission a
    platform request names (approvals.confirmations.required_permission)."""

    def __init__(self, model_admin, request):
        self._model_admin, self._request = model_admin, request
        self._ids: dict[str, set] = {}

    def holds(self, perm: str, workspace_id) -> bool:
        if perm not in self._ids:
            self._ids[perm] = set(
                self._model_admin.permitted_workspaces(self._request, perm).values_list(
                    "pk", flat=True
                )
            )
        return workspace_id in self._ids[perm]


def _undecidable_reason(confirmation, user, records, permissions: DecidePermissions) -> str:
    """Why `user` may not decide this request ("" when they may), by the services' own
    rules (permission, four eyes over the key's chain of custody, one verdict each), so
    the page hides buttons that could only end in a refusal."""
    action = confirmation.action_request
    needed = required_permission(action)
    for perm in dict.fromkeys((APPROVE_PERMISSION, needed)):
        if not permissions.holds(perm, confirmation.workspace_id):
            return f"Deciding this request needs the “{perm}” permission, which you lack here."
    if is_answerable(action, user):
        return (
            "You are answerable for this request (you own, created, rotated or minted its "
            "key, or asked for it). Four-eyes rule: another approver must decide."
        )
    if any(r.approver_user_id == user.pk for r in records):
        return "You already gave your verdict on this request; a different approver is needed."
    return ""


def _governed_changes(params: Any) -> list[dict[str, Any]]:
    """`{"changes": {field: {"before": x, "after": y}}}` as rows, for platform changes
    that say what they change; other shapes give no rows (the raw params still show)."""
    changes = params.get("changes") if isinstance(params, dict) else None
    if not isinstance(changes, dict):
        return []
    rows = []
    for field, change in sorted(changes.items()):
        if isinstance(change, dict) and {"before", "after"} <= change.keys():
            rows.append(
                {
                    "field": str(field).replace("_", " "),
                    "before": pretty_json(change["before"]),
                    "after": pretty_json(change["after"]),
                }
            )
    return rows


def _effects(action: ActionRequest, confirmation, tool) -> list[str]:
    """What approving does, in plain words."""
    effects = []
    if action.is_platform:
        # Governed changes apply on approval, dry run or not: dry run is about agents.
        effects.append("Approving applies this change to Warden at once, for real.")
    elif action.dry_run:
        effects.append(
            "Dry run: nothing will be executed for real. The workspace is in dry-run mode, "
            "so approving only lets the agent go through the motions."
        )
    else:
        effects.append(
            f"Approving lets the agent run {action.tool_name} once, with exactly the "
            "parameters below."
        )
    if confirmation.irreversible:
        effects.append("Irreversible: once done it cannot be undone.")
    if confirmation.approvals_required > 1:
        effects.append(
            f"It needs {confirmation.approvals_required} different approvers before it proceeds."
        )
    if tool is not None and tool.level == "external":
        effects.append("External: it reaches outside the company (people or systems).")
    return effects


def _row(confirmation, now=None, user=None, permissions=None) -> dict[str, Any]:
    action = confirmation.action_request
    tool = _catalog_entry(action)
    now = now or timezone.now()
    records = list(confirmation.approval_records.all())
    return {
        "confirmation": confirmation,
        "action": action,
        "tool_name": action.tool_name,
        "level": tool.level if tool else "",
        "data_classes": list(tool.data_classes) if tool else [],
        "params_pretty": pretty_json(action.shown_params),
        "params_shown": params_shown(action.shown_params),
        "key": action.key,
        "requested_by": action.requested_by,
        # The human answerable for the request: the key's owner, or the human who
        # asked for a platform operation. Never allowed to approve it (four eyes).
        "accountable": action.accountable_user or (action.key.owner if action.key else None),
        "progress": _approval_progress(records, confirmation),
        "expires_soon": confirmation.expires_at - now < EXPIRES_SOON,
        "description": tool.description if tool else "",
        # An imported tool's description was written by the upstream server's operator,
        # a third party: shown as theirs, never as the catalog's word.
        "upstream_server": upstream_server(tool),
        "effects": _effects(action, confirmation, tool),
        "short_id": str(action.pk)[:8],
        "undecidable": (
            _undecidable_reason(confirmation, user, records, permissions) if user else ""
        ),
    }


def _selected_workspace(request, queryset):
    slug = request.GET.get("workspace") or ""
    return slug, (queryset.filter(workspace__slug=slug) if slug else queryset)


def queue_view(model_admin, request):
    base = queue_queryset(model_admin, request)
    workspace_slug, queryset = _selected_workspace(request, base)
    per_workspace = list(
        base.order_by()
        .values("workspace__slug", "workspace__name")
        .annotate(pending=Count("pk"))
        .order_by("workspace__slug")
    )
    paginator = Paginator(
        queryset.prefetch_related(
            Prefetch("approval_records", queryset=ApprovalRecord.objects.order_by("created_at"))
        ),
        QUEUE_PAGE_SIZE,
    )
    page = paginator.get_page(request.GET.get("page"))
    now = timezone.now()
    permissions = DecidePermissions(model_admin, request)
    context = {
        **page_context(model_admin, request),
        "title": "Approval queue",
        "opts": model_admin.model._meta,
        "page": page,
        "rows": [_row(c, now, request.user, permissions) for c in page.object_list],
        "per_workspace": per_workspace,
        "workspace_slug": workspace_slug,
        "total_pending": sum(w["pending"] for w in per_workspace),
        "now": now,
        "reason_max_length": REASON_MAX_LENGTH,
    }
    return TemplateResponse(request, "admin/approvals/queue.html", context)


def _get_confirmation(model_admin, request, pk):
    queryset = model_admin.get_queryset(request).select_related(
        "workspace",
        "action_request",
        "action_request__tool",
        "action_request__key",
        "action_request__key__owner",
        "action_request__accountable_user",
    )
    return get_object_or_404(queryset, pk=pk)


def review_view(model_admin, request, pk):
    confirmation = _get_confirmation(model_admin, request, pk)
    action = confirmation.action_request
    same_requester = {"key": action.key} if action.key_id else {"requested_by": action.requested_by}
    history = list(
        scoped(ActionRequest.objects.all(), confirmation.workspace)
        .filter(
            tool_name=action.tool_name,
            created_at__lt=action.created_at,
            **same_requester,
        )
        .select_related("confirmation")
        .order_by("-created_at")[:HISTORY_LIMIT]
    )
    records = list(
        confirmation.approval_records.select_related("approver_user").order_by("created_at")
    )
    now = timezone.now()
    row = _row(confirmation, now, request.user, DecidePermissions(model_admin, request))
    decidable = (
        confirmation.status == ConfirmationRequest.Status.PENDING and confirmation.expires_at > now
    )
    context = {
        **page_context(model_admin, request),
        "title": f"Review request: {action.tool_name}",
        "opts": model_admin.model._meta,
        "row": row,
        "changes": _governed_changes(action.params),
        "effect": _effect_sentence(action.params),
        **_impact(confirmation.workspace, action),
        "confirmation": confirmation,
        "action": action,
        "records": records,
        "history": [
            {
                "action": h,
                "params_pretty": pretty_json(h.shown_params),
                "confirmation": _reverse_one(h),
            }
            for h in history
        ],
        "decidable": decidable,
        "expired": confirmation.expires_at <= now
        or confirmation.status == ConfirmationRequest.Status.EXPIRED,
        "now": now,
        "reason_max_length": REASON_MAX_LENGTH,
    }
    return TemplateResponse(request, "admin/approvals/review.html", context)


def _impact(workspace, action: ActionRequest) -> dict[str, Any]:
    """What a pending policy change would have done to the last 30 days of requests,
    replayed (newest REVIEW_LIMIT at most); nothing for other requests."""
    if not action.is_platform:
        return {}
    try:
        report = request_impact(workspace, action.params, limit=REVIEW_LIMIT)
    except WardenError as exc:
        return {"impact_error": exc.message}
    if report is None:
        return {}
    return {"impact": report, "impact_limit": REVIEW_LIMIT}


def _effect_sentence(params: Any) -> str:
    effect = params.get("effect") if isinstance(params, dict) else None
    return effect if isinstance(effect, str) else ""


def _reverse_one(action: ActionRequest):
    try:
        return action.confirmation
    except ConfirmationRequest.DoesNotExist:
        return None


def _reason(request) -> str:
    # Length and content are the service's to judge (same rules as the API).
    return (request.POST.get("reason") or "").strip()


def _back(request, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(default)


def _urls(model_admin) -> dict[str, str]:
    opts = model_admin.model._meta
    prefix = f"admin:{opts.app_label}_{opts.model_name}"
    return {"queue": reverse(f"{prefix}_changelist"), "review": f"{prefix}_review"}


def request_name(confirmation) -> str:
    """Tool, summary and short id: tells apart two pending refunds in a message."""
    action = confirmation.action_request
    summary = reveal_invisible(confirmation.summary)
    if len(summary) > NAME_SUMMARY_CHARS:
        summary = summary[:NAME_SUMMARY_CHARS] + "…"
    return f"{reveal_invisible(action.tool_name)} “{summary}” (request {str(action.pk)[:8]})"


def _refusal(exc: WardenError, verb: str) -> str:
    return f"Not {verb}: {exc.message} ({exc.code})"


def decide_view(model_admin, request, pk):
    confirmation = _get_confirmation(model_admin, request, pk)
    urls = _urls(model_admin)
    review_url = reverse(urls["review"], args=[confirmation.pk])
    verdict = request.POST.get("verdict")
    if verdict not in ("approve", "deny"):
        messages.error(request, "Choose approve or deny.")
        return HttpResponseRedirect(review_url)
    reason = _reason(request)
    if not reason:
        messages.error(request, "A reason is required to approve or deny.")
        return HttpResponseRedirect(review_url)
    decide = confirmation_approve if verdict == "approve" else confirmation_deny
    verb = "approved" if verdict == "approve" else "denied"
    try:
        decide(confirmation=confirmation, reason=reason, actor=Actor.for_request(request))
    except WardenError as exc:
        messages.error(request, _refusal(exc, verb))
        return HttpResponseRedirect(review_url)
    confirmation.refresh_from_db(fields=["status"])
    named = request_name(confirmation)
    if confirmation.status == ConfirmationRequest.Status.PENDING:
        messages.success(
            request,
            f"Your approval of {named} is recorded; it needs another approver before the "
            "agent may proceed.",
        )
    else:
        messages.success(request, f"{verb.capitalize()}: {named}.")
    return _back(request, urls["queue"])


def bulk_deny_view(model_admin, request):
    urls = _urls(model_admin)
    ids = []
    for raw in request.POST.getlist("ids")[: BULK_MAX + 1]:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue
    if not ids:
        messages.error(request, "Select at least one request to deny.")
        return _back(request, urls["queue"])
    if len(ids) > BULK_MAX:
        messages.error(request, f"Deny at most {BULK_MAX} requests at a time.")
        return _back(request, urls["queue"])
    reason = _reason(request)
    if not reason:
        messages.error(request, "A reason is required to deny.")
        return _back(request, urls["queue"])
    confirmations = list(
        model_admin.get_queryset(request)
        .filter(pk__in=ids)
        .select_related("workspace", "action_request")
        .order_by("created_at")
    )
    if not confirmations:
        raise Http404("No such requests.")
    actor = Actor.for_request(request)
    denied, refused = 0, []
    for confirmation in confirmations:
        try:
            confirmation_deny(confirmation=confirmation, reason=reason, actor=actor)
        except WardenError as exc:
            refused.append((confirmation.action_request.tool_name, exc))
        else:
            denied += 1
    if denied:
        messages.success(request, f"Denied {denied} request{'s' if denied != 1 else ''}.")
    for tool, exc in refused:
        messages.error(request, f"{tool}: {_refusal(exc, 'denied')}")
    return _back(request, urls["queue"])
