"""The one door for governed operations (DESIGN.md principle 9).

Every front door (API with a key or a session, admin forms and actions, management
commands, Celery tasks) describes the change it wants as a `Proposal` — data, never a
closure — and calls `governed_change()`. A change that loosens nothing is applied at
once. A loosening is filed as a request for a human: the answer is the usual 202 with
a `ct_` token, the request appears in the approval queue, and when enough approvers
other than the proposer (and the proposing key's chain of custody, and for a change to
a key that key's own owner and custody) approve it, the
door applies the proposal inside the approval's transaction. A machine key can
therefore propose a loosening but never make it take effect; the confirmed re-call
only collects the outcome. Operators with a shell may apply directly with
`break_glass="why"`, which is recorded as such (audit entry and an `override`
exception record).

Lower services never take a flag to skip this: `approvals.guard` refuses any write of
a governed model that loosens governance unless this door granted it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals.asking import platform_request_collect, platform_request_submit
from approvals.confirmations import subject_custody
from approvals.governance import (
    GovernedOperation,
    Snapshot,
    Target,
    combined,
    loosening,
)
from approvals.guard import NEW_ROWS, Grant, granted
from approvals.models import ActionRequest, ConfirmationRequest, PolicyVersion, Tool
from approvals.outcome import Outcome
from approvals.policy import versions
from audit.models import ExceptionRecord
from audit.services import exception_record, require_reason
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Workspace

# The gate asks platform requests for a scope; the door has already checked the
# proposer's authority through the endpoint, so it files every request under this one.
DOOR_SCOPE = "workspace:admin"


@dataclass(frozen=True)
class Proposal:
    """A change to a governed object, as data the door can apply later."""

    target: Target
    verb: str  # "create" | "update" | "delete"
    label: str  # what is changed, for people: "tool billing.refund"
    before: Snapshot
    after: Snapshot
    target_id: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # JSON: what the applier needs
    # What the confirmation token binds instead of `values`, when those carry ciphertext
    # (new on every encryption, so an identical re-call would never match): the same
    # values with keyed digests of the plaintext in its place.
    bound_values: dict[str, Any] | None = None


@dataclass
class DoorResult:
    """`applied` with the applier's `result`, or not yet, with the asking `outcome`
    (pending: filed for a human)."""

    applied: bool
    result: Any = None
    outcome: Outcome | None = None
    operations: tuple[str, ...] = ()


Applier = Callable[..., Any]
_APPLIERS: dict[tuple[str, str], Applier] = {}
_CHECKS: dict[tuple[str, str], Applier] = {}
_READERS: dict[str, Callable[[Workspace, str | None], Any]] = {}


def register_check(target: Target, verb: str, check: Applier) -> None:
    """`check(*, workspace, actor, target_id, values)` raises WardenError for a change
    that could never be applied (a conflict, the last owner, missing authority), so
    nobody is asked to approve it."""
    _CHECKS[(str(target), verb)] = check


def register_applier(target: Target, verb: str, applier: Applier) -> None:
    """`applier(*, workspace, actor, target_id, values, reason, custody)` -> result."""
    _APPLIERS[(str(target), verb)] = applier


def registered_applier(target: Target | str, verb: str) -> Applier | None:
    """The applier a higher layer registered (approvals.policy applies a document's
    automation settings through it, as the door would)."""
    return _APPLIERS.get((str(target), verb))


def register_reader(target: Target, reader: Callable[[Workspace, str | None], Any]) -> None:
    """How to fetch the changed object again for a confirmed re-call's answer."""
    _READERS[str(target)] = reader


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return value


def _diff(before: Snapshot, after: Snapshot) -> dict[str, dict[str, Any]]:
    """Changed fields, for people. `_`-prefixed snapshot fields exist for the registry's
    predicates only (e.g. credential fingerprints) and are never shown or stored."""
    fields = sorted(f for f in set(before or {}) | set(after or {}) if not f.startswith("_"))
    return {
        f: {"before": (before or {}).get(f), "after": (after or {}).get(f)}
        for f in fields
        if (before or {}).get(f) != (after or {}).get(f)
    }


def _request_tool(operation: GovernedOperation) -> Tool:
    return Tool(
        name=operation.name,
        description=operation.title,
        level="write",
        irreversible=operation.irreversible,
        confirmation="always",
        summary_template="",
        enabled=True,
    )


def _summary(operation: GovernedOperation, proposal: Proposal) -> str:
    changes = _diff(proposal.before, proposal.after)
    parts = [
        f"{name}: {json.dumps(c['before'], default=str)} -> {json.dumps(c['after'], default=str)}"
        for name, c in changes.items()
        if name not in ("other_approvers", "other_active")
    ]
    text = f"{operation.title} ({proposal.label})"
    if parts:
        text += ": " + "; ".join(parts)
    return text + f". Effect: {operation.effect}."


