"""Appending evidence. Call these inside the transaction of the change they record:
if the audit row fails, the change rolls back with it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from audit import signing
from audit.chain import (
    clean_text,
    compute_hash,
    entry_payload,
    normalize_json,
    pending_message,
)
from audit.checkpoints import checkpoint_every, checkpoint_sign
from audit.columns import ENTRY_COLUMNS
from audit.events import EVENTS, AuditEvent, TargetType, UndeclaredEvent
from audit.models import (
    AuditAction,
    AuditChainHead,
    AuditCheckpoint,
    AuditEntry,
    AuditPending,
    AuditQuarantine,
    ExceptionRecord,
    VersionLog,
)
from audit.signals import checkpoint_signed
from audit.verify import VerifyResult, verify_chain
from common.actor import Actor
from common.db import prepared_cursor
from common.errors import WardenError
from common.sql import insert_select_statement, insert_statement

if TYPE_CHECKING:
    from tenants.models import Workspace

logger = logging.getLogger("warden.audit")


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


def _fitted(value: str, field: str) -> str:
    """Cleaned text cut to its column: cleaning spells out what a column cannot hold
    (a lone surrogate becomes a six-character escape), so text a caller had already
    cut to the column's length can outgrow it, and the append would fail."""
    cleaned = clean_text(value)
    return cleaned[: _MAX_LENGTH[field]] if cleaned else cleaned


_MAX_LENGTH = {
    name: AuditEntry._meta.get_field(name).max_length
    for name in ("actor", "target_id", "tool", "request_id")
}


def _new_entry(workspace: Workspace, actor: Actor, event: AuditEvent) -> AuditEntry:
    """An unsaved entry, every value already in the form the database gives back (what
    is hashed must be what verification reads); seq and hashes come with its place.
    The event's shape was checked against its declared schema when it was made."""
    return AuditEntry(
        workspace=workspace,
        created_at=timezone.now(),
        actor=_fitted(actor.label, "actor"),
        actor_type=actor.kind,
        action=event.action,
        target_type=event.target_type,
        target_id=_fitted(str(event.target_id or ""), "target_id"),
        tool=_fitted(event.tool, "tool"),
        input=normalize_json(event.input),
        decision=event.decision,
        rationale=clean_text(event.rationale),
        policy_version=event.policy_version,
        request_id=_fitted(actor.request_id, "request_id"),
        client_ip=_client_ip(actor.client_ip),
        outcome=event.outcome,
    )


def _plain_event(event: AuditEvent) -> AuditEvent:
    if not isinstance(event, AuditEvent):
        raise TypeError(f"audit_record takes an AuditEvent, not {type(event).__name__}")
    if event.is_change:
        raise UndeclaredEvent(
            f"audit action {event.action!r} is a config change: record it with "
            "audit_record_change, which writes its version log"
        )
    return event


def audit_record(
    event: AuditEvent,
    /,
    *,
    workspace: Workspace,
    actor: Actor,
) -> AuditEntry:
    """Append the event to the workspace's chain, serialized by a lock on its head.

    Rows squatting past the head (written behind the application's back) are first
    moved to quarantine, so they neither block this write nor join the chain; entries
    waiting in the group-commit queue (AuditPending) are sealed first, in order. Every
    `checkpoint_every()` entries, the head is signed in the same transaction."""
    event = _plain_event(event)
    return _record(event, workspace, actor)


def _record(event: AuditEvent, workspace: Workspace, actor: Actor) -> AuditEntry:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of its change")
    return _append(workspace, _new_entry(workspace, actor, event))


def _append(workspace: Workspace, entry: AuditEntry) -> AuditEntry:
    """Lock the chain head (creating it for a workspace's first entry) and append."""
    head = _lock_head(workspace.pk)
    if head is None:
        AuditChainHead.objects.get_or_create(workspace=workspace)
        head = _lock_head(workspace.pk)
    return _append_locked(workspace, head, entry)


