"""MCP tasks (protocol revision 2025-11-25, "experimental" there) for gated tool calls.

A task is a view of one ActionRequest of the calling key: its id is the request's id,
its status is read from the request, its confirmation and its execution. Nothing lives
in memory, so any process answers `tasks/get` for a task another one created.

- The task completes when a human approves: the next `tasks/get` (or `tasks/result`)
  of the same key re-submits the stored call with the confirmation token, through
  gateway.execution.action_execute, exactly like a confirmed re-call (the token is used
  once and the execution row is unique per request: it never runs twice).
- It fails when a human denies, or the confirmation expires.
- `tasks/cancel` withdraws the confirmation (marked expired, audited): it never
  approves anything, and a withdrawn request can no longer be approved or run.

Another key, or another workspace's key, finds no such task ("not found")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils import timezone

from approvals import credential_scan, gate
from approvals.asking import tool_lookup
from approvals.confirmations import confirmation_expire
from approvals.models import ActionRequest, ConfirmationRequest, Tool
from approvals.params import SECRET_PARAM_PREFIX
from approvals.tokens import confirmation_token
from common.actor import Actor
from common.errors import WardenError
from gateway.execution import GatewayAnswer, action_execute
from gateway.models import Execution

WORKING, INPUT_REQUIRED = "working", "input_required"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
# ActionRequest.result_status of a request its agent withdrew with tasks/cancel.
WITHDRAWN = "cancelled"
LIST_PAGE = 50
STARTING = timedelta(minutes=1)


@dataclass
class TaskState:
    """What `tasks/get` says about one request, and what `tasks/result` returns."""

    action: ActionRequest
    status: str
    message: str
    updated_at: datetime
    execution: Execution | None = None
    # Set when this very call ran it: the upstream's result, in hand even when the
    # workspace keeps no copy of outputs.
    ran_now: GatewayAnswer | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def tool_runs_as_task(key, tool: Tool | None) -> bool:
    """A tool whose calls may wait for a human, and whose stored arguments can be
    replayed once approved (secret params are kept only as digests)."""
    return (
        tool is not None
        and not tool.secret_params
        and gate.effective_confirmation(key, key.workspace, tool) != "never"
    )


def task_tool(key, tool_name: str) -> Tool | None:
    """The catalog tool a task-augmented call names, when it may run as a task."""
    _, tool = tool_lookup(workspace=key.workspace, name=tool_name)
    return tool if tool_runs_as_task(key, tool) else None


def task_find(*, key, task_id: Any) -> ActionRequest | None:
    """The key's own request with this id; None for anything else (another key's,
    another workspace's, malformed): the caller answers "not found" to all alike."""
    try:
        pk = uuid.UUID(str(task_id))
    except ValueError:
        return None
    return (
        ActionRequest.objects.select_related(*RELATED)
        .filter(pk=pk, key=key, workspace_id=key.workspace_id)
        .first()
    )


def task_list(*, key, cursor: Any = None) -> tuple[list[ActionRequest], str | None]:
    """The key's requests, newest first, a page at a time (every one is a task)."""
    try:
        offset = max(0, int(cursor)) if cursor else 0
    except (TypeError, ValueError):
        raise WardenError("validation_error", "Unknown cursor.") from None
    page = list(
        ActionRequest.objects.select_related(*RELATED)
        .filter(key=key, workspace_id=key.workspace_id)
        .order_by("-created_at", "-pk")[offset : offset + LIST_PAGE + 1]
    )
    more = len(page) > LIST_PAGE
    return page[:LIST_PAGE], (str(offset + LIST_PAGE) if more else None)


RELATED = ("tool", "key__owner", "confirmation", "execution")


def _related(action: ActionRequest, name: str):
    """A reverse one-to-one (selected with the request), or None."""
    try:
        return getattr(action, name)
    except ObjectDoesNotExist:
        return None


def waiting_message(action: ActionRequest, confirmation: ConfirmationRequest) -> str:
    required = confirmation.approvals_required
    owner = getattr(getattr(action.key, "owner", None), "email", "") or "the key's owner"
    return (
        f"Waiting for {required} approver{'s' if required > 1 else ''} of this workspace "
        f"(not {owner}, who is answerable for this key) in Warden's approval queue; "
        f"expires at {confirmation.expires_at.isoformat()}. Nothing has run yet."
    )


def _replayable(action: ActionRequest) -> bool:
    """Whether the stored params are the very arguments the agent sent: not pruned, no
    secret param or credential-shaped value replaced by its digest."""
    params = action.params
    return (
        action.plain_pruned_at is None
        and isinstance(params, dict)
        and not credential_scan.masked_paths(params)
        and not any(
            isinstance(v, str) and v.startswith(SECRET_PARAM_PREFIX) for v in params.values()
        )
    )


