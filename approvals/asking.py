"""Asking to act: an agent's request (or a governed change filed by approvals.door) is
decided by the gate and recorded with its audit entry in one transaction. The answer
is a domain `Outcome` (allowed, denied with a code, pending with a confirmation), never
HTTP: approvals.api.presenter renders it. A first call with an idempotency key stores
its outcome on the request row; a retry replays that outcome instead of deciding again.

The same call asked again (same key, tool and parameters) while a human is involved is
one request, not another one: while the earlier request waits, the call joins it (same
confirmation, no second notification); once a human denied it, the call is answered
with that denial and its reason for as long as the workspace's confirmation TTL from
when it was asked; once approved, the gateway's re-call spends the approval
(`run_approved`). Concurrent identical calls serialize on a per-call lock.

Public services: `action_submit`, `platform_request_submit`, `platform_request_collect`;
`tool_lookup` reads the catalog for a decision (per-process cache)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from approvals import arguments, credential_scan, gate, personal_data, tokens
from approvals.confirmations import confirmation_use, key_custody
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest, Tool
from approvals.outcome import Outcome
from approvals.params import params_digest, require_storable, store_params
from approvals.signals import announce_confirmation_requested
from audit.events import EVENTS
from audit.models import AuditAction, ExceptionRecord
from audit.services import audit_record_with, exception_record
from common import telemetry
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Workspace

# Denials that also open an exception record (which points at their audit entry).
FLAGGED_DENIALS = ("policy_error", "denied_by_policy")

DENIAL_MESSAGES = {
    # One message for unknown, disabled and not-allowlisted tools: no existence oracle.
    "tool_not_allowed": "This tool does not exist or this key may not call it.",
    "forbidden_by_scope": "This key lacks the scope this tool's level needs.",
    "writes_disabled": "Writes are switched off in this workspace.",
    "policy_error": "The tool's policy could not be evaluated, so the action is denied.",
    "validation_error": "Invalid input.",
    "invalid_params": "The parameters do not match the tool's input schema.",
}


# --- who asks ------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPrincipal:
    """A human session, as the gate sees it: it holds only the control-plane scope its
    endpoint already checked through guardian, and never runs unattended."""

    pk: Any
    name: str
    scopes: tuple[str, ...]
    tool_allowlist: tuple[str, ...] = ()
    unattended_mode: bool = False


@dataclass
class _Ask:
    workspace: Workspace
    principal: Any
    key: Any
    actor: Actor
    accountable_user_id: Any
    tool: Tool | None
    tool_name: str
    params: dict
    reason: str
    idempotency_key: str
    scope: str = ""
    dry_run: bool = False
    # Humans answerable for the request (four eyes): none of them may approve it.
    custody: tuple = ()
    # Platform requests filed by approvals.door carry their own summary and threshold,
    # and bind their token to the requested change only (`binding`), not to the
    # before/after snapshots that change once the request is applied.
    summary: str = ""
    approvals_required: int = 1
    binding: dict | None = None
    # An agent's call: the same call asked again is one request (see the module doc).
    same_call: bool = False
    # ... and, once a human approved it, asking again spends the approval (gateway).
    run_approved: bool = False


# --- the catalog, per process ----------------------------------------------------------

# Tool rows by (workspace, policy version, name), per process. Every catalog change
# bumps the workspace's policy version in the same transaction (approvals.catalog:
# tool_create/update/delete), so an entry can never describe a catalog other than the
# one at its version: the decision path needs no tool query once a version is warm.
# Workspace settings are never cached (they come from the key's workspace, read fresh
# by authentication).
_TOOL_CACHE: dict[tuple, Tool | None] = {}
_TOOL_CACHE_MAX = 4096
_MISSING = object()


def tool_lookup(*, workspace: Workspace, name: str) -> tuple[Workspace, Tool | None]:
    """(workspace, tool or None) for a decision, with the policy version it belongs to."""
    cache_key = (workspace.pk, workspace.policy_version, name)
    cached = _TOOL_CACHE.get(cache_key, _MISSING)
    if cached is not _MISSING:
        return workspace, cached
    tool = (
        Tool.objects.select_related("workspace")
        .filter(workspace_id=workspace.pk, name=name[:200])
        .first()
    )
    if tool is not None:
        # Row and version from one statement: the version recorded on the decision is
        # never older than the catalog row it used.
        workspace = tool.workspace
        tool._state.fields_cache.pop("workspace", None)  # settings are never cached
    if len(_TOOL_CACHE) >= _TOOL_CACHE_MAX:
        _TOOL_CACHE.clear()
    _TOOL_CACHE[(workspace.pk, workspace.policy_version, name)] = tool
    return workspace, tool


# --- asking --------------------------------------------------------------------------


def _replay(key, idempotency_key: str) -> Outcome | None:
    """The outcome first recorded under this key's idempotency key, if any."""
    prior = ActionRequest.objects.filter(key=key, idempotency_key=idempotency_key).first()
    if prior is None:
        return None
    return Outcome.from_stored(prior, prior.outcome)