def audit_record_with(
    row: models.Model | None,
    event: AuditEvent,
    /,
    *,
    workspace: Workspace,
    actor: Actor,
    group_commit: bool = True,
) -> None:
    """Insert `row` (the change) and append its audit entry, in as few round trips as
    the database allows: on PostgreSQL the insert rides in the statement that locks the
    chain head, and the entry plus the head move are one more (`warden_audit_append`).
    `row` None: the caller wrote its change with statements of its own (updates); only
    the entry rides here.

    `group_commit`: when another transaction holds this chain's head, do not queue
    behind its commit (which is what caps one workspace at one commit flush per entry).
    The entry is committed with the change into AuditPending instead (same transaction,
    same durability; the same statement while this process knows the head busy, one
    more when it finds out: `_busy_at`), and right after the commit the process's
    sealer thread chains every queued entry of the workspace in one transaction
    (docs "Contention": group commit). Only for callers that need nothing from the
    entry row itself (no foreign key to it)."""
    event = _plain_event(event)
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record_with must run inside the transaction of its change")
    entry = _new_entry(workspace, actor, event)
    group_commit = group_commit and settings.WARDEN_AUDIT_GROUP_COMMIT
    if connection.vendor != "postgresql":
        if row is not None:
            row.save(force_insert=True)
        _append(workspace, entry)
        return
    queue = None
    busy_before = _busy_at.get(workspace.pk)
    likely_busy = busy_before is not None and time.monotonic() - busy_before < _BUSY_MEMORY
    if group_commit and likely_busy:
        # Queued only if the head exists but another transaction holds it.
        queue_sql, queue_params = insert_select_statement(
            _pending_row(workspace, entry),
            connection,
            "NOT EXISTS (SELECT 1 FROM locked) AND EXISTS"
            " (SELECT 1 FROM audit_auditchainhead WHERE workspace_id = %s)",
        )
        queue = (f"queued AS ({queue_sql} RETURNING 1)", [*queue_params, workspace.pk])
    before = None
    if row is not None:
        row_sql, row_params = insert_statement(row, connection)
        before = (f"inserted AS ({row_sql})", row_params)
    head = _lock_head(workspace.pk, before=before, after=queue, skip_locked=group_commit)
    if row is not None:
        row._state.adding, row._state.db = False, connection.alias
    busy = group_commit and head is not None and head.seq is None
    if busy:
        _busy_at[workspace.pk] = time.monotonic()
    if busy and (head.queued or (queue is None and _enqueue(workspace, entry, connection))):
        # Busy: the entry is committed with the change; the process's sealer thread
        # chains it right after the commit (audit_seal_pending), without this writer.
        transaction.on_commit(lambda: seal_soon(workspace))
        return
    if head is None or head.seq is None:
        AuditChainHead.objects.get_or_create(workspace=workspace)
        head = _lock_head(workspace.pk)
    _append_locked(workspace, head, entry)


# When this process last found a workspace's chain head busy. Within _BUSY_MEMORY
# seconds of that, a decision carries its queue insert in the head-lock statement (one
# round trip either way); otherwise it leaves it out (building and MACing the queue row
# is a tenth of a decision's CPU) and, should the head be busy after all, queues in one
# more statement.
_busy_at: dict[Any, float] = {}
_BUSY_MEMORY = 2.0


def _pending_row(workspace: Workspace, entry: AuditEntry) -> AuditPending:
    """The entry as a queue row, with its queue MAC over everything the chain entry will
    hold: the sealer chains only rows the application wrote (someone with INSERT on the
    queue cannot MAC)."""
    values = {name: getattr(entry, name) for name in _PENDING_FIELDS}
    mac = signing.pending_mac(pending_message(workspace.pk, values))
    return AuditPending(**values, workspace_id=workspace.pk, mac=mac)


def _enqueue(workspace: Workspace, entry: AuditEntry, connection) -> bool:
    """Queue the entry if the workspace's head exists (its holder is busy); False if
    there is no head yet (the caller creates it and appends)."""
    sql, params = insert_select_statement(
        _pending_row(workspace, entry),
        connection,
        "EXISTS (SELECT 1 FROM audit_auditchainhead WHERE workspace_id = %s)",
    )
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING 1", [*params, workspace.pk])
        return cursor.fetchone() is not None


