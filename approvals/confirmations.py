"""A confirmation's life after it was opened (approvals.asking): humans approve or deny
it (four eyes, a threshold of approvals), it expires, and the requester uses its token
once. Each state change writes its audit entry in the same transaction.

Public services: `confirmation_use`, `confirmation_approve`, `confirmation_deny`,
`confirmation_expire`, `confirmations_expire_due`; the rules `required_permission` and
`is_answerable` are shared with the admin queue so it offers only decisions the services
would accept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from approvals import personal_data, tokens
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest
from approvals.outcome import Outcome
from approvals.params import storable_text
from approvals.signals import announce_action_decided
from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import audit_record
from common import telemetry
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Workspace
from tenants.selectors import user_can

MAX_REASON_CHARS = 2000
APPROVE_PERMISSION = "approve_actions"

# Run inside the approving transaction once a request reaches its threshold (the
# governed-operation door registers itself here: approvals.appliers).
APPROVAL_HOOKS: list[Callable] = []

_TOKEN_MESSAGES = {
    "confirmation_mismatch": (
        "This confirmation token is not valid for this tool, these parameters and this credential."
    ),
    "confirmation_pending": "A human has not approved this request yet.",
    "confirmation_denied": "A human denied this request.",
    "confirmation_expired": "This confirmation has expired; ask again.",
    "confirmation_used": "This confirmation token has already been used.",
}


def _token_error(code: str) -> WardenError:
    return WardenError(code, _TOKEN_MESSAGES[code])


# --- who may decide ------------------------------------------------------------------


def key_custody(key) -> tuple:
    """The key's owner and chain of custody (creator, rotator, minting keys' custody)."""
    return tuple(sorted(set(key.custody_user_ids or []) | {key.owner_id}))


# Who answers for the SUBJECT of a governed change (issue 21 item 5): lifting a key's
# suspension, rotating or widening it is decided by someone outside that key's own
# custody. target -> reader(workspace_id, target_id, values) -> user ids; registered by
# approvals.appliers (today: machine keys, whose custody is recorded on the key).
SUBJECT_CUSTODY: dict[str, Callable] = {}


def subject_custody(*, workspace_id, target: str, target_id, values: dict | None) -> set:
    """Everyone answerable for the object a governed change touches, as it is now."""
    reader = SUBJECT_CUSTODY.get(str(target))
    if reader is None:
        return set()
    return set(reader(workspace_id, target_id, values or {}))


def required_permission(action: ActionRequest) -> str:
    """Platform requests are decided only by roles that may manage what they change."""
    if action.is_platform:
        return (action.params or {}).get("approve_permission") or "manage_workspace"
    return APPROVE_PERMISSION


def is_answerable(action: ActionRequest, user) -> bool:
    """Four eyes over the whole chain of custody, as it is now and as it was."""
    if user is None:
        return True
    return user.pk in answerable_user_ids(action)


def answerable_user_ids(action: ActionRequest) -> set:
    """Everyone who may not decide `action`: its requester, the requesting key's custody
    and, for a governed change, its subject's custody (as recorded and as it is now)."""
    answerable = set(action.custody_user_ids or [])
    if action.accountable_user_id is not None:
        answerable.add(action.accountable_user_id)
    if action.key_id is not None:
        answerable |= set(key_custody(action.key))
    params = action.params or {}
    if action.is_platform and params.get("target"):
        # The subject's custody as it is now (it may have grown since the request).
        answerable |= subject_custody(
            workspace_id=action.workspace_id,
            target=params["target"],
            target_id=params.get("target_id"),
            values=params.get("values"),
        )
    return answerable


# --- expiry --------------------------------------------------------------------------


def _what_was_asked(confirmation: ConfirmationRequest, action: ActionRequest) -> dict:
    """The evidence of a decision names what was decided: the request, the summary the
    approver read and the digest of the exact parameters."""
    asked = {"action_request": str(action.pk), "params_digest": confirmation.params_digest}
    if action.is_platform or action.is_erased:
        # A platform request's summary describes a configuration change, not a person.
        asked["summary"] = confirmation.summary
    else:
        # Personal data: the chain holds its digest only (approvals.personal_data).
        asked["summary_sha256"] = personal_data.digest(confirmation.summary)
    return asked


def confirmation_expire(
    *,
    confirmation: ConfirmationRequest,
    actor: Actor,
    now: datetime,
    rationale: str = "no usable human decision before the confirmation expired",
    result_status: str = "",
) -> None:
    """Mark a locked confirmation expired, with its action request and audit entry.
    `result_status`: also set on the request (an agent withdrawing it, MCP tasks)."""
    confirmation.status = ConfirmationRequest.Status.EXPIRED
    confirmation.decided_at = confirmation.decided_at or now
    confirmation.save(update_fields=["status", "decided_at"])
    action = confirmation.action_request
    changes = {"status": ActionRequest.Status.EXPIRED}
    if result_status:
        changes["result_status"] = result_status
    ActionRequest.objects.filter(pk=action.pk).update(**changes)
    for field, value in changes.items():
        setattr(action, field, value)
    announce_action_decided(action, "action.expired")
    audit_record(
        EVENTS[AuditAction.CONFIRMATION_EXPIRED].event(
            target_id=confirmation.pk,
            tool=action.tool_name,
            input={
                **_what_was_asked(confirmation, action),
                "expires_at": confirmation.expires_at.isoformat(),
            },
            decision="expired",
            rationale=rationale,
            policy_version=action.policy_version,
            outcome="expired",
        ),
        workspace=confirmation.workspace,
        actor=actor,
    )