def action_submit(
    *,
    key,
    tool_name: str,
    params: dict,
    actor: Actor,
    reason: str = "",
    idempotency_key: str = "",
    confirmed: bool = False,
    confirmation_token: str = "",
    run_approved: bool = False,
) -> Outcome:
    """An agent asks to act (POST /api/v1/actions). Never raises for a decision:
    denials are outcomes too, recorded like the rest. With `run_approved` (the gateway,
    whose clients call again with the same arguments instead of sending the token), an
    approved, unused confirmation of the very same call is used as if confirmed."""
    if idempotency_key and not confirmed:
        prior = _replay(key, idempotency_key)
        if prior is not None:
            return prior
    workspace, tool = tool_lookup(workspace=key.workspace, name=tool_name)
    ask = _Ask(
        workspace=workspace,
        principal=key,
        key=key,
        actor=actor,
        accountable_user_id=key.owner_id,
        tool=tool,
        tool_name=tool_name,
        params=params,
        reason=reason,
        idempotency_key="" if confirmed else idempotency_key,
        dry_run=workspace.is_dry_run or bool(tool is not None and tool.dry_run),
        custody=key_custody(key),
        same_call=True,
        run_approved=run_approved,
    )
    return _submit(ask, confirmed=confirmed, token=confirmation_token)


def _platform_principal(actor: Actor, scope: str):
    if actor.key is not None:
        principal, accountable = actor.key, actor.key.owner_id
    elif actor.user is not None:
        principal = SessionPrincipal(pk=actor.user.pk, name=actor.label, scopes=(scope,))
        accountable = actor.user.pk
    else:
        raise WardenError("humans_only", "Platform requests need a key or a human session.")
    if actor.key is not None and scope not in actor.key.scopes:
        principal = SessionPrincipal(pk=actor.key.pk, name=actor.label, scopes=(scope,))
    return principal, accountable


def platform_request_submit(
    *,
    workspace: Workspace,
    actor: Actor,
    tool: Tool,
    params: dict,
    binding: dict,
    summary: str,
    approvals_required: int,
    custody: list,
    scope: str,
    reason: str = "",
) -> Outcome:
    """File a platform request built by approvals.door (keys and human sessions may
    both propose)."""
    principal, accountable = _platform_principal(actor, scope)
    ask = _Ask(
        workspace=workspace,
        principal=principal,
        key=actor.key,
        actor=actor,
        accountable_user_id=accountable,
        tool=tool,
        tool_name=tool.name,
        params=params,
        reason=reason,
        idempotency_key="",
        scope=scope,
        dry_run=False,
        custody=tuple(custody),
        summary=summary,
        approvals_required=approvals_required,
        binding=binding,
    )
    return _submit(ask, confirmed=False, token="")


def platform_request_collect(
    *, workspace: Workspace, actor: Actor, binding: dict, token: str
) -> Outcome:
    """The proposer's confirmed re-call of a platform request: once a human approved
    (and the door applied it), use the token exactly once and answer with the request.
    The token is bound to the requested change (`binding`), the requester and the
    workspace."""
    _, accountable = _platform_principal(actor, "workspace:admin")
    return confirmation_use(
        workspace=workspace,
        key=actor.key,
        accountable_user_id=accountable,
        actor=actor,
        tool_name="",
        digest=params_digest(binding),
        token=token,
        dry_run=False,
    )


def _submit(ask: _Ask, *, confirmed: bool, token: str) -> Outcome:
    """One decision, as one span (`warden.decide`, a child of the caller's trace) and
    one count by outcome; never a parameter value in either."""
    slug = ask.workspace.slug
    with telemetry.traced("warden.decide", workspace=slug, tool=ask.tool_name) as span:
        outcome = _decide(ask, confirmed=confirmed, token=token)
        span.set(
            outcome=str(outcome.kind),
            code=outcome.code,
            action_id=outcome.action_id,
            confirmation_id=outcome.confirmation_id,
            dry_run=outcome.dry_run,
        )
    telemetry.count_decision(outcome=str(outcome.kind), workspace=slug)
    return outcome