def _custody(actor: Actor) -> list:
    """The proposer's custody: the human, or the proposing key's owner and custody."""
    if actor.key is not None:
        return sorted(set(actor.key.custody_user_ids or []) | {actor.key.owner_id})
    if actor.user is not None:
        return [actor.user.pk]
    return []


def _answerable(actor: Actor, workspace: Workspace, proposal: Proposal) -> list:
    """Nobody answerable for the proposal may approve it: the proposer's custody and the
    subject's own (a suspended key's owner does not lift its suspension)."""
    subject = subject_custody(
        workspace_id=workspace.pk,
        target=str(proposal.target),
        target_id=proposal.target_id,
        values=proposal.values,
    )
    return sorted(set(_custody(actor)) | subject)


def _apply(
    *,
    workspace: Workspace,
    actor: Actor,
    proposal_target: str,
    verb: str,
    target_id: str | None,
    values: dict,
    reason: str,
    operations: frozenset[str],
    custody: list,
) -> Any:
    applier = _APPLIERS.get((proposal_target, verb))
    if applier is None:
        raise WardenError("validation_error", f"No way to {verb} a {proposal_target}.")
    with granted(Grant(proposal_target, target_id, operations)):
        return applier(
            workspace=workspace,
            actor=actor,
            target_id=target_id,
            values=values,
            reason=reason,
            custody=custody,
        )


def governed_change(
    *,
    workspace: Workspace,
    actor: Actor,
    proposal: Proposal,
    reason: str = "",
    confirmed: bool = False,
    confirmation_token: str = "",
    break_glass: str = "",
) -> DoorResult:
    """Apply `proposal` now if it loosens nothing; otherwise file it for a human (or, for
    an operator with `break_glass`, apply it and record the override)."""
    binding = {
        "target": str(proposal.target),
        "target_id": proposal.target_id,
        "verb": proposal.verb,
        "values": proposal.values if proposal.bound_values is None else proposal.bound_values,
    }
    if confirmed:
        # Collect the outcome of an approved (and so already applied) request.
        collected = platform_request_collect(
            workspace=workspace, actor=actor, binding=binding, token=confirmation_token
        )
        action = collected.action
        reader = _READERS.get(str(proposal.target))
        target_id = (action.result_output or {}).get("target_id") or proposal.target_id
        result = reader(workspace, target_id) if reader else None
        return DoorResult(
            True, result, operations=tuple((action.params or {}).get("operations", ()))
        )
    # Every change says why (audit.services.require_reason, which also guards each
    # change's version log): asked here first, so nothing is filed for a second human,
    # and no check runs, without one. A break-glass reason stands for it.
    reason = require_reason(reason or break_glass)
    check = _CHECKS.get((str(proposal.target), proposal.verb))
    if check is not None:
        check(
            workspace=workspace,
            actor=actor,
            target_id=proposal.target_id,
            values=proposal.values,
        )
    operations = loosening(proposal.target, proposal.before, proposal.after)
    names = frozenset(op.name for op in operations)
    common = {
        "workspace": workspace,
        "proposal_target": str(proposal.target),
        "verb": proposal.verb,
        "target_id": proposal.target_id,
        "values": proposal.values,
        "operations": names,
        "custody": _custody(actor),
    }
    if break_glass:
        return _break_glass(actor, proposal, operations, common, break_glass, reason)
    if not operations:
        return DoorResult(True, _apply(actor=actor, reason=reason, **common))
    if actor.kind == "system" and actor.key is None and actor.user is None:
        raise WardenError(
            "approval_required",
            "This change loosens governance. File it through the API or the admin, or "
            'apply it as an operator with --break-glass "reason".',
            {"operations": sorted(names)},
        )
    operation = combined(operations)
    params = {
        "target": str(proposal.target),
        "target_id": proposal.target_id,
        "verb": proposal.verb,
        "label": proposal.label,
        "changes": _diff(proposal.before, proposal.after),
        "values": proposal.values,
        "operations": sorted(names),
        "effect": operation.effect,
        "approve_permission": operation.permission,
        "approvals_required": operation.approvals,
    }
    outcome = platform_request_submit(
        workspace=workspace,
        actor=actor,
        tool=_request_tool(operation),
        params=params,
        binding=binding,
        summary=_summary(operation, proposal),
        approvals_required=operation.approvals,
        custody=_answerable(actor, workspace, proposal),
        scope=DOOR_SCOPE,
        reason=reason,
    )
    return DoorResult(False, outcome=outcome, operations=tuple(sorted(names)))


