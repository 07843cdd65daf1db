"""Retention: prune a workspace's oldest evidence without losing verifiability.

The choice (docs "Evidence"): pruning removes a *prefix* of the chain, never a
hole. Before deleting entries 1..N, the service appends an `audit.pruned` checkpoint
entry to the same chain recording N, the hash of entry N and an HMAC signature over
(workspace, N, hash) made with a server secret. The checkpoint is itself chained, so
it cannot be edited without breaking the chain, and `verify_chain` starts from it:
entry N+1 must link to the recorded hash. Someone with database access but not the
server secret cannot fake a checkpoint to hide the removal of old entries.

Rows go in one transaction that holds the chain-head lock. On PostgreSQL the rows are
deleted by the SECURITY DEFINER function `warden_audit_prune(workspace, through)`
(migration 0006), owned by the role the append-only trigger lets DELETE through; the
function itself refuses any range the chain's newest `audit.pruned` entry does not
declare, and never removes an open exception record. No session setting opens it.

Never pruned: entries newer than the retention window, anything from the oldest
unresolved exception record onwards (open problems keep their evidence), and anything
from the oldest audit row another app still references with PROTECT (pruning stops
there instead of failing); references declared CASCADE / SET_NULL follow the prune.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import connection, models, transaction
from django.db.models import Min
from django.utils import timezone

from audit.chain import format_timestamp
from audit.events import EVENTS
from audit.models import AuditAction, AuditChainHead, AuditEntry, ExceptionRecord, VersionLog
from audit.prune_marks import checkpoint_signature, latest_checkpoint
from audit.services import audit_record
from common.actor import Actor

if TYPE_CHECKING:
    from tenants.models import Workspace


@dataclass(frozen=True)
class PruneResult:
    workspace: str
    pruned_entries: int
    through_seq: int | None = None
    checkpoint_seq: int | None = None


_FOLLOWS = (models.CASCADE, models.SET_NULL)  # any other on_delete holds pruning back


# Other apps may hold evidence back from pruning (e.g. entries not yet exported to
# the customer): each provider returns the last seq it lets go, or None for no limit.
PRUNE_LIMIT_PROVIDERS: list[Callable[[Workspace], int | None]] = []


def register_prune_limit(provider: Callable[[Workspace], int | None]):
    if provider not in PRUNE_LIMIT_PROVIDERS:
        PRUNE_LIMIT_PROVIDERS.append(provider)
    return provider


def _external_references():
    """(model, relation, path to the audit entry's seq) for every foreign key from
    outside the audit app to an audit row, e.g. notifications' anomaly findings."""
    paths = {AuditEntry: "seq", ExceptionRecord: "audit_entry__seq", VersionLog: "audit_entry__seq"}
    for model, seq_path in paths.items():
        relations = [
            field
            for field in model._meta.get_fields(include_hidden=True)  # related_name="+" too
            if field.auto_created and not field.concrete and (field.one_to_many or field.one_to_one)
        ]
        for relation in relations:
            if relation.related_model._meta.app_label != "audit":
                yield model, relation, seq_path


def _first_protected_seq(workspace: Workspace, after_seq: int) -> int | None:
    """The oldest entry another app still refers to and may not lose (PROTECT /
    RESTRICT): pruning stops before it rather than fail or orphan the reference."""
    first = None
    for model, relation, seq_path in _external_references():
        if relation.on_delete in _FOLLOWS:
            continue
        referenced = relation.related_model._base_manager.values(relation.field.attname)
        held = model._base_manager.filter(
            workspace=workspace,
            pk__in=referenced,
            **{f"{seq_path}__gt": after_seq},
        ).aggregate(s=Min(seq_path))["s"]
        if held is not None and (first is None or held < first):
            first = held
    return first


def _delete_cascading_references(workspace: Workspace, through: int) -> None:
    """Rows of other apps declared to go with the evidence they point at (CASCADE /
    SET_NULL) follow it, through the ORM so their own rules apply."""
    for model, relation, seq_path in _external_references():
        if relation.on_delete not in _FOLLOWS:
            continue
        doomed = model._base_manager.filter(workspace=workspace, **{f"{seq_path}__lte": through})
        referencing = relation.related_model._base_manager.filter(
            **{f"{relation.field.name}__in": doomed}
        )
        if relation.on_delete is models.CASCADE:
            referencing.delete()
        elif relation.on_delete is models.SET_NULL:
            referencing.update(**{relation.field.name: None})


def _delete_through(workspace: Workspace, through: int) -> int:
    """Remove the chain's prefix up to `through` with its version logs and exception
    records (the caller has recorded the `audit.pruned` checkpoint declaring it)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT warden_audit_prune(%s, %s)", [workspace.pk, through])
            return int(cursor.fetchone()[0])
    in_range = {"workspace": workspace, "audit_entry__seq__lte": through}
    ExceptionRecord.objects.filter(**in_range)._raw_delete(ExceptionRecord.objects.db)
    VersionLog.objects.filter(**in_range)._prune()
    return AuditEntry.objects.filter(workspace=workspace, seq__lte=through)._prune()


def audit_prune(
    *,
    workspace: Workspace,
    actor: Actor,
    now: datetime | None = None,
    retention_days: int | None = None,
) -> PruneResult:
    """Delete entries older than the workspace's retention window (None: keep forever)."""
    days = workspace.audit_retention_days if retention_days is None else retention_days
    if days is None:
        return PruneResult(workspace.slug, 0)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(workspace=workspace).first()
        if head is None:
            return PruneResult(workspace.slug, 0)
        checkpoint = latest_checkpoint(workspace, up_to_seq=head.seq)
        already = checkpoint.through_seq if checkpoint else 0
        entries = AuditEntry.objects.filter(workspace=workspace)
        # A contiguous prefix: stop before the first entry inside the window.
        first_kept = entries.filter(seq__gt=already, created_at__gte=cutoff).aggregate(
            s=Min("seq")
        )["s"]
        through = (first_kept or head.seq + 1) - 1
        first_open = ExceptionRecord.objects.filter(
            workspace=workspace, resolved_at__isnull=True
        ).aggregate(s=Min("audit_entry__seq"))["s"]
        if first_open is not None:
            through = min(through, first_open - 1)
        first_held = _first_protected_seq(workspace, already)
        if first_held is not None:
            through = min(through, first_held - 1)
        for provider in PRUNE_LIMIT_PROVIDERS:
            limit = provider(workspace)
            if limit is not None:
                through = min(through, limit)
        if through <= already:
            return PruneResult(workspace.slug, 0)
        through_hash = entries.values_list("hash", flat=True).get(seq=through)
        first_present = entries.aggregate(s=Min("seq"))["s"] or 1
        count = entries.filter(seq__lte=through).count()
        event = EVENTS[AuditAction.AUDIT_PRUNED].event(
            target_id=workspace.pk,
            input={
                "pruned_from_seq": first_present,
                "pruned_through_seq": through,
                "pruned_through_hash": through_hash,
                "pruned_entries": count,
                "retention_days": days,
                "cutoff": format_timestamp(cutoff),
                "signature": checkpoint_signature(workspace.pk, through, through_hash),
            },
            rationale=f"retention {days} days",
            outcome="pruned",
        )
        checkpoint_entry = audit_record(event, workspace=workspace, actor=actor)
        _delete_cascading_references(workspace, through)
        deleted = _delete_through(workspace, through)
    return PruneResult(workspace.slug, deleted, through, checkpoint_entry.seq)