def confirmations_expire_due(*, now=None) -> int:
    """Expire confirmations past `expires_at` that are still pending (or approved but
    never used). Returns how many were expired; safe to run concurrently."""
    now = now or timezone.now()
    S = ConfirmationRequest.Status
    due = list(
        ConfirmationRequest.objects.filter(
            status__in=[S.PENDING, S.APPROVED], expires_at__lte=now
        ).values_list("pk", flat=True)[:10_000]
    )
    expired = 0
    actor = Actor.system("expiry")
    for pk in due:
        with transaction.atomic():
            confirmation = (
                ConfirmationRequest.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("action_request", "workspace")
                .filter(pk=pk, status__in=[S.PENDING, S.APPROVED], expires_at__lte=now)
                .first()
            )
            if confirmation is not None:
                confirmation_expire(confirmation=confirmation, actor=actor, now=now)
                expired += 1
    return expired


# --- the requester uses the token ----------------------------------------------------


def _is_requester(action: ActionRequest, key, accountable_user_id) -> bool:
    if key is not None:
        return action.key_id == key.pk
    return action.key_id is None and action.accountable_user_id == accountable_user_id


def confirmation_use(
    *,
    workspace: Workspace,
    key,
    accountable_user_id,
    actor: Actor,
    tool_name: str,
    digest: str,
    token: str,
    dry_run: bool,
) -> Outcome:
    """The requester's confirmed re-call: once a human approved, the token is used
    exactly once and the answer is allowed. It is bound to the tool, the params'
    digest and the requesting key (or human); every refusal raises WardenError and
    changes nothing but an expiry that was due anyway."""
    now = timezone.now()
    error = None
    with transaction.atomic():
        confirmation = (
            ConfirmationRequest.objects.select_for_update(of=("self",))
            .select_related("action_request")
            .filter(workspace=workspace, token_digest=tokens.token_digest(str(token)))
            .first()
        )
        action = confirmation.action_request if confirmation is not None else None
        status = confirmation.status if confirmation is not None else None
        S = ConfirmationRequest.Status
        if confirmation is None or not _is_requester(action, key, accountable_user_id):
            # Unknown, another workspace's or another key's token: all the same answer.
            error = _token_error("confirmation_mismatch")
        elif confirmation.params_digest != digest or (
            action.tool_name != tool_name and not (tool_name == "" and action.is_platform)
        ):
            error = _token_error("confirmation_mismatch")
        elif status == S.USED:
            error = _token_error("confirmation_used")
        elif status == S.DENIED:
            error = _token_error("confirmation_denied")
        elif status == S.EXPIRED:
            error = _token_error("confirmation_expired")
        elif confirmation.is_past_expiry(now):
            confirmation_expire(confirmation=confirmation, actor=Actor.system("expiry"), now=now)
            error = _token_error("confirmation_expired")
        elif action.dry_run and not dry_run:
            # Approved for a dry run ("nothing will be done for real"): void once live
            # (the workspace went live, or the tool left its own dry run).
            confirmation_expire(confirmation=confirmation, actor=Actor.system("went-live"), now=now)
            error = WardenError(
                "confirmation_expired",
                "This request was approved while the workspace was in dry run; it is void "
                "now that the workspace is live. Ask again.",
                {"reason": "approved_in_dry_run"},
            )
        elif status == S.PENDING:
            error = _token_error("confirmation_pending")
        else:
            confirmation.status = S.USED
            confirmation.used_at = now
            confirmation.save(update_fields=["status", "used_at"])
            if action.status != ActionRequest.Status.EXECUTED:  # applied by the door
                action.status = ActionRequest.Status.ALLOWED
            action.dry_run = dry_run
            action.save(update_fields=["status", "dry_run"])
            audit_record(
                EVENTS[AuditAction.CONFIRMATION_USED].event(
                    target_id=confirmation.pk,
                    tool=action.tool_name,
                    input={"action_request": str(action.pk), "dry_run": dry_run},
                    decision="allowed",
                    rationale="confirmed by a human; token used once",
                    policy_version=workspace.policy_version,
                    outcome="allowed",
                ),
                workspace=workspace,
                actor=actor,
            )
    if error is not None:
        raise error
    return Outcome.allow(action, dry_run=dry_run)


# --- humans decide -------------------------------------------------------------------