def audit_seal_pending(workspace: Workspace) -> int:
    """Seal the workspace's queued entries into its chain, in queue order, in one
    transaction with the head locked (waiting for it). Returns how many were sealed
    (0 when another writer sealed them first). The group-commit path hands this to the
    process's sealer thread (`seal_soon`); audit_verify and export call it first."""
    with transaction.atomic():
        head = _lock_head(workspace.pk)
        if head is None:
            return 0
        if head.squatted:
            _quarantine_beyond_head(workspace, head)
            head = _lock_head(workspace.pk)
        after = _seal_locked(workspace, head)
        if after.seq == head.seq:
            # Nothing to seal. Roll back: the row lock alone would cost a commit flush.
            transaction.set_rollback(True)
            return 0
        _checkpoint_if_crossed(workspace, head.seq, after.seq)
    return after.seq - head.seq


def audit_seal_all_pending() -> int:
    """Seal what a stopped process left queued, in every workspace (checkpoint beat)."""
    waiting = AuditPending.objects.values("workspace_id").distinct()
    heads = AuditChainHead.objects.select_related("workspace").filter(workspace_id__in=waiting)
    return sum(audit_seal_pending(head.workspace) for head in heads.order_by("pk"))


class _Sealer:
    """One thread per process that seals queued entries right after their commit, so a
    writer that found the head busy answers without waiting for it. Requests for one
    workspace coalesce: a batch takes everything queued when it gets the head.

    In a server process (`sealer_start`, from config.wsgi / config.asgi) it also sweeps:
    at once, then every WARDEN_AUDIT_SEALER_SWEEP_SECONDS, it seals entries queued for
    longer than that by any process, so what a killed process left queued is chained
    within about a second by any surviving or restarted one (docs "Contention and
    faults"). Without sweeping its database connection is closed after a second of
    idleness; a sweeping sealer keeps its one connection."""

    IDLE_SECONDS = 1.0
    RETRIES = 3

    def __init__(self) -> None:
        self._reset()
        self._sweep_every = 0.0  # seconds; 0: no sweeping (not a server process)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._dirty: dict[Any, Workspace] = {}
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._pid: int | None = None
        self._failures: dict[Any, int] = {}
        self._swept_at = 0.0

    def _ensure_thread(self) -> None:
        """Call with the lock held."""
        if self._pid != os.getpid():  # first use in this (possibly forked) process
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="warden-audit-sealer", daemon=True).start()

    def request(self, workspace: Workspace) -> None:
        with self._lock:
            self._dirty[workspace.pk] = workspace
            self._idle.clear()
            self._ensure_thread()
        self._wake.set()

    def start(self, sweep_every: float) -> None:
        """Run as a server process's sealer: sweep now and every `sweep_every` s."""
        if sweep_every <= 0:
            return
        with self._lock:
            self._sweep_every = sweep_every
            self._swept_at = 0.0
            self._ensure_thread()
        self._wake.set()

    def after_fork(self) -> None:
        """A forked child (gunicorn --preload) has no sealer thread: start its own."""
        sweep_every = self._sweep_every
        self._reset()
        if sweep_every:
            self.start(sweep_every)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Until every requested seal is done (tests, benchmarks)."""
        return self._idle.wait(timeout)

    def _sweep(self) -> None:
        """Queue for sealing every workspace with entries queued longer than a sweep
        interval (on the first sweep: any), whoever queued them."""
        first = not self._swept_at
        self._swept_at = time.monotonic()
        try:
            waiting = AuditPending.objects.all()
            if not first:
                age = timezone.now() - timedelta(seconds=self._sweep_every)
                waiting = waiting.filter(created_at__lt=age)
            heads = AuditChainHead.objects.select_related("workspace").filter(
                workspace_id__in=waiting.values("workspace_id")
            )
            found = [head.workspace for head in heads]
        except Exception:  # the database is away: the next sweep tries again
            logger.exception("Sweeping the audit queue failed")
            connection.close()
            return
        if found:
            with self._lock:
                for workspace in found:
                    self._dirty.setdefault(workspace.pk, workspace)
                self._idle.clear()

    def _run(self) -> None:
        while True:
            sweep_every = self._sweep_every
            woke = self._wake.wait(sweep_every or self.IDLE_SECONDS)
            if sweep_every and time.monotonic() - self._swept_at >= sweep_every:
                self._sweep()
            elif not woke:
                if not sweep_every:
                    connection.close()
                continue
            with self._lock:
                batch, self._dirty = self._dirty, {}
                self._wake.clear()
            for workspace in batch.values():
                try:
                    audit_seal_pending(workspace)
                    self._failures.pop(workspace.pk, None)
                except Exception:  # the entries stay queued: the next append seals them
                    failures = self._failures.get(workspace.pk, 0) + 1
                    logger.exception("Sealing queued audit entries failed (%d)", failures)
                    connection.close()
                    if failures < self.RETRIES:
                        self._failures[workspace.pk] = failures
                        with self._lock:
                            self._dirty.setdefault(workspace.pk, workspace)
                        time.sleep(0.5)
                        self._wake.set()
                    else:  # left to the next append, the next sweep or the checkpoint beat
                        self._failures.pop(workspace.pk, None)
            with self._lock:
                if not self._dirty:
                    self._idle.set()


_sealer = _Sealer()
seal_soon = _sealer.request
seal_wait_idle = _sealer.wait_idle
os.register_at_fork(after_in_child=_sealer.after_fork)


def sealer_start() -> None:
    """Start this server process's sealer sweeping (config.wsgi, config.asgi): entries a
    killed process left queued are chained within about a second of any process of the
    deployment running. Only on PostgreSQL (the only database with a queue)."""
    if connection.vendor == "postgresql":
        _sealer.start(settings.WARDEN_AUDIT_SEALER_SWEEP_SECONDS)


class _Head(NamedTuple):
    seq: int | None  # None: another transaction holds the head (skip_locked)
    hash: str | None
    squatted: bool  # rows past the head: written behind the application's back
    pending: bool  # entries waiting in AuditPending to be sealed
    queued: bool = False  # this statement queued its entry (group commit)


_HEAD_COLUMNS = (
    "l.seq, l.hash,"
    " EXISTS(SELECT 1 FROM audit_auditentry e"
    " WHERE e.workspace_id = l.workspace_id AND e.seq > l.seq),"
    " EXISTS(SELECT 1 FROM audit_auditpending p WHERE p.workspace_id = l.workspace_id)"
)
_LOCK = "SELECT workspace_id, seq, hash FROM audit_auditchainhead WHERE workspace_id = %s"
_PENDING_FIELDS = ENTRY_COLUMNS


def _lock_head(workspace_id, *, before=None, after=None, skip_locked: bool = False):
    """The chain head, locked, with its squatted/pending flags, in one statement, which
    may carry data-modifying CTEs: `before` and `after` are (sql, params) of a CTE
    written before and after the one named `locked` (which `after` may refer to; an
    `after` CTE named `queued` reports whether it inserted). None if there is no head
    row; with skip_locked, a _Head whose seq is None if another transaction holds it."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        beyond = AuditEntry.objects.filter(workspace=OuterRef("workspace"), seq__gt=OuterRef("seq"))
        waiting = AuditPending.objects.filter(workspace=OuterRef("workspace"))
        row = (
            AuditChainHead.objects.select_for_update()
            .annotate(squatted=Exists(beyond), pending=Exists(waiting))
            .filter(workspace_id=workspace_id)
            .values_list("seq", "hash", "squatted", "pending")
            .first()
        )
        return None if row is None else _Head(*row)
    lock = _LOCK + " FOR UPDATE" + (" SKIP LOCKED" if skip_locked else "")
    ctes, params = [f"locked AS ({lock})"], [workspace_id]
    if before is not None:
        ctes.insert(0, before[0])
        params[:0] = before[1]
    if after is not None:
        ctes.append(after[0])
        params += after[1]
    queued = "EXISTS(SELECT 1 FROM queued)" if after is not None else "false"
    sql = (
        f"WITH {', '.join(ctes)} SELECT {_HEAD_COLUMNS}, {queued}"  # noqa: S608 (model SQL)
        " FROM (VALUES (1)) AS one LEFT JOIN locked l ON true"
    )
    # Pipelined: the BEGIN the driver sends first and this statement share one round
    # trip (the statement usually opens the transaction).
    pipeline = connection.connection.pipeline
    with connection.wrap_database_errors, pipeline(), prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row[0] is None and not skip_locked:
        return None
    return _Head(*row)


