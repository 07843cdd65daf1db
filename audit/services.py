"""Appending evidence. Call these inside the transaction of the change they record:
if the audit row fails, the change rolls back with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from audit import signing
from audit.chain import clean_text, compute_hash, entry_payload, normalize_json
from audit.checkpoints import checkpoint_every, checkpoint_sign
from audit.events import check_event
from audit.models import (
    AuditAction,
    AuditChainHead,
    AuditCheckpoint,
    AuditEntry,
    AuditQuarantine,
    ExceptionRecord,
    VersionLog,
)
from audit.signals import checkpoint_signed
from audit.verify import VerifyResult, verify_chain
from common.actor import Actor
from common.errors import WardenError

if TYPE_CHECKING:
    from tenants.models import Workspace


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
    """Append one entry to the workspace's chain, serialized by a lock on its head.

    Rows squatting past the head (written behind the application's back) are first
    moved to quarantine, so they neither block this write nor join the chain. Every
    `checkpoint_every()` entries, the head is signed in the same transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of its change")
    check_event(action, target_type, input)
    head = _locked_head(workspace)
    if head.squatted:
        _quarantine_beyond_head(workspace, head)
        head = _locked_head(workspace)
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
    entry.mac = signing.entry_mac(entry.hash)
    entry.save()
    AuditChainHead.objects.filter(pk=head.pk).update(seq=entry.seq, hash=entry.hash)
    if entry.seq % checkpoint_every() == 0:
        checkpoint_at_head(workspace)
    return entry


def _locked_head(workspace: Workspace) -> AuditChainHead:
    """The chain head, locked, annotated with whether any row sits past it (one query)."""
    beyond = AuditEntry.objects.filter(workspace=OuterRef("workspace"), seq__gt=OuterRef("seq"))
    heads = AuditChainHead.objects.select_for_update().annotate(squatted=Exists(beyond))
    head = heads.filter(workspace=workspace).first()
    if head is None:
        AuditChainHead.objects.get_or_create(workspace=workspace)
        head = heads.get(workspace=workspace)
    return head


_QUARANTINE_FIELDS = ("seq", "created_at", "actor", "actor_type", "action", "target_type",
                      "target_id", "tool", "input", "decision", "rationale", "policy_version",
                      "request_id", "client_ip", "outcome", "prev_hash", "hash", "mac")  # fmt: skip


def _quarantine_beyond_head(workspace: Workspace, head: AuditChainHead) -> None:
    """Move rows past the head out of the chain (kept whole in AuditQuarantine) and
    open a critical chain_broken exception naming them. On PostgreSQL the move runs in
    the SECURITY DEFINER function `warden_audit_quarantine`, the only path by which a
    chain row may leave besides pruning (migration 0006)."""
    found_at = timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT warden_audit_quarantine(%s, %s)", [workspace.pk, found_at])
    else:
        squatters = AuditEntry.objects.filter(workspace=workspace, seq__gt=head.seq)
        for values in squatters.values(*_QUARANTINE_FIELDS):
            row = normalize_json(values)
            AuditQuarantine.objects.create(
                workspace=workspace, seq=values["seq"], found_at=found_at, row=row
            )
        ids = squatters.values("pk")
        VersionLog.objects.filter(audit_entry__in=ids)._prune()
        ExceptionRecord.objects.filter(audit_entry__in=ids)._raw_delete(ExceptionRecord.objects.db)
        squatters._prune()
    moved = AuditQuarantine.objects.filter(workspace=workspace, found_at=found_at).order_by("seq")
    summary = [
        {k: row.row.get(k) for k in ("seq", "action", "actor", "created_at", "hash")}
        for row in moved
    ]
    seqs = [item["seq"] for item in summary]
    exception_record(
        workspace=workspace,
        actor=Actor.system("audit"),
        kind=ExceptionRecord.Kind.CHAIN_BROKEN,
        severity=ExceptionRecord.Severity.CRITICAL,
        what=f"{len(seqs)} row(s) found past the audit chain head #{head.seq}; quarantined",
        why="Rows beyond the chain head were not written by the application (it appends at "
        "head+1 under a lock): someone wrote to the audit table directly. They were moved "
        "to quarantine, out of the chain, so audited writes continue.",
        evidence={"head_seq": head.seq, "quarantined": summary},
        mitigation="Investigate database access; the rows are kept in the audit quarantine.",
        subject=f"workspace:{workspace.slug}",
    )


def checkpoint_at_head(workspace: Workspace) -> AuditCheckpoint | None:
    """Sign the chain head if it moved since the last checkpoint and the entries since
    then verify (a checkpoint never vouches for rows slipped in behind the application).
    Call with the head locked. Returns None when there is nothing new or the tail does not
    verify (audit_verify reports that). Delivery follows the commit (`checkpoint_signed`)."""
    head = AuditChainHead.objects.filter(workspace=workspace).values_list("seq", "hash").first()
    if head is None or head[0] == 0:
        return None
    last = AuditCheckpoint.objects.filter(workspace=workspace).aggregate(s=Max("seq"))["s"]
    if last is not None and last >= head[0]:
        return None
    if not verify_chain(workspace, tail_only=True).ok:
        return None
    checkpoint = checkpoint_sign(workspace, head[0], head[1])
    transaction.on_commit(
        lambda: checkpoint_signed.send(sender=AuditCheckpoint, workspace_id=workspace.pk)
    )
    return checkpoint


def checkpoint_create(*, workspace: Workspace) -> AuditCheckpoint | None:
    """The time-based checkpoint (beat task): its own transaction, head locked."""
    with transaction.atomic():
        if not AuditChainHead.objects.select_for_update().filter(workspace=workspace).exists():
            return None
        return checkpoint_at_head(workspace)


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


def audit_verify_and_record(
    *, workspace: Workspace, actor: Actor, progress=None, checkpoint_file=None
) -> VerifyResult:
    """Verify the workspace's chain, then append the verdict to that same chain
    (`audit.verified`, outcome ok/broken); a broken chain also opens a critical
    ExceptionRecord(kind=chain_broken). `checkpoint_file`: exported checkpoints to
    hold the chain to (see verify_chain)."""
    result = verify_chain(workspace, progress=progress, checkpoint_file=checkpoint_file)
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