def _decide(ask: _Ask, *, confirmed: bool, token: str) -> Outcome:
    if bool(confirmed) != bool(token):
        raise WardenError(
            "validation_error",
            "Send confirmed: true together with the confirmation_token.",
            {"confirmation_token": ["Required with confirmed: true (and only then)."]},
        )
    if not isinstance(ask.params, dict):
        raise WardenError("validation_error", "params must be a JSON object.", {})
    require_storable(ask.params, "params")
    decision = gate.decide(
        ask.principal,
        ask.workspace,
        ask.tool,
        ask.params,
        ask.workspace.policy_version,
        scope=ask.scope,
    )
    decision = arguments.check(decision, ask.tool, ask.params)
    shadow = shadow_decision(ask, decision)
    telemetry.annotate(rule=decision.rule)
    if ask.binding is not None:
        stored = ask.params
        digest = params_digest(ask.binding)
    elif ask.tool is not None:
        stored = store_params(ask.params, ask.tool.secret_params)
        digest = params_digest(stored)
    else:
        # Unknown tool: nobody declared which params are secret, so keep none of them
        # (the digest still identifies the call).
        digest = params_digest(store_params(ask.params, ()))
        stored = {}
    if confirmed and not decision.denied:
        return confirmation_use(
            workspace=ask.workspace,
            key=ask.key,
            accountable_user_id=ask.accountable_user_id,
            actor=ask.actor,
            tool_name=ask.tool_name,
            digest=digest,
            token=token,
            dry_run=ask.dry_run,
        )
    return _record(ask, decision, stored, digest, shadow=shadow)


def shadow_decision(ask: _Ask, live: gate.Decision) -> dict | None:
    """What the tool's shadow rule would have decided, beside the live decision (None:
    no shadow rule). Decided by the same gate with the shadow rule in place of the live
    one; only recorded, never enforced."""
    tool = ask.tool
    if tool is None or ask.binding is not None or not tool.has_shadow:
        return None
    would = gate.decide(
        ask.principal, ask.workspace, tool.shadow_copy(), ask.params, live.policy_version
    )
    would = arguments.check(would, tool, ask.params)
    return {
        "outcome": would.outcome,
        "code": would.code,
        "rule": would.rule,
        "rule_checked": tool.shadow_rule,
        "agrees": (would.outcome, would.code) == (live.outcome, live.code),
    }


# --- the same call asked again ---------------------------------------------------------


