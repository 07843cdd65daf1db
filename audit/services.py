"""Appending evidence. Call these inside the transaction of the change they record:
if the audit row fails, the change rolls back with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.chain import clean_text, compute_hash, entry_payload, normalize_json
from audit.models import AuditAction, AuditChainHead, AuditEntry, ExceptionRecord, VersionLog
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Workspace

if TYPE_CHECKING:
    from audit.verify import VerifyResult


def _client_ip(value: str | None) -> str | None:
    """The address as the database will give it back (IPv6 compressed), or None."""
    if not value:
        return None
    field = AuditEntry._meta.get_field("client_ip")
    try:
        field.run_validators(value)
        return field.get_prep_value(value)
    except (ValidationError, ValueError):
        return None


def audit_record(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    target_type: str = "",
    target_id: Any = "",
    tool: str = "",
    input: dict | None = None,
    decision: str = "",
    rationale: str = "",
    policy_version: int | None = None,
    outcome: str = "",
) -> AuditEntry:
    """Append one entry to the workspace's chain, serialized by a lock on its head."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of its change")
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(workspace=workspace)
    entry = AuditEntry(
        workspace=workspace,
        seq=head.seq + 1,
        created_at=timezone.now(),
        actor=clean_text(actor.label),
        actor_type=actor.kind,
        action=action,
        target_type=target_type,
        target_id=clean_text(str(target_id or "")),
        tool=clean_text(tool),
        input=normalize_json(input or {}),
        decision=decision,
        rationale=clean_text(rationale),
        policy_version=policy_version,
        request_id=clean_text(actor.request_id),
        client_ip=_client_ip(actor.client_ip),
        outcome=outcome,
        prev_hash=head.hash,
    )
    entry.hash = compute_hash(head.hash, entry_payload(entry))
    entry.save()
    AuditChainHead.objects.filter(pk=head.pk).update(seq=entry.seq, hash=entry.hash)
    return entry


def audit_record_change(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: Any,
    before: dict | None,
    after: dict | None,
    reason: str = "",
    policy_version: int | None = None,
    tool: str = "",
) -> AuditEntry:
    """A config change: one audit entry plus its VersionLog (before/after JSON)."""
    entry = audit_record(
        workspace=workspace,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        tool=tool,
        input={"before": before, "after": after, "reason": reason},
        rationale=reason,
        policy_version=policy_version,
        outcome="applied",
    )
    VersionLog.objects.create(
        workspace=workspace,
        created_at=entry.created_at,
        actor=entry.actor,
        target_type=target_type,
        target_id=entry.target_id,
        before=entry.input["before"],
        after=entry.input["after"],
        reason=entry.rationale,
        policy_version=policy_version,
        audit_entry=entry,
    )
    return entry


def _attach_exception(
    entry: AuditEntry,
    *,
    kind: str,
    severity: str,
    what: str,
    why: str,
    evidence: dict | None,
    mitigation: str,
    subject: str,
) -> ExceptionRecord:
    return ExceptionRecord.objects.create(
        workspace_id=entry.workspace_id,
        created_at=entry.created_at,
        kind=kind,
        severity=severity,
        what=clean_text(what)[:300],
        why=clean_text(why),
        evidence=normalize_json(evidence or {}),
        mitigation=clean_text(mitigation),
        subject=clean_text(subject),
        audit_entry=entry,
    )


def exception_record(
    *,
    workspace: Workspace,
    actor: Actor,
    kind: str,
    severity: str,
    what: str,
    why: str,
    evidence: dict | None = None,
    mitigation: str = "",
    subject: str = "",
    action: str = "anomaly.detected",
) -> ExceptionRecord:
    entry = audit_record(
        workspace=workspace,
        actor=actor,
        action=action,
        target_type="exception",
        input={"kind": kind, "severity": severity, "what": what, "evidence": evidence or {}},
        rationale=why,
        outcome=kind,
    )
    return _attach_exception(
        entry,
        kind=kind,
        severity=severity,
        what=what,
        why=why,
        evidence=evidence,
        mitigation=mitigation,
        subject=subject,
    )


@transaction.atomic
def exception_resolve(
    *, record: ExceptionRecord, actor: Actor, mitigation: str = "", reason: str = ""
) -> ExceptionRecord:
    """Close an exception: only its resolution fields change, and that is audited too
    (the reason why it is closed, and the mitigation applied)."""
    if len(reason or "") > 2000 or len(mitigation or "") > 2000:
        raise WardenError("validation_error", "At most 2000 characters.", {"reason": ["Too long."]})
    record = ExceptionRecord.objects.select_for_update().get(pk=record.pk)
    if record.resolved_at is not None:
        raise WardenError("conflict", "This exception is already resolved.")
    mitigation = clean_text(mitigation) or record.mitigation
    reason = clean_text(reason or "").strip() or mitigation
    entry = audit_record(
        workspace=record.workspace,
        actor=actor,
        action=AuditAction.EXCEPTION_RESOLVED,
        target_type="exception",
        target_id=record.pk,
        input={"kind": record.kind, "mitigation": mitigation, "reason": reason},
        rationale=reason,
        outcome="resolved",
    )
    ExceptionRecord.objects.filter(pk=record.pk).update(
        resolved_by=entry.actor, resolved_at=entry.created_at, mitigation=mitigation
    )
    record.refresh_from_db()
    return record


def audit_verify_and_record(*, workspace: Workspace, actor: Actor, progress=None) -> VerifyResult:
    """Verify the workspace's chain, then append the verdict to that same chain
    (`audit.verified`, outcome ok/broken); a broken chain also opens a critical
    ExceptionRecord(kind=chain_broken)."""
    from audit.verify import verify_chain

    result = verify_chain(workspace, progress=progress)
    with transaction.atomic():
        entry = audit_record(
            workspace=workspace,
            actor=actor,
            action=AuditAction.AUDIT_VERIFIED,
            target_type="audit_chain",
            target_id=workspace.pk,
            input=result.as_dict(),
            decision="ok" if result.ok else "broken",
            rationale=result.summary(),
            outcome="ok" if result.ok else "broken",
        )
        if not result.ok:
            _attach_exception(
                entry,
                kind=ExceptionRecord.Kind.CHAIN_BROKEN,
                severity=ExceptionRecord.Severity.CRITICAL,
                what=f"Audit chain broken at #{result.first_bad_seq}: {result.problem}",
                why=result.summary(),
                evidence=result.as_dict(),
                mitigation="",
                subject=f"workspace:{workspace.slug}",
            )
    return result


def audit_record_export(
    *,
    workspace: Workspace,
    actor: Actor,
    entries: int,
    first_seq: int | None,
    last_seq: int | None,
    destination: str = "",
) -> AuditEntry:
    """Evidence that evidence left the system: what range, to where."""
    with transaction.atomic():
        return audit_record(
            workspace=workspace,
            actor=actor,
            action=AuditAction.AUDIT_EXPORTED,
            target_type="audit_chain",
            target_id=workspace.pk,
            input={
                "entries": entries,
                "first_seq": first_seq,
                "last_seq": last_seq,
                "destination": destination,
            },
            outcome="exported",
        )
