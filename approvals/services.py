"""Every state change of the gate: action requests, confirmations, approvals and
results. Each writes its audit entry in the same transaction. Tool catalog writes live
in approvals.catalog.

Public contract other apps code against: `confirmation_approve`, `confirmation_deny`,
`confirmations_expire_due` (and the selectors/signals modules)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import arguments, credential_scan, gate
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest, Tool
from approvals.signals import action_decided, confirmation_requested
from audit.models import AuditAction, ExceptionRecord
from audit.services import audit_record, audit_record_with, exception_record
from common.actor import Actor
from common.errors import ERROR_STATUS, WardenError, error_payload
from keys import secrets as key_secrets
from tenants.models import Workspace
from tenants.selectors import user_can

TOKEN_PREFIX = "ct_"
SECRET_PARAM_PREFIX = "hmac-sha256:"
MAX_RESULT_OUTPUT_BYTES = 64 * 1024
MAX_REASON_CHARS = 2000
APPROVE_PERMISSION = "approve_actions"

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


# --- parameters and tokens -----------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def _storable_text(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def require_storable(value: Any, field: str) -> None:
    """Refuse JSON that PostgreSQL cannot store as sent (NUL characters, lone
    surrogates), rather than storing something other than what was approved."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            ok = _storable_text(item)
        elif isinstance(item, dict):
            ok = all(_storable_text(str(k)) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            ok = True
            stack.extend(item)
        else:
            ok = True
        if not ok:
            raise WardenError(
                "validation_error",
                "Text may not contain NUL characters or unpaired surrogates.",
                {field: ["Contains NUL characters or unpaired surrogates."]},
            )


def store_params(params: dict, secret_params) -> dict:
    """The params as stored and audited: secret ones replaced by an HMAC digest, and
    credential-shaped values in the others too (approvals.credential_scan)."""
    secret = set(secret_params or ())
    return {
        name: (
            SECRET_PARAM_PREFIX + key_secrets.digest(canonical_json(value).decode("utf-8"))
            if name in secret
            else credential_scan.mask(value)
        )
        for name, value in params.items()
    }


def params_digest(stored: dict) -> str:
    """What a confirmation token is bound to: SHA-256 of the canonical stored params."""
    return hashlib.sha256(canonical_json(stored)).hexdigest()


def confirmation_token(confirmation_id) -> str:
    """The token for a confirmation, derived with the server pepper. Only its digest is
    stored; deriving (rather than storing) it lets an idempotent retry of the first
    call answer the very same body without keeping the token anywhere."""
    mac = hmac.new(
        key_secrets.pepper(),
        f"warden-confirmation-token:{confirmation_id}".encode(),
        hashlib.sha256,
    ).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def token_digest(token: str) -> str:
    return key_secrets.digest(token)


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
class ActionAnswer:
    """What the API answers: status code and body (already in wire format)."""

    status: int
    body: dict
    action_request: ActionRequest | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 200 and self.body.get("decision") == "allowed"


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


# --- asking --------------------------------------------------------------------------


def _replay(key, idempotency_key: str) -> ActionAnswer | None:
    prior = (
        ActionRequest.objects.filter(key=key, idempotency_key=idempotency_key)
        .select_related("confirmation")
        .first()
    )
    if prior is None:
        return None
    body = dict(prior.response)
    if body.get("requires_confirmation"):
        body["confirmation_token"] = confirmation_token(prior.confirmation.pk)
    return ActionAnswer(prior.response_status, body, prior)


# Tool rows by (workspace, policy version, name), per process. Every catalog change
# bumps the workspace's policy version in the same transaction (approvals.catalog:
# tool_create/update/delete), so an entry can never describe a catalog other than the
# one at its version: the decision path needs no tool query once a version is warm.
# Workspace settings are never cached (they come from the key's workspace, read fresh
# by authentication).
_TOOL_CACHE: dict[tuple, Tool | None] = {}
_TOOL_CACHE_MAX = 4096
_MISSING = object()


def catalog_tool(workspace: Workspace, name: str) -> tuple[Workspace, Tool | None]:
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
) -> ActionAnswer:
    """An agent asks to act (POST /api/v1/actions). Never raises for a decision:
    denials are answers too, recorded like the rest."""
    if idempotency_key and not confirmed:
        prior = _replay(key, idempotency_key)
        if prior is not None:
            return prior
    workspace, tool = catalog_tool(key.workspace, tool_name)
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
        dry_run=workspace.is_dry_run,
        custody=key_custody(key),
    )
    return submit(ask, confirmed=confirmed, token=confirmation_token)


def key_custody(key) -> tuple:
    """The key's owner and chain of custody (creator, rotator, minting keys' custody)."""
    return tuple(sorted(set(key.custody_user_ids or []) | {key.owner_id}))


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