def _same_call_lock(ask: _Ask, digest: str) -> None:
    """Serialize identical calls until the caller's transaction ends (PostgreSQL: a
    transaction-level advisory lock on the call's identity; SQLite writes one at a time
    anyway). A hash collision only makes two different calls wait for each other."""
    if connection.vendor != "postgresql":
        return
    identity = f"same-call|{ask.key.pk}|{ask.tool_name[:200]}|{digest}".encode()
    lock_id = int.from_bytes(hashlib.blake2b(identity, digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def _denied_before(action: ActionRequest, confirmation: ConfirmationRequest, ttl) -> Outcome:
    reason = (
        ApprovalRecord.objects.filter(
            confirmation=confirmation, verdict=ApprovalRecord.Verdict.DENY
        )
        .values_list("reason", flat=True)
        .first()
    ) or ""
    decided = confirmation.decided_at or confirmation.created_at
    return Outcome.deny(
        action,
        code="confirmation_denied",
        message=f"A human denied this request: {reason}" if reason else "A human denied it.",
        detail={
            "action_id": str(action.pk),
            "reason": reason,
            "denied_at": decided.isoformat(),
            "answered_until": (confirmation.created_at + ttl).isoformat(),
        },
    )


def _same_call_answer(ask: _Ask, digest: str, now) -> Outcome | None:
    """The answer of this key's latest request for the very same call, when a human is
    (or was, recently) involved in it: join it while it waits, its denial once denied,
    its approval spent (`run_approved`) once approved. None: file a new request."""
    _same_call_lock(ask, digest)
    ttl = ask.workspace.confirmation_ttl
    latest = (
        ConfirmationRequest.objects.select_related("action_request")
        .filter(
            workspace_id=ask.workspace.pk,
            action_request__key_id=ask.key.pk,
            action_request__tool_name=ask.tool_name[:200],
            params_digest=digest,
            created_at__gt=now - ttl,
        )
        .order_by("-created_at")
        .first()
    )
    if latest is None:
        return None
    S = ConfirmationRequest.Status
    action = latest.action_request
    if latest.status == S.DENIED:
        return _denied_before(action, latest, ttl)
    if latest.status not in (S.PENDING, S.APPROVED) or latest.is_past_expiry(now):
        return None
    if action.dry_run and not ask.dry_run:
        return None  # asked in dry run: an approval would be void now that it is live
    if latest.status == S.APPROVED and ask.run_approved:
        return confirmation_use(
            workspace=ask.workspace,
            key=ask.key,
            accountable_user_id=ask.accountable_user_id,
            actor=ask.actor,
            tool_name=ask.tool_name,
            digest=digest,
            token=tokens.confirmation_token(latest.pk),
            dry_run=ask.dry_run,
        )
    return replace(Outcome.ask_human(action, latest), joined=True)


# --- recording a decision ------------------------------------------------------------


def _denied(ask: _Ask, action: ActionRequest, decision: gate.Decision) -> Outcome:
    code = decision.code
    message = DENIAL_MESSAGES.get(code, "Denied.")
    if code == "tool_not_allowed":
        detail = {"tool": ask.tool_name}
    elif code == "forbidden_by_scope":
        detail = {"required_scope": decision.detail.get("required_scope", "")}
    elif code == "invalid_params":
        detail = dict(decision.detail)
    elif code == "denied_by_policy":
        # The rule's stated reason is the admin's text, written for the agent.
        message = decision.detail.get("stated", "Denied.")
        detail = {"tool": ask.tool_name}
    else:
        detail = {}
    return Outcome.deny(action, code=code, message=message, detail=detail)


def _confirmation_for(
    ask: _Ask, action: ActionRequest, decision: gate.Decision, digest: str, now
) -> ConfirmationRequest:
    """The (unsaved) confirmation a pending request waits on, and its token's digest."""
    irreversible = decision.irreversible
    confirmation = ConfirmationRequest(
        workspace=ask.workspace,
        action_request=action,
        params_digest=digest,
        summary=ask.summary or decision.summary,
        irreversible=irreversible,
        approvals_required=max(
            ask.approvals_required,
            2 if irreversible and ask.workspace.require_two_approvals_for_irreversible else 1,
        ),
        created_at=now,
        expires_at=now + ask.workspace.confirmation_ttl,
        trace_parent=telemetry.current_traceparent(),
    )
    confirmation.token_digest = tokens.token_digest(tokens.confirmation_token(confirmation.pk))
    return confirmation


def _flag(ask: _Ask, action: ActionRequest, decision: gate.Decision) -> None:
    """Open the exception record a flagged denial calls for (FLAGGED_DENIALS)."""
    if decision.code == "policy_error":
        exception_record(
            workspace=ask.workspace,
            actor=ask.actor,
            kind=ExceptionRecord.Kind.POLICY_ERROR,
            severity=ExceptionRecord.Severity.MEDIUM,
            what=f"Condition of {ask.tool_name} failed; the action was denied"[:300],
            why=decision.reason,
            evidence={
                "action_request": str(action.pk),
                "tool": ask.tool_name,
                "condition": ask.tool.condition if ask.tool is not None else "",
                "policy_version": decision.policy_version,
            },
            mitigation="Fix the tool's condition or the agent's parameters.",
            subject=ask.actor.label,
            action=AuditAction.POLICY_ERROR,
        )
    elif decision.code == "denied_by_policy":
        # A deny rule fired: an agent tried something the policy forbids.
        exception_record(
            workspace=ask.workspace,
            actor=ask.actor,
            kind=ExceptionRecord.Kind.DENIAL,
            severity=ExceptionRecord.Severity.LOW,
            what=f"Deny rule of {ask.tool_name} refused a call"[:300],
            why=decision.reason,
            evidence={"action_request": str(action.pk), "tool": ask.tool_name},
            mitigation="Check why the agent asked for something the policy forbids.",
            subject=ask.actor.label,
            action=AuditAction.DENIAL_RECORDED,
        )


def _params_evidence(action: ActionRequest, stored: dict, digest: str) -> dict:
    """What the chain holds of the params: a platform request's (a configuration change)
    as they are, an agent request's (personal data, sealed on the row) as their digest
    only, so erasing them leaves the chain verifiable (approvals.personal_data)."""
    if action.is_platform:
        return {"params": stored}
    return {"params_sha256": personal_data.digest(stored)}


def _subject_digest(ask: _Ask) -> str:
    """The keyed digest of the data subject the tool's `subject_param` names ('')."""
    name = ask.tool.subject_param if ask.tool is not None else ""
    if not name or ask.binding is not None:
        return ""
    return personal_data.subject_digest(ask.workspace.pk, ask.params.get(name))


_STATUS_BY_DECISION = {
    gate.ALLOWED: ActionRequest.Status.ALLOWED,
    gate.DENIED: ActionRequest.Status.DENIED,
    gate.REQUIRES_CONFIRMATION: ActionRequest.Status.PENDING,
}


def _record(
    ask: _Ask, decision: gate.Decision, stored: dict, digest: str, *, shadow: dict | None = None
) -> Outcome:
    now = timezone.now()
    saved_tool = ask.tool if ask.tool is not None and not ask.tool._state.adding else None
    try:
        # A savepoint only where an insert can fail and be answered: two first calls
        # racing with one idempotency key (foreign keys are checked at commit). Nested
        # in the gateway's transaction, it would cost two round trips on every call.
        with transaction.atomic(savepoint=bool(ask.idempotency_key)):
            if decision.requires_confirmation and ask.same_call and ask.key is not None:
                earlier = _same_call_answer(ask, digest, now)
                if earlier is not None:
                    return earlier
            action = ActionRequest(
                workspace=ask.workspace,
                key=ask.key,
                requested_by=ask.actor.label,
                accountable_user_id=ask.accountable_user_id,
                custody_user_ids=list(ask.custody),
                tool_name=ask.tool_name[:200],
                tool=saved_tool,
                params=stored,
                params_digest=digest,
                reason=ask.reason,
                decision=decision.outcome,
                denial_code=decision.code,
                rationale=f"{decision.rule}: {decision.reason}",
                status=_STATUS_BY_DECISION[decision.outcome],
                policy_version=decision.policy_version,
                dry_run=ask.dry_run,
                shadow=shadow,
                idempotency_key=ask.idempotency_key,
                created_at=now,
            )
            action.subject_digest = _subject_digest(ask)
            confirmation = None
            if decision.allowed:
                outcome = Outcome.allow(action, dry_run=ask.dry_run)
            elif decision.denied:
                outcome = _denied(ask, action, decision)
            else:
                confirmation = _confirmation_for(ask, action, decision, digest, now)
                outcome = Outcome.ask_human(action, confirmation)
            action.outcome = outcome.stored()  # replayed for an idempotent retry
            # The request row rides with the chain append (audit_record_with); a decision
            # that opens an exception record appends behind the head lock instead.
            audit_record_with(
                action,
                EVENTS[AuditAction.ACTION_DECIDED].event(
                    target_id=action.pk,
                    tool=ask.tool_name[:200],
                    input={
                        **_params_evidence(action, stored, digest),
                        "reason": ask.reason,
                        "dry_run": ask.dry_run,
                        **({"shadow": shadow} if shadow is not None else {}),
                    },
                    decision=decision.outcome,
                    rationale=f"{decision.rule}: {decision.reason}",
                    policy_version=decision.policy_version,
                    outcome=decision.code or str(action.status),
                ),
                workspace=ask.workspace,
                actor=ask.actor,
                group_commit=decision.code not in FLAGGED_DENIALS,
            )
            if confirmation is not None:
                confirmation.save(force_insert=True)
            credential_scan.record_findings(ask.workspace, ask.actor, action)
            _flag(ask, action, decision)
            if confirmation is not None:
                announce_confirmation_requested(confirmation.pk)
    except IntegrityError:
        # Two first calls raced with one idempotency key: the loser answers like a retry.
        if ask.idempotency_key and ask.key is not None:
            prior = _replay(ask.key, ask.idempotency_key)
            if prior is not None:
                return prior
        if saved_tool is not None and not Tool.objects.filter(pk=saved_tool.pk).exists():
            # The tool was deleted while this request was in flight: it no longer exists.
            gone = replace(ask, tool=None)
            missing = gate.decide(ask.principal, ask.workspace, None, {}, decision.policy_version)
            return _record(gone, missing, stored, digest)
        raise
    return outcome