def _append_locked(workspace: Workspace, head: _Head, entry: AuditEntry) -> AuditEntry:
    if head.squatted:
        _quarantine_beyond_head(workspace, head)
        head = _lock_head(workspace.pk)
    start = head.seq
    if head.pending:
        head = _seal_locked(workspace, head)
    _chain_and_write([entry], head.seq, head.hash)
    _checkpoint_if_crossed(workspace, start, entry.seq)
    return entry


def _chain_and_write(entries: list[AuditEntry], seq: int, prev_hash: str) -> None:
    """Give the entries their places after (seq, prev_hash), in order, and write them,
    moving the head onto each (on PostgreSQL one statement for them all)."""
    for entry in entries:
        entry.seq, entry.prev_hash = seq + 1, prev_hash
        entry.hash = compute_hash(prev_hash, entry_payload(entry))
        entry.mac = signing.entry_mac(entry.hash)
        seq, prev_hash = entry.seq, entry.hash
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        for entry in entries:
            entry.save()
            AuditChainHead.objects.filter(pk=entry.workspace_id).update(
                seq=entry.seq, hash=entry.hash
            )
        return
    payload = [
        {
            **{name: getattr(entry, name) for name in _APPEND_FIELDS},
            "workspace_id": str(entry.workspace_id),
            "created_at": entry.created_at.isoformat(),
        }
        for entry in entries
    ]
    with prepared_cursor(connection) as cursor:
        cursor.execute("SELECT warden_audit_append(%s::jsonb)", [json.dumps(payload)])
        ids = [row[0] for row in cursor.fetchall()]
    for entry, pk in zip(entries, ids, strict=True):
        entry.pk = pk
        entry._state.adding, entry._state.db = False, connection.alias


