"""Reads, always scoped to a workspace."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.gate import allowlisted, scope_for_level_held
from approvals.models import ActionRequest, ConfirmationRequest, Tool
from tenants.models import Workspace
from tenants.scoping import scoped

_QUEUE_RELATED = (
    "workspace",
    "action_request",
    "action_request__key",
    "action_request__key__owner",
    "action_request__tool",
    "action_request__accountable_user",
)


def confirmation_list(*, workspace: Workspace) -> QuerySet[ConfirmationRequest]:
    return scoped(ConfirmationRequest.objects.select_related(*_QUEUE_RELATED), workspace)


def pending_confirmations(*, workspace: Workspace, now=None) -> QuerySet[ConfirmationRequest]:
    """What approvers can still act on, oldest first (pending and not yet past expiry)."""
    return (
        confirmation_list(workspace=workspace)
        .filter(status=ConfirmationRequest.Status.PENDING, expires_at__gt=now or timezone.now())
        .order_by("created_at", "id")
    )


def confirmation_get(*, workspace: Workspace, pk) -> ConfirmationRequest | None:
    """By its own id or by its action request's id (the `id` the agent was answered
    with, so an approver handed that id reaches the same request)."""
    try:
        return (
            confirmation_list(workspace=workspace)
            .filter(Q(pk=pk) | Q(action_request_id=pk))
            .first()
        )
    except (ValueError, TypeError):
        return None


def action_request_get(*, workspace: Workspace, pk, key=None) -> ActionRequest | None:
    """An action request; with `key`, only that key's own requests."""
    qs = scoped(
        ActionRequest.objects.select_related("confirmation").prefetch_related(
            "confirmation__approval_records"
        ),
        workspace,
    )
    if key is not None:
        qs = qs.filter(key=key)
    try:
        return qs.filter(pk=pk).first()
    except (ValueError, TypeError):
        return None


def tool_list(*, workspace: Workspace) -> QuerySet[Tool]:
    return scoped(Tool.objects.all(), workspace).select_related("workspace").order_by("name")


def tool_get(*, workspace: Workspace, pk) -> Tool | None:
    try:
        return tool_list(workspace=workspace).filter(pk=pk).first()
    except (ValueError, TypeError):
        return None


def tools_callable_by_key(*, key, workspace: Workspace) -> list[Tool]:
    """Enabled, allowlisted, and the key holds `actions:<level>`: default-deny listing."""
    return [
        tool
        for tool in tool_list(workspace=workspace).filter(enabled=True)
        if allowlisted(key.tool_allowlist, tool.name) and scope_for_level_held(key, tool.level)
    ]


def pending_confirmation_count(*, now=None) -> int:
    """Requests waiting for a human across all workspaces (the operator's queue-depth
    gauge, common.telemetry; never shown to a tenant)."""
    return ConfirmationRequest.objects.filter(
        status=ConfirmationRequest.Status.PENDING, expires_at__gt=now or timezone.now()
    ).count()