def _run_approved(key, actor: Actor, action: ActionRequest, confirmation) -> tuple:
    """Spend the human's approval: the stored call, re-submitted with its token."""
    if not _replayable(action):
        return None, "Warden kept its arguments only as digests"
    try:
        found = action_execute(
            key=key,
            actor=actor,
            tool_name=action.tool_name,
            params=action.params,
            confirmation_token=confirmation_token(confirmation.pk),
        )
    except WardenError as error:
        # Used by a concurrent poll or a re-call, expired meanwhile...: read it again.
        return None, f"{error.code}: {error.message}"
    if not found.outcome.allowed:
        outcome = found.outcome
        return None, f"Warden now refuses it: {outcome.code}: {outcome.message}"
    return found, ""


def task_state(*, key, actor: Actor, action: ActionRequest, run: bool = True) -> TaskState:
    """The task's status from the database. With `run`, an approved, unused
    confirmation is spent now (exactly once, whoever polls first)."""
    now = timezone.now()
    confirmation = _related(action, "confirmation")
    S = ConfirmationRequest.Status
    ran_now, note = None, ""
    if (
        run
        and confirmation is not None
        and confirmation.status == S.APPROVED
        and not confirmation.is_past_expiry(now)
        and action.result_status != WITHDRAWN
    ):
        ran_now, note = _run_approved(key, actor, action, confirmation)
        action = ActionRequest.objects.select_related(*RELATED).get(pk=action.pk)
        confirmation = _related(action, "confirmation")
    execution = _related(action, "execution")
    updated = max(
        t
        for t in (
            action.created_at,
            getattr(confirmation, "decided_at", None),
            getattr(confirmation, "used_at", None),
            getattr(execution, "finished_at", None),
        )
        if t is not None
    )

    def state(status: str, message: str) -> TaskState:
        return TaskState(action, status, message, updated, execution, ran_now)

    if action.result_status == WITHDRAWN:
        return state(CANCELLED, "Withdrawn by the agent (tasks/cancel); nothing was executed.")
    if execution is not None:
        E = Execution.Status
        if execution.status == E.STARTED:
            return state(WORKING, "Approved; the upstream call is running now.")
        if execution.status == E.SUCCEEDED:
            return state(COMPLETED, "Executed once by Warden through the connector.")
        if execution.status == E.DRY_RUN:
            return state(COMPLETED, "Dry run: allowed, nothing was called.")
        if execution.status == E.TOOL_ERROR:
            return state(FAILED, "The upstream tool ran and reported an error.")
        return state(FAILED, f"The upstream call failed: {execution.error}")
    if confirmation is not None:
        expired = (
            f"Expired at {confirmation.expires_at.isoformat()} without a usable human "
            "approval; nothing was executed."
        )
        if confirmation.status == S.DENIED:
            return state(FAILED, "Denied by a human; nothing was executed.")
        if confirmation.status == S.EXPIRED or (
            confirmation.status in (S.PENDING, S.APPROVED) and confirmation.is_past_expiry(now)
        ):
            return state(FAILED, expired)
        if confirmation.status == S.PENDING:
            return state(WORKING, waiting_message(action, confirmation))
        if confirmation.status == S.APPROVED:
            why = f" ({note})" if note else ""
            return state(
                WORKING,
                f"Approved by a human, not run yet{why}. Poll again, or call the tool again "
                "with the very same arguments.",
            )
        # Used, by this task or a confirmed re-call; the execution row follows at once
        # when Warden runs it through a connector.
        starting = confirmation.used_at is not None and confirmation.used_at > now - STARTING
        if action.tool is not None and action.tool.connector_id is not None and starting:
            return state(WORKING, "Approved; the upstream call is starting.")
        if action.status == ActionRequest.Status.FAILED:
            return state(FAILED, "Approved; the agent reported that it failed.")
        return state(COMPLETED, "Approved and used; Warden ran nothing through a connector.")
    if action.status == ActionRequest.Status.DENIED or action.decision == "denied":
        return state(FAILED, f"Refused by Warden ({action.denial_code}): {action.rationale}")
    return state(COMPLETED, "Allowed by Warden.")


def task_cancel(*, key, actor: Actor, action: ActionRequest) -> ActionRequest:
    """Withdraw a request still waiting (or approved but not run): its confirmation is
    marked expired, so no human can approve it any more and it never runs. Raises
    WardenError("conflict") for a task that already ran or ended."""
    now = timezone.now()
    with transaction.atomic():
        confirmation = (
            ConfirmationRequest.objects.select_for_update(of=("self",))
            .filter(action_request=action, workspace_id=key.workspace_id)
            .first()
        )
        S = ConfirmationRequest.Status
        if (
            confirmation is None
            or confirmation.status not in (S.PENDING, S.APPROVED)
            or confirmation.is_past_expiry(now)
            or action.result_status == WITHDRAWN
        ):
            raise WardenError("conflict", "This task already ran or ended; it cannot be cancelled.")
        confirmation_expire(
            confirmation=confirmation,
            actor=actor,
            now=now,
            rationale="withdrawn by the requesting agent (MCP tasks/cancel) before it ran",
            result_status=WITHDRAWN,
        )
    return ActionRequest.objects.select_related(*RELATED).get(pk=action.pk)