# created_at goes as ISO text beside them (see _append).
_APPEND_FIELDS = (
    "seq",
    *(c for c in ENTRY_COLUMNS if c != "created_at"),
    "prev_hash",
    "hash",
    "mac",
)


# `replayed`: a chain entry with the same identity (the queue guard's, migration 0009)
# already exists: a copy of a genuine queued row, MAC included, inserted again.
_REPLAYED = (
    "EXISTS (SELECT 1 FROM audit_auditentry e WHERE e.workspace_id = p.workspace_id"
    " AND e.created_at = p.created_at AND e.actor = p.actor AND e.action = p.action"
    " AND e.target_type = p.target_type AND e.target_id = p.target_id"
    " AND e.request_id = p.request_id AND e.input = p.input AND e.decision = p.decision"
    " AND e.outcome = p.outcome)"
)
_SELECT_PENDING = (
    f"SELECT p.id, {', '.join('p.' + name for name in _PENDING_FIELDS)}, p.mac,"  # noqa: S608
    f" {_REPLAYED} FROM audit_auditpending p"
    " WHERE p.workspace_id = %s ORDER BY p.id FOR UPDATE OF p"
)
_DELETE_PENDING = "DELETE FROM audit_auditpending WHERE id = ANY(%s::bigint[])"


def _seal_locked(workspace: Workspace, head: _Head) -> _Head:
    """Move the queued entries (committed, oldest first) into the chain after `head`.

    Only rows whose queue MAC verifies join the chain: the others (no MAC, a wrong one,
    or a replayed copy of a row already chained) are moved to quarantine, never
    retried, and a high-severity queue_forged exception record says so, naming them
    by digest only."""
    connection = transaction.get_connection()
    # Chained first, then taken off the queue: on PostgreSQL a queued row may only be
    # deleted once its identical entry is in the chain (migration audit 0009).
    if connection.vendor == "postgresql":
        # Every batch runs these two: fixed statements, prepared once per connection.
        with prepared_cursor(connection) as cursor:
            cursor.execute(_SELECT_PENDING, [workspace.pk])
            rows = cursor.fetchall()
    else:
        queued = AuditPending.objects.filter(workspace_id=workspace.pk).order_by("id")
        rows = list(queued.values_list("id", *_PENDING_FIELDS, "mac"))
        rows = [(*row, _chained_already(workspace, row)) for row in rows]
    if not rows:
        return head._replace(pending=False)
    _, mac_ok = signing.pending_mac_checker()
    entries, sealed, rejected, seen = [], [], [], set()
    for row in rows:
        values = dict(zip(_PENDING_FIELDS, row[1:-2], strict=True))
        mac, replay = row[-2], row[-1]
        if isinstance(values["input"], str):
            values["input"] = json.loads(values["input"])
        if values["client_ip"] is not None:
            values["client_ip"] = str(values["client_ip"])
        message = pending_message(workspace.pk, values)
        if not mac_ok(message, mac):
            rejected.append((row[0], "mac_missing" if not mac else "mac_mismatch", message))
            continue
        if replay or mac in seen:
            rejected.append((row[0], "replayed", message))
            continue
        seen.add(mac)
        sealed.append(row[0])
        entries.append(AuditEntry(workspace_id=workspace.pk, **values))
    moved = _quarantine_pending(workspace, rejected) if rejected else []
    if entries:
        _chain_and_write(entries, head.seq, head.hash)
        head = _Head(entries[-1].seq, entries[-1].hash, False, False)
    if sealed:
        if connection.vendor == "postgresql":
            with prepared_cursor(connection) as cursor:
                cursor.execute(_DELETE_PENDING, [sealed])
        else:
            AuditPending.objects.filter(pk__in=sealed).delete()
    head = head._replace(pending=False)
    if rejected:
        record = _record_forged_pending(workspace, rejected, moved)
        head = _Head(record.audit_entry.seq, record.audit_entry.hash, False, False)
    return head