def platform_submit(
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
) -> ActionAnswer:
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
    return submit(ask, confirmed=False, token="")


def platform_collect(
    *, workspace: Workspace, actor: Actor, binding: dict, token: str
) -> ActionAnswer:
    """The proposer's confirmed re-call of a platform request: once a human approved
    (and the door applied it), use the token exactly once and answer with the request.
    The token is bound to the requested change (`binding`), the requester and the
    workspace."""
    principal, accountable = _platform_principal(actor, "workspace:admin")
    ask = _Ask(
        workspace=workspace,
        principal=principal,
        key=actor.key,
        actor=actor,
        accountable_user_id=accountable,
        tool=None,
        tool_name="",
        params={},
        reason="",
        idempotency_key="",
    )
    return _use_confirmation(ask, token=token, digest=params_digest(binding))


def submit(ask: _Ask, *, confirmed: bool, token: str) -> ActionAnswer:
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
        return _use_confirmation(ask, token=token, digest=digest)
    return _record(ask, decision, stored, digest)


def _denial_body(ask: _Ask, decision: gate.Decision) -> dict:
    code = decision.code
    if code == "tool_not_allowed":
        detail = {"tool": ask.tool_name}
    elif code == "forbidden_by_scope":
        detail = {"required_scope": decision.detail.get("required_scope", "")}
    elif code == "invalid_params":
        detail = dict(decision.detail)
    elif code == "denied_by_policy":
        # The rule's stated reason is the admin's text, written for the agent.
        return error_payload(
            code, decision.detail.get("stated", "Denied."), {"tool": ask.tool_name}
        )
    else:
        detail = {}
    return error_payload(code, DENIAL_MESSAGES.get(code, "Denied."), detail)


def _record(ask: _Ask, decision: gate.Decision, stored: dict, digest: str) -> ActionAnswer:
    status_by_outcome = {
        gate.ALLOWED: ActionRequest.Status.ALLOWED,
        gate.DENIED: ActionRequest.Status.DENIED,
        gate.REQUIRES_CONFIRMATION: ActionRequest.Status.PENDING,
    }
    now = timezone.now()
    saved_tool = ask.tool if ask.tool is not None and not ask.tool._state.adding else None
    try:
        with transaction.atomic():
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
                status=status_by_outcome[decision.outcome],
                policy_version=decision.policy_version,
                dry_run=ask.dry_run,
                idempotency_key=ask.idempotency_key,
                created_at=now,
            )
            token = None
            confirmation = None
            if decision.allowed:
                status, body = (
                    200,
                    {
                        "id": str(action.pk),
                        "decision": "allowed",
                        "dry_run": ask.dry_run,
                    },
                )
            elif decision.denied:
                status, body = ERROR_STATUS[decision.code], _denial_body(ask, decision)
            else:
                irreversible = decision.irreversible
                summary = ask.summary or decision.summary
                confirmation = ConfirmationRequest(
                    workspace=ask.workspace,
                    action_request=action,
                    params_digest=digest,
                    summary=summary,
                    irreversible=irreversible,
                    approvals_required=max(
                        ask.approvals_required,
                        2
                        if irreversible and ask.workspace.require_two_approvals_for_irreversible
                        else 1,
                    ),
                    created_at=now,
                    expires_at=now + ask.workspace.confirmation_ttl,
                )
                token = confirmation_token(confirmation.pk)
                confirmation.token_digest = token_digest(token)
                status, body = (
                    202,
                    {
                        "id": str(action.pk),
                        "decision": "requires_confirmation",
                        "requires_confirmation": True,
                        "confirmation_token": None,  # filled below; never stored
                        "summary": summary,
                        "irreversible": irreversible,
                        "expires_at": confirmation.expires_at.isoformat().replace("+00:00", "Z"),
                    },
                )
            action.response_status = status
            action.response = body
            # The request row rides with the chain append (audit_record_with); a decision
            # that opens an exception record appends behind the head lock instead.
            audit_record_with(
                action,
                group_commit=decision.code not in FLAGGED_DENIALS,
                workspace=ask.workspace,
                actor=ask.actor,
                action=AuditAction.ACTION_DECIDED,
                target_type="action_request",
                target_id=action.pk,
                tool=ask.tool_name[:200],
                input={"params": stored, "reason": ask.reason, "dry_run": ask.dry_run},
                decision=decision.outcome,
                rationale=f"{decision.rule}: {decision.reason}",
                policy_version=decision.policy_version,
                outcome=decision.code or str(action.status),
            )
            if confirmation is not None:
                confirmation.save(force_insert=True)
            credential_scan.record_findings(ask.workspace, ask.actor, action)
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
            if confirmation is not None:
                confirmation_id = confirmation.pk
                transaction.on_commit(
                    lambda: confirmation_requested.send(
                        sender=ConfirmationRequest, confirmation_id=confirmation_id
                    )
                )
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
    if token is not None:
        body = {**body, "confirmation_token": token}
    return ActionAnswer(status, body, action)


