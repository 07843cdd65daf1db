"""Appending evidence. Call these inside the transaction of the change they record:
if the audit row fails, the change rolls back with it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.chain import compute_hash, entry_payload
from audit.models import AuditChainHead, AuditEntry, ExceptionRecord, VersionLog
from common.actor import Actor
from tenants.models import Workspace


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
        actor=actor.label,
        actor_type=actor.kind,
        action=action,
        target_type=target_type,
        target_id=str(target_id or ""),
        tool=tool,
        input=input or {},
        decision=decision,
        rationale=rationale,
        policy_version=policy_version,
        request_id=actor.request_id,
        client_ip=actor.client_ip,
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
        actor=actor.label,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
        reason=reason,
        policy_version=policy_version,
        audit_entry=entry,
    )
    return entry


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
    return ExceptionRecord.objects.create(
        workspace=workspace,
        created_at=entry.created_at,
        kind=kind,
        severity=severity,
        what=what,
        why=why,
        evidence=evidence or {},
        mitigation=mitigation,
        subject=subject,
        audit_entry=entry,
    )