# What makes a queued row and a chain entry the same entry (the queue guard's test).
_IDENTITY_FIELDS = ("created_at", "actor", "action", "target_type", "target_id", "request_id",
                    "input", "decision", "outcome")  # fmt: skip


def _chained_already(workspace: Workspace, row: tuple) -> bool:
    """`_REPLAYED` for SQLite (JSON compared as Python values)."""
    values = dict(zip(_PENDING_FIELDS, row[1:], strict=False))
    same_time = AuditEntry.objects.filter(workspace=workspace, created_at=values["created_at"])
    identity = tuple(values[name] for name in _IDENTITY_FIELDS)
    return any(found == identity for found in same_time.values_list(*_IDENTITY_FIELDS))


_QUARANTINE_PENDING = "SELECT warden_audit_pending_quarantine(%s, %s::bigint[], %s::text[], %s)"


def _quarantine_pending(workspace: Workspace, rejected: list[tuple[int, str, bytes]]) -> list[int]:
    """Move queue rows that failed their MAC check out of the queue into AuditQuarantine
    (kept whole; on PostgreSQL through the SECURITY DEFINER function of migration 0011,
    the only way a queue row leaves other than being chained)."""
    found_at = timezone.now()
    ids = [pk for pk, _reason, _message in rejected]
    reasons = [reason for _pk, reason, _message in rejected]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_QUARANTINE_PENDING, [workspace.pk, ids, reasons, found_at])
            moved = [row[0] for row in cursor.fetchall()]
    else:
        queued = AuditPending.objects.filter(pk__in=ids).values()
        by_id = {values["id"]: values for values in queued}
        moved = []
        for pk, reason in zip(ids, reasons, strict=True):
            values = dict(by_id[pk])
            values.pop("workspace_id")
            values["created_at"] = values["created_at"].isoformat()  # all 6 digits kept
            moved.append(
                AuditQuarantine.objects.create(
                    workspace=workspace,
                    seq=None,
                    found_at=found_at,
                    row=normalize_json(values),
                    source=AuditQuarantine.Source.PENDING,
                    reason=reason,
                ).pk
            )
        AuditPending.objects.filter(pk__in=ids)._raw_delete(AuditPending.objects.db)
    return moved


def _record_forged_pending(
    workspace: Workspace, rejected: list[tuple[int, str, bytes]], moved: list[int]
) -> ExceptionRecord:
    """The exception record of a quarantine of queue rows, through the normal audit
    path. It names each row by its queue id, why it was refused and the SHA-256 of the
    content its MAC would have covered: nothing of what the row claims enters the chain
    as if it were genuine (the row itself is kept in the quarantine)."""
    rows = [
        {
            "queue_id": pk,
            "reason": reason,
            "sha256": hashlib.sha256(message).hexdigest(),
            "quarantine_id": quarantine_id,
        }
        for (pk, reason, message), quarantine_id in zip(rejected, moved, strict=True)
    ]
    return exception_record(
        workspace=workspace,
        actor=Actor.system("audit"),
        kind=ExceptionRecord.Kind.QUEUE_FORGED,
        severity=ExceptionRecord.Severity.HIGH,
        what=f"{len(rows)} forged or corrupted row(s) in the audit queue; quarantined",
        why="Rows waiting in the group-commit queue did not carry the application's queue "
        "MAC (or repeated a row already chained): they were not written by the "
        "application as they stand, so they were not chained. They were moved to the "
        "audit quarantine, kept whole.",
        evidence={"quarantined": rows, "quarantine_ids": moved},
        mitigation="Investigate database access; the rows are kept in the audit quarantine. "
        "audit_verify reports the workspace broken until this record is resolved.",
        subject=f"workspace:{workspace.slug}",
    )