def _is_requester(action: ActionRequest, ask: _Ask) -> bool:
    if ask.key is not None:
        return action.key_id == ask.key.pk
    return action.key_id is None and action.accountable_user_id == ask.accountable_user_id


def _token_error(code: str) -> WardenError:
    messages = {
        "confirmation_mismatch": (
            "This confirmation token is not valid for this tool, these parameters and "
            "this credential."
        ),
        "confirmation_pending": "A human has not approved this request yet.",
        "confirmation_denied": "A human denied this request.",
        "confirmation_expired": "This confirmation has expired; ask again.",
        "confirmation_used": "This confirmation token has already been used.",
    }
    return WardenError(code, messages[code])


def _use_confirmation(ask: _Ask, *, token: str, digest: str) -> ActionAnswer:
    now = timezone.now()
    error = None
    with transaction.atomic():
        confirmation = (
            ConfirmationRequest.objects.select_for_update(of=("self",))
            .select_related("action_request")
            .filter(workspace=ask.workspace, token_digest=token_digest(str(token)))
            .first()
        )
        action = confirmation.action_request if confirmation is not None else None
        status = confirmation.status if confirmation is not None else None
        S = ConfirmationRequest.Status
        if confirmation is None or not _is_requester(action, ask):
            # Unknown, another workspace's or another key's token: all the same answer.
            error = _token_error("confirmation_mismatch")
        elif confirmation.params_digest != digest or (
            action.tool_name != ask.tool_name and not (ask.tool_name == "" and action.is_platform)
        ):
            error = _token_error("confirmation_mismatch")
        elif status == S.USED:
            error = _token_error("confirmation_used")
        elif status == S.DENIED:
            error = _token_error("confirmation_denied")
        elif status == S.EXPIRED:
            error = _token_error("confirmation_expired")
        elif confirmation.is_past_expiry(now):
            _expire(confirmation, Actor.system("expiry"), now)
            error = _token_error("confirmation_expired")
        elif action.dry_run and not ask.workspace.is_dry_run:
            # Approved for a dry run ("nothing will be done for real"): void once live.
            _expire(confirmation, Actor.system("went-live"), now)
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
            action.dry_run = ask.dry_run
            action.save(update_fields=["status", "dry_run"])
            audit_record(
                workspace=ask.workspace,
                actor=ask.actor,
                action=AuditAction.CONFIRMATION_USED,
                target_type="confirmation",
                target_id=confirmation.pk,
                tool=action.tool_name,
                input={"action_request": str(action.pk), "dry_run": ask.dry_run},
                decision="allowed",
                rationale="confirmed by a human; token used once",
                policy_version=ask.workspace.policy_version,
                outcome="allowed",
            )
    if error is not None:
        raise error
    body = {"id": str(action.pk), "decision": "allowed", "dry_run": ask.dry_run}
    return ActionAnswer(200, body, action)


# --- approving -----------------------------------------------------------------------


def _announce(action: ActionRequest, event: str) -> None:
    """Tell listeners (webhooks for agents) once the state change has committed. Only
    agents' requests are announced; governed changes have their own trail."""
    if action.key_id is None:
        return
    action_id = action.pk
    transaction.on_commit(
        lambda: action_decided.send(sender=ActionRequest, action_id=action_id, event=event)
    )


def _expire(confirmation: ConfirmationRequest, actor: Actor, now: datetime) -> None:
    """Mark a locked confirmation expired, with its action request and audit entry."""
    confirmation.status = ConfirmationRequest.Status.EXPIRED
    confirmation.decided_at = confirmation.decided_at or now
    confirmation.save(update_fields=["status", "decided_at"])
    action = confirmation.action_request
    ActionRequest.objects.filter(pk=action.pk).update(status=ActionRequest.Status.EXPIRED)
    action.status = ActionRequest.Status.EXPIRED
    _announce(action, "action.expired")
    audit_record(
        workspace=confirmation.workspace,
        actor=actor,
        action=AuditAction.CONFIRMATION_EXPIRED,
        target_type="confirmation",
        target_id=confirmation.pk,
        tool=action.tool_name,
        input={
            "action_request": str(action.pk),
            "expires_at": confirmation.expires_at.isoformat(),
        },
        decision="expired",
        rationale="no usable human decision before the confirmation expired",
        policy_version=action.policy_version,
        outcome="expired",
    )