def _break_glass(actor, proposal, operations, common, why: str, reason: str) -> DoorResult:
    if actor.key is not None or actor.user is not None:
        raise WardenError("humans_only", "Break-glass is for operators at a shell only.")
    why = (why or "").strip()
    if not why:
        raise WardenError("validation_error", "Break-glass needs a reason.")
    # The change, its audit entry, the override record and the policy version commit
    # together or not at all.
    with (
        transaction.atomic(),
        versions.recording(
            common["workspace"],
            source=PolicyVersion.Source.BREAK_GLASS,
            author=actor.label,
            reason=reason or why,
            operations=sorted(op.name for op in operations),
        ),
    ):
        return _break_glass_apply(actor, proposal, operations, common, why)


def _break_glass_apply(actor, proposal, operations, common, why: str) -> DoorResult:
    result = _apply(actor=actor, reason=f"break-glass: {why}", **common)
    if operations:
        exception_record(
            workspace=common["workspace"],
            actor=actor,
            kind=ExceptionRecord.Kind.OVERRIDE,
            severity=ExceptionRecord.Severity.HIGH,
            what=f"Break-glass: {combined(operations).title}"[:300],
            why=why,
            evidence={
                "target": str(proposal.target),
                "target_id": proposal.target_id,
                "label": proposal.label,
                "operations": sorted(op.name for op in operations),
                "changes": _diff(proposal.before, proposal.after),
            },
            mitigation="Review the change; file it through the approval queue next time.",
            subject=actor.label,
            action="governance.break_glass",
        )
    return DoorResult(True, result, operations=tuple(sorted(op.name for op in operations)))


def _approved_reason(action: ActionRequest) -> str:
    """The proposer's why, kept in the change's version log, and who approved it."""
    filed = f"request {action.pk} by {action.requested_by}, approved"
    why = (action.reason or "").strip()
    return f"{why} ({filed})" if why else filed


def apply_approved(*, confirmation: ConfirmationRequest, action: ActionRequest, actor: Actor):
    """Approval hook: the threshold is met, so the proposal takes effect now, in the
    approval's transaction, with the approver as the actor of record."""
    params = action.params or {}
    if not action.is_platform or "target" not in params:
        return
    with versions.recording(
        confirmation.workspace,
        source=PolicyVersion.Source.APPROVED,
        author=action.requested_by,
        reason=action.reason,
        approvers=versions.approvers_of(confirmation),
        operations=list(params.get("operations") or ()),
        request=action,
    ):
        result = _apply(
            workspace=confirmation.workspace,
            actor=actor,
            proposal_target=params["target"],
            verb=params["verb"],
            target_id=params.get("target_id"),
            values=params.get("values") or {},
            reason=_approved_reason(action),
            operations=frozenset(params.get("operations") or ()),
            custody=list(action.custody_user_ids or []),
        )
    if "warden.workspace.go_live_early" in (params.get("operations") or ()):
        # Going live before the end of the dry run is an override: recorded as one.
        exception_record(
            workspace=confirmation.workspace,
            actor=actor,
            kind=ExceptionRecord.Kind.OVERRIDE,
            severity=ExceptionRecord.Severity.MEDIUM,
            what="Went live before the end of the dry run (live_after)",
            why=f"request {action.pk} by {action.requested_by}, approved",
            evidence={"changes": params.get("changes") or {}, "early": True},
            mitigation="Watch the first live actions closely.",
            subject=action.requested_by,
            action="governance.override",
        )
    created_id = getattr(result, "pk", None)
    if created_id is None and hasattr(result, "key"):  # IssuedKey
        created_id = result.key.pk
    ActionRequest.objects.filter(pk=action.pk).update(
        status=ActionRequest.Status.EXECUTED,
        result_status="succeeded",
        result_output={"target_id": str(created_id) if created_id else params.get("target_id")},
        result_reported_at=timezone.now(),
    )
    action.status = ActionRequest.Status.EXECUTED


@contextlib.contextmanager
def accepting_invitation() -> Iterator[None]:
    """Accepting an invitation creates the membership it offered. Its role was judged
    when it was offered (the guard refuses an invitation offering a role that may
    approve unless this door granted it), so the acceptance asks nobody again; nothing
    else passes (only creating a membership is granted)."""
    with granted(Grant(str(Target.MEMBERSHIP), NEW_ROWS, frozenset({"warden.member.grant_admin"}))):
        yield


def parse_when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise WardenError("validation_error", "Invalid date.", {"date": [str(value)]})
    return parsed