def _verdict(*, confirmation, reason: str, actor: Actor, verdict: str) -> ConfirmationRequest:
    if not actor.is_human:
        raise WardenError("humans_only", "Only a human session may approve or deny.")
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > MAX_REASON_CHARS or not storable_text(reason):
        raise WardenError(
            "validation_error",
            "A reason (1-2000 characters) is required.",
            {"reason": ["A non-blank reason of at most 2000 characters is required."]},
        )
    S = ConfirmationRequest.Status
    now = timezone.now()
    error = None
    with transaction.atomic():
        locked = (
            ConfirmationRequest.objects.select_for_update(of=("self",))
            .select_related("action_request", "action_request__key", "workspace")
            .get(pk=confirmation.pk)
        )
        action = locked.action_request
        user = actor.user
        permission = required_permission(action)
        if not user_can(user, APPROVE_PERMISSION, locked.workspace) or not user_can(
            user, permission, locked.workspace
        ):
            error = WardenError(
                "forbidden_by_scope",
                "You may not decide this request in this workspace.",
                {"required_permission": permission},
            )
        elif is_answerable(action, user):
            error = WardenError(
                "four_eyes",
                "You are answerable for this request (you own, created, rotated or minted "
                "its key, or proposed it); another person must decide.",
            )
        elif locked.status == S.EXPIRED:
            error = _token_error("confirmation_expired")
        elif locked.status != S.PENDING:
            error = WardenError("already_decided", f"This request is already {locked.status}.", {})
        elif locked.is_past_expiry(now):
            confirmation_expire(confirmation=locked, actor=Actor.system("expiry"), now=now)
            error = _token_error("confirmation_expired")
        elif ApprovalRecord.objects.filter(confirmation=locked, approver_user=user).exists():
            error = WardenError(
                "four_eyes", "You already gave your verdict; a different approver is needed."
            )
        else:
            ApprovalRecord.objects.create(
                workspace=locked.workspace,
                confirmation=locked,
                approver=actor.label,
                approver_user=user,
                verdict=verdict,
                reason=reason,
                threshold=locked.approvals_required,
                created_at=now,
            )
            approvals = ApprovalRecord.objects.filter(
                confirmation=locked, verdict=ApprovalRecord.Verdict.APPROVE
            ).count()
            if verdict == ApprovalRecord.Verdict.DENY:
                locked.status, action_status = S.DENIED, ActionRequest.Status.DENIED
            elif approvals >= locked.approvals_required:
                locked.status, action_status = S.APPROVED, ActionRequest.Status.APPROVED
            else:
                action_status = None
            if action_status is not None:
                locked.decided_at = now
                locked.save(update_fields=["status", "decided_at"])
                action.status = action_status
                action.save(update_fields=["status"])
            if action_status == ActionRequest.Status.APPROVED:
                for hook in APPROVAL_HOOKS:
                    hook(confirmation=locked, action=action, actor=actor)
                announce_action_decided(action, "action.approved")
            elif action_status == ActionRequest.Status.DENIED:
                announce_action_decided(action, "action.denied")
            audit_record(
                EVENTS[
                    AuditAction.CONFIRMATION_DENIED
                    if verdict == ApprovalRecord.Verdict.DENY
                    else AuditAction.CONFIRMATION_APPROVED
                ].event(
                    target_id=locked.pk,
                    tool=action.tool_name,
                    input={
                        **_what_was_asked(locked, action),
                        "approvals": approvals,
                        "approvals_required": locked.approvals_required,
                        **({"via": actor.via} if actor.via else {}),
                    },
                    decision=verdict,
                    rationale=reason,
                    policy_version=action.policy_version,
                    outcome=str(locked.status),
                ),
                workspace=locked.workspace,
                actor=actor,
            )
    if error is not None:
        raise error
    return locked


def _verdict_traced(*, confirmation, reason: str, actor: Actor, verdict: str):
    """A human's verdict as one span (`warden.approval`, linked to the decision that
    asked for it); once it decides the request, the wait (asked -> decided) goes to the
    approval-latency histogram."""
    with telemetry.traced(
        "warden.approval",
        link=confirmation.trace_parent,
        confirmation_id=confirmation.pk,
        verdict=verdict,
    ) as span:
        decided = _verdict(confirmation=confirmation, reason=reason, actor=actor, verdict=verdict)
        slug = decided.workspace.slug  # read with the locked row (select_related)
        span.set(workspace=slug, tool=decided.action_request.tool_name, outcome=decided.status)
    if decided.decided_at is not None and decided.status != ConfirmationRequest.Status.PENDING:
        telemetry.record_approval_latency(
            seconds=(decided.decided_at - decided.created_at).total_seconds(),
            verdict=verdict,
            workspace=slug,
        )
    return decided


def confirmation_approve(*, confirmation, reason: str, actor: Actor) -> ConfirmationRequest:
    """A human approves (one ApprovalRecord). Approved once the threshold is met."""
    return _verdict_traced(
        confirmation=confirmation,
        reason=reason,
        actor=actor,
        verdict=ApprovalRecord.Verdict.APPROVE,
    )


def confirmation_deny(*, confirmation, reason: str, actor: Actor) -> ConfirmationRequest:
    """A human denies: one denial decides."""
    return _verdict_traced(
        confirmation=confirmation, reason=reason, actor=actor, verdict=ApprovalRecord.Verdict.DENY
    )