def _verdict(*, confirmation, reason: str, actor: Actor, verdict: str) -> ConfirmationRequest:
    if not actor.is_human:
        raise WardenError("humans_only", "Only a human session may approve or deny.")
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > MAX_REASON_CHARS or not _storable_text(reason):
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
            _expire(locked, Actor.system("expiry"), now)
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
                _announce(action, "action.approved")
            elif action_status == ActionRequest.Status.DENIED:
                _announce(action, "action.denied")
            audit_record(
                workspace=locked.workspace,
                actor=actor,
                action=(
                    AuditAction.CONFIRMATION_DENIED
                    if verdict == ApprovalRecord.Verdict.DENY
                    else AuditAction.CONFIRMATION_APPROVED
                ),
                target_type="confirmation",
                target_id=locked.pk,
                tool=action.tool_name,
                input={
                    "action_request": str(action.pk),
                    "approvals": approvals,
                    "approvals_required": locked.approvals_required,
                },
                decision=verdict,
                rationale=reason,
                policy_version=action.policy_version,
                outcome=str(locked.status),
            )
    if error is not None:
        raise error
    return locked


# Run inside the approving transaction once a request reaches its threshold (the
# governed-operation door registers itself here: approvals.apps).
APPROVAL_HOOKS: list[Callable] = []


def required_permission(action: ActionRequest) -> str:
    """Platform requests are decided only by roles that may manage what they change."""
    if action.is_platform:
        return (action.params or {}).get("approve_permission") or "manage_workspace"
    return APPROVE_PERMISSION


def is_answerable(action: ActionRequest, user) -> bool:
    """Four eyes over the whole chain of custody, as it is now and as it was."""
    if user is None:
        return True
    answerable = set(action.custody_user_ids or [])
    if action.accountable_user_id is not None:
        answerable.add(action.accountable_user_id)
    if action.key_id is not None:
        answerable |= set(key_custody(action.key))
    return user.pk in answerable


def confirmation_approve(*, confirmation, reason: str, actor: Actor) -> ConfirmationRequest:
    """A human approves (one ApprovalRecord). Approved once the threshold is met."""
    return _verdict(
        confirmation=confirmation,
        reason=reason,
        actor=actor,
        verdict=ApprovalRecord.Verdict.APPROVE,
    )


def confirmation_deny(*, confirmation, reason: str, actor: Actor) -> ConfirmationRequest:
    """A human denies: one denial decides."""
    return _verdict(
        confirmation=confirmation, reason=reason, actor=actor, verdict=ApprovalRecord.Verdict.DENY
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
                _expire(confirmation, actor, now)
                expired += 1
    return expired


# --- results -------------------------------------------------------------------------


def action_report_result(*, action_request, key, status: str, output: Any, actor: Actor):
    """The agent reports what happened, once, for an allowed request of its own key.
    Success in dry-run is recorded as `simulated`: nothing was performed for real."""
    if status not in ("succeeded", "failed"):
        raise WardenError(
            "validation_error", "status must be succeeded or failed.", {"status": ["Invalid."]}
        )
    require_storable(output, "output")
    encoded = canonical_json(output)
    if len(encoded) > MAX_RESULT_OUTPUT_BYTES:
        raise WardenError(
            "validation_error",
            f"output is larger than {MAX_RESULT_OUTPUT_BYTES} bytes.",
            {"output": [f"At most {MAX_RESULT_OUTPUT_BYTES} bytes of JSON."]},
        )
    with transaction.atomic():
        action = (
            ActionRequest.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .filter(pk=action_request.pk, key=key)
            .first()
        )
        if action is None:
            raise WardenError("not_found", "Not found.")
        if action.result_reported_at is not None:
            raise WardenError("conflict", "The result of this action was already reported.")
        if action.status != ActionRequest.Status.ALLOWED:
            raise WardenError(
                "conflict",
                f"This action is {action.status}; only an allowed action has a result.",
                {"status": action.status},
            )
        action.result_status = status
        action.result_output = output
        action.result_reported_at = timezone.now()
        if status == "failed":
            action.status = ActionRequest.Status.FAILED
        elif action.dry_run:
            action.status = ActionRequest.Status.SIMULATED
        else:
            action.status = ActionRequest.Status.EXECUTED
        action.save(
            update_fields=["result_status", "result_output", "result_reported_at", "status"]
        )
        audit_record(
            workspace=action.workspace,
            actor=actor,
            action=AuditAction.ACTION_RESULT_REPORTED,
            target_type="action_request",
            target_id=action.pk,
            tool=action.tool_name,
            # The output itself may hold personal data: the chain keeps its fingerprint.
            input={
                "status": status,
                "output_bytes": len(encoded),
                "output_sha256": hashlib.sha256(encoded).hexdigest(),
            },
            decision=action.decision,
            policy_version=action.policy_version,
            outcome=status,
        )
        if action.status == ActionRequest.Status.EXECUTED:
            _announce(action, "action.executed")
    return action