def _checkpoint_if_crossed(workspace: Workspace, before: int, after: int) -> None:
    every = checkpoint_every()
    if after // every > before // every:
        checkpoint_at_head(workspace)


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


MAX_REASON = 2000


def require_reason(reason: str | None) -> str:
    """The one rule (issue 27): every configuration change says why, whoever makes it
    (API, admin, command, background task). Raises `reason_required` for a missing or
    blank reason; returns it stripped. Enforced by audit_record_change, which every
    change goes through, and asked early by the governed-operation door, so no request
    is ever filed for a second human without one."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise WardenError(
            "reason_required",
            "Say why: every configuration change is recorded with its reason.",
            {"reason": ["Required: a non-blank reason for this change."]},
        )
    if len(text) > MAX_REASON:
        raise WardenError(
            "validation_error",
            f"A reason has at most {MAX_REASON} characters.",
            {"reason": [f"At most {MAX_REASON} characters."]},
        )
    return text


def audit_record_change(
    event: AuditEvent,
    /,
    *,
    workspace: Workspace,
    actor: Actor,
) -> AuditEntry:
    """A config change (`EVENTS[action].change(...)`): one audit entry plus its
    VersionLog (before/after JSON). Refused without a reason (require_reason): the
    caller's transaction rolls the change back."""
    if not isinstance(event, AuditEvent):
        raise TypeError(f"audit_record_change takes an AuditEvent, not {type(event).__name__}")
    if not event.is_change:
        raise UndeclaredEvent(f"audit action {event.action!r} is not a config change")
    require_reason(event.rationale)
    entry = _record(event, workspace, actor)
    VersionLog.objects.create(
        workspace=workspace,
        created_at=entry.created_at,
        actor=entry.actor,
        target_type=event.target_type,
        target_id=entry.target_id,
        before=entry.input["before"],
        after=entry.input["after"],
        reason=entry.rationale,
        policy_version=event.policy_version,
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
    """An exception record and its audit entry: `action`'s event, declared with
    `_exception` in audit/events.py (kind, severity, what, evidence)."""
    event = EVENTS[action].event(
        target_type=TargetType.EXCEPTION,
        input={"kind": kind, "severity": severity, "what": what, "evidence": evidence or {}},
        rationale=why,
        outcome=kind,
    )
    entry = audit_record(event, workspace=workspace, actor=actor)
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
    event = EVENTS[AuditAction.EXCEPTION_RESOLVED].event(
        target_id=record.pk,
        input={"kind": record.kind, "mitigation": mitigation, "reason": reason},
        rationale=reason,
        outcome="resolved",
    )
    entry = audit_record(event, workspace=record.workspace, actor=actor)
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
    hold the chain to (see verify_chain). Queued entries are sealed first."""
    audit_seal_pending(workspace)
    result = verify_chain(workspace, progress=progress, checkpoint_file=checkpoint_file)
    with transaction.atomic():
        event = EVENTS[AuditAction.AUDIT_VERIFIED].event(
            target_id=workspace.pk,
            input=result.as_dict(),
            decision="ok" if result.ok else "broken",
            rationale=result.summary(),
            outcome="ok" if result.ok else "broken",
        )
        entry = audit_record(event, workspace=workspace, actor=actor)
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
        event = EVENTS[AuditAction.AUDIT_EXPORTED].event(
            target_type=TargetType.AUDIT_CHAIN,
            target_id=workspace.pk,
            input={
                "entries": entries,
                "first_seq": first_seq,
                "last_seq": last_seq,
                "destination": destination,
            },
            outcome="exported",
        )
        return audit_record(event, workspace=workspace, actor=actor)
