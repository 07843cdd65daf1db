"""Walk a workspace's chain and name the first entry that does not hold.

Checks, in order, for each entry from the start of the chain (seq 1, or the entry
after the latest retention checkpoint) to the chain head:
- gap: the sequence number is not the next one, or the rows end before the chain
  head (a row was deleted);
- broken link: `prev_hash` is not the hash of the previous entry;
- reordered: instead of a gap or a broken link, when the true successor of the
  previous entry (the row linking to its hash) sits at another sequence number;
- hash mismatch: SHA-256(prev_hash || canonical JSON) is not the stored hash (a row
  was edited), `actor_type` disagrees with `actor`, the chain head or a retention
  checkpoint disagrees with the rows, or a version log / exception record no longer
  says what its chained entry says.

And against the signed checkpoints (audit/checkpoints.py), from the table and from an
exported checkpoint file when one is given:
- forged checkpoint: a checkpoint whose Ed25519 signature does not verify;
- truncated: the chain head is behind the newest signed checkpoint (entries deleted
  and the head rewound, or everything deleted);
- checkpoint mismatch: the entry at a signed sequence number does not have the signed
  hash (rewritten, even with every hash after it recomputed);
- forged entry: an entry newer than the last signed checkpoint without a valid MAC
  (appended by someone without the server's key);
- beyond head: rows past the chain head (read, not ignored).

And the group-commit queue (AuditPending), not in tail-only runs:
- forged queued entry: a row waiting to be chained whose queue MAC is missing or does
  not verify (the sealer would quarantine it); rows whose MAC verifies are reported as
  `pending` with the age of the oldest;
- quarantined queue row: a queue row in quarantine whose queue_forged exception
  record is still open (or missing), or whose MAC verifies after all (a genuine entry
  taken out of the queue by hand instead of being chained).

Speed (>= 100,000 entries/s, bench/audit.py): rows come as tuples in keyset-paginated
chunks on (workspace, seq) (one index range scan each, constant memory, no model
instances) and are hashed by `audit.chain.row_hasher`, which assembles the canonical
JSON from precomputed pieces instead of building and sorting a dict per row. On
PostgreSQL the next chunk is fetched on a helper thread while one is hashed.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import signing
from audit.chain import GENESIS_HASH, PENDING_FIELDS, ROW_FIELDS, pending_message, row_hasher
from audit.checkpoints import SignedPoint, file_points, signature_valid, stored_points
from audit.models import (
    AuditChainHead,
    AuditEntry,
    AuditPending,
    AuditQuarantine,
    ExceptionRecord,
    VersionLog,
)
from audit.prune_marks import latest_checkpoint

if TYPE_CHECKING:
    from tenants.models import Workspace

HASH_MISMATCH = "hash mismatch"
BROKEN_LINK = "broken link"
GAP = "gap"
REORDERED = "reordered"
FORGED_CHECKPOINT = "forged checkpoint"
TRUNCATED = "truncated"
CHECKPOINT_MISMATCH = "checkpoint mismatch"
FORGED_ENTRY = "forged entry"
BEYOND_HEAD = "beyond head"
FORGED_QUEUED = "forged queued entry"
QUARANTINED_QUEUED = "quarantined queue row"

CHUNK_SIZE = 5000
_FETCH = (*ROW_FIELDS, "actor_type", "mac")
_N_HASHED = len(ROW_FIELDS) - 2  # seq .. outcome; then prev_hash, hash, actor_type, mac
_NO_CHECKPOINT = 2**63

Progress = Callable[[int, int], None]


@dataclass
class VerifyResult:
    ok: bool
    entries_checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    seconds: float = 0.0
    detail: str = ""
    workspace: str = ""  # slug, for reports over several workspaces
    last_signed_seq: int = 0  # newest signed checkpoint (table or file); 0: none
    checkpoints_checked: int = 0
    quarantined: int = 0  # rows moved out of the chain earlier (see AuditQuarantine)
    pending: int = 0  # queued entries with a valid queue MAC, waiting to be chained
    pending_age_seconds: float = 0.0  # age of the oldest of them

    @property
    def entries_per_second(self) -> float:
        return self.entries_checked / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        if self.ok:
            text = f"chain intact: {self.entries_checked} entries checked"
            if self.pending:
                text += f"; {self.pending} queued, valid, oldest {self.pending_age_seconds:.1f} s"
        else:
            text = f"chain broken at #{self.first_bad_seq}: {self.problem}"
            text = f"{text} ({self.detail})" if self.detail else text
        if self.quarantined:
            text += f"; {self.quarantined} row(s) in quarantine"
        return text

    def as_dict(self) -> dict:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 6)
        data["pending_age_seconds"] = round(self.pending_age_seconds, 3)
        return data


@contextmanager
def _snapshot():
    """One consistent view of the chain while walking it (REPEATABLE READ on
    PostgreSQL), so concurrent appends or a prune cannot look like tampering."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _moved_successor(workspace: Workspace, prev: str, not_at: int) -> int | None:
    """Where the entry linking to `prev` (the true successor) sits, if not at `not_at`.
    Runs once, on the failure path only."""
    return (
        AuditEntry.objects.filter(workspace=workspace, prev_hash=prev)
        .exclude(seq=not_at)
        .values_list("seq", flat=True)
        .first()
    )


def _fetch_orm(workspace: Workspace, after: int, chunk_size: int):
    """Keyset-paginated tuples of _FETCH after seq `after`, oldest first, including any
    rows past the chain head (any database)."""
    rows = AuditEntry.objects.filter(workspace=workspace).order_by("seq")
    last = after
    while True:
        chunk = list(rows.filter(seq__gt=last).values_list(*_FETCH)[:chunk_size])
        if chunk:
            yield chunk
        if len(chunk) < chunk_size:
            return
        last = chunk[-1][0]


# PostgreSQL: the same rows without per-row conversions. The server formats created_at
# exactly as the chain does, and `input` stays jsonb text (Django loads jsonb as text),
# decoded by the C scanner in the hasher; the walk is 2-3x faster than through the ORM.
_PG_CHUNK_SQL = """
    SELECT seq, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           actor, action, target_type, target_id, tool, input, decision, rationale,
           policy_version, request_id, client_ip, outcome, prev_hash, hash, actor_type, mac
    FROM audit_auditentry
    WHERE workspace_id = %s AND seq > %s
    ORDER BY seq
    LIMIT %s
"""


def _fetch_postgres(workspace: Workspace, after: int, chunk_size: int):
    """Like _fetch_orm, with the next chunk read on a helper thread while this one is
    hashed: psycopg releases the GIL while the server works, so the database and the
    hashing overlap instead of taking turns. Same connection, same snapshot."""
    chunks: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    with connection.cursor() as cursor:

        def produce() -> None:
            last = after
            try:
                while not stop.is_set():
                    cursor.execute(_PG_CHUNK_SQL, [workspace.pk, last, chunk_size])
                    chunk = cursor.fetchall()
                    chunks.put(chunk)
                    if len(chunk) < chunk_size:
                        return
                    last = chunk[-1][0]
            except BaseException as exc:  # handed to the consumer
                chunks.put(exc)

        producer = threading.Thread(target=produce, name="audit-verify-fetch", daemon=True)
        producer.start()
        try:
            while True:
                chunk = chunks.get()
                if isinstance(chunk, BaseException):
                    raise chunk
                if chunk:
                    yield chunk
                if len(chunk) < chunk_size:
                    return
        finally:
            stop.set()
            while producer.is_alive():  # unblock a pending put, then let it finish
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.01)
            producer.join()


def _no_rows(workspace: Workspace, after: int, chunk_size: int):
    yield from ()


# --- Parallel fast path (PostgreSQL, long chains) ---------------------------------------
# Hashing is CPU-bound Python and the GIL keeps one process on one core. A long chain is
# cut into contiguous segments walked by forked processes, each on its own connection in
# the verifier's exported snapshot (pg_export_snapshot: the same view, as pg_dump -j
# does), checking within its segment everything the serial walk checks per entry; the
# parent joins the segments (contiguity and links across the cuts, the MAC rule) and
# runs the whole-chain checks after the walk as before. Only a verdict of "intact" is
# taken from it: on any finding, the serial walk runs and names the first bad entry
# exactly as it always has.

PARALLEL_MIN_ENTRIES = 100_000
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+-[0-9A-Fa-f]+(-[0-9]+)?$")


def verify_workers() -> int:
    """Default: one more process than CPUs. Part of each entry's cost is PostgreSQL's
    (reading and sending rows, in its own processes), so one process per CPU leaves the
    cores partly idle: on 2 CPUs, 2 processes walked 187,000 entries/s, 3 walked 213,000
    (bench/audit.py, docs "Parallel walk")."""
    configured = settings.WARDEN_AUDIT_VERIFY_WORKERS
    return configured if configured > 0 else (os.cpu_count() or 1) + 1


def _parallel_ok(total: int, tail_only: bool) -> bool:
    return (
        connection.vendor == "postgresql"
        and not tail_only
        and total >= PARALLEL_MIN_ENTRIES
        and verify_workers() > 1
        and hasattr(os, "fork")
        and not multiprocessing.current_process().daemon  # e.g. a Celery prefork child
    )


@dataclass
class _Segment:
    ok: bool
    first_prev: str | None = None
    last_hash: str | None = None
    first_mac: int | None = None  # first entry >= mac_from carrying a valid MAC
    first_nomac: int | None = None  # first entry >= mac_from without a MAC


def _walk_segment(cursor, workspace_id, lo: int, hi: int, cfg: dict) -> _Segment:
    """Entries lo+1..hi, every per-entry check of the serial walk except the link into
    the first one (the parent joins segments). Not ok on any finding."""
    hash_row = row_hasher(workspace_id, input_as_text=True)
    mac_ok = signing.entry_mac_checker()
    retention, signed, mac_from = cfg["retention"], cfg["signed"], cfg["mac_from"]
    expected, prev, out = lo + 1, None, _Segment(ok=False)
    while expected <= hi:
        cursor.execute(_PG_RANGE_SQL, [workspace_id, expected - 1, hi, CHUNK_SIZE])
        rows = cursor.fetchall()
        if not rows:
            return out
        for row in rows:
            seq = row[0]
            stored_prev, stored_hash, actor_type, mac = row[_N_HASHED:]
            if seq != expected or (prev is not None and stored_prev != prev):
                return out
            if hash_row(stored_prev, row) != stored_hash:
                return out
            if not row[2].startswith(actor_type + ":"):
                return out
            if retention is not None and seq == retention[0] and stored_hash != retention[1]:
                return out
            if seq in signed and stored_hash != signed[seq]:
                return out
            if seq >= mac_from:
                if mac:
                    if not mac_ok(stored_hash, mac):
                        return out
                    if out.first_mac is None:
                        out.first_mac = seq
                elif out.first_mac is not None:
                    return out  # once an entry carries a MAC, every later one must
                elif out.first_nomac is None:
                    out.first_nomac = seq
            if prev is None:
                out.first_prev = stored_prev
            prev = stored_hash
            expected = seq + 1
    out.ok, out.last_hash = True, prev
    return out


def _segment_child(params, snapshot: str, workspace_id, lo: int, hi: int, cfg: dict, pipe):
    """In a forked process: a fresh connection (the parent's socket is never touched),
    the parent's snapshot, one segment; the verdict goes back through `pipe`."""
    try:
        if not _SNAPSHOT_ID.match(snapshot):
            raise ValueError("unexpected snapshot id")
        conn = connection.get_new_connection(params)
        conn.autocommit = True  # the transaction below is opened explicitly
        try:
            with conn.cursor() as cursor:
                cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                result = _walk_segment(cursor, workspace_id, lo, hi, cfg)
        finally:
            conn.close()
        pipe.send(asdict(result))
    except BaseException:  # the parent falls back to the serial walk
        pipe.send(None)
    finally:
        pipe.close()
        os._exit(0)


def _parallel_walk(
    workspace: Workspace,
    *,
    start: int,
    start_prev: str,
    head_seq: int,
    retention,
    signed: dict,
    mac_from: int,
    mac_required: bool,
) -> str | None:
    """The hash of the chain head if entries start..head are intact, else None."""
    if AuditEntry.objects.filter(workspace=workspace, seq__gt=head_seq).exists():
        return None  # rows past the head: the serial walk reports them
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
    if AuditEntry.objects.filter(workspace=workspace, seq__lt=start).exists():
        return None  # entries kept from before a retention checkpoint: the serial walk
    workers = verify_workers()
    bounds = [start - 1 + (head_seq - start + 1) * i // workers for i in range(workers + 1)]
    cfg = {"retention": retention, "signed": signed, "mac_from": mac_from}
    params = connection.get_connection_params()
    context = multiprocessing.get_context("fork")
    children = []
    try:
        for lo, hi in itertools.pairwise(bounds[1:]):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(
                target=_segment_child,
                args=(params, snapshot, workspace.pk, lo, hi, cfg, send),
                daemon=True,
            )
            child.start()
            send.close()
            children.append((child, receive))
        with connection.cursor() as cursor:
            own = _walk_segment(cursor, workspace.pk, bounds[0], bounds[1], cfg)
        segments = [own]
        for _child, receive in children:
            try:
                found = receive.recv()
            except EOFError:
                found = None
            segments.append(_Segment(**found) if found else _Segment(ok=False))
    finally:
        for child, receive in children:
            receive.close()
            child.join(timeout=60)
    prev, mac_seen = start_prev, mac_required
    for segment in segments:
        if not segment.ok or (prev is not None and segment.first_prev != prev):
            return None
        if mac_seen and segment.first_nomac is not None:
            return None
        if segment.first_mac is not None:
            if segment.first_nomac is not None and segment.first_nomac > segment.first_mac:
                return None
            mac_seen = True
        prev = segment.last_hash
    return prev


_PG_RANGE_SQL = """
    SELECT seq, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           actor, action, target_type, target_id, tool, input, decision, rationale,
           policy_version, request_id, client_ip, outcome, prev_hash, hash, actor_type, mac
    FROM audit_auditentry
    WHERE workspace_id = %s AND seq > %s AND seq <= %s
    ORDER BY seq
    LIMIT %s
"""


_VERSION_FIELDS = ("audit_entry__seq", "before", "after", "reason", "actor", "target_type",
                   "target_id", "policy_version", "created_at", "audit_entry__input",
                   "audit_entry__rationale", "audit_entry__actor", "audit_entry__target_type",
                   "audit_entry__target_id", "audit_entry__policy_version",
                   "audit_entry__created_at")  # fmt: skip
_EXCEPTION_FIELDS = ("audit_entry__seq", "kind", "severity", "what", "why", "evidence",
                     "created_at", "audit_entry__input", "audit_entry__rationale",
                     "audit_entry__created_at")  # fmt: skip


def _first_evidence_mismatch(workspace: Workspace, head_seq: int) -> tuple[int, str] | None:
    """Version logs and exception records are not chained themselves, but everything
    they say is also in the input of their chained audit entry: a record that no longer
    agrees with its entry was edited. Returns (entry seq, what differs)."""
    bad = []
    logs = VersionLog.objects.filter(workspace=workspace, audit_entry__seq__lte=head_seq)
    for row in logs.values_list(*_VERSION_FIELDS).iterator(chunk_size=2000):
        seq, before, after, reason, actor, ttype, tid, version, created, data, *entry = row
        data = data if isinstance(data, dict) else {}
        if (before, after, reason) != (data.get("before"), data.get("after"), entry[0]) or (
            actor,
            ttype,
            tid,
            version,
            created,
        ) != tuple(entry[1:]):
            bad.append((seq, "version log differs from its audit entry"))
            break
    records = ExceptionRecord.objects.filter(
        workspace=workspace, audit_entry__seq__lte=head_seq, audit_entry__target_type="exception"
    )
    for row in records.values_list(*_EXCEPTION_FIELDS).iterator(chunk_size=2000):
        seq, kind, severity, what, why, evidence, created, data, rationale, entry_created = row
        data = data if isinstance(data, dict) else {}
        said = (data.get("kind"), data.get("severity"), str(data.get("what", ""))[:300])
        if (kind, severity, what) != said or (why, evidence, created) != (
            rationale,
            data.get("evidence", {}),
            entry_created,
        ):
            bad.append((seq, "exception record differs from its audit entry"))
            break
    return min(bad) if bad else None


def _signed_points(
    workspace: Workspace, checkpoint_file, tail_only: bool, keys: dict
) -> tuple[dict[int, SignedPoint], tuple[int, str, str] | None, int]:
    """seq -> checkpoint from the table (and the file), or the first problem found. The
    newest checkpoint's signature is always checked (truncation and the MAC boundary
    rest on it); two checkpoints disagreeing about one seq are settled by theirs."""
    points: list[SignedPoint] = stored_points(workspace, latest_only=tail_only)
    if checkpoint_file is not None:
        points += file_points(workspace, checkpoint_file)
    checked = 0
    signed: dict[int, SignedPoint] = {}

    def forged(point: SignedPoint) -> tuple[int, str, str] | None:
        nonlocal checked
        checked += 1
        if signature_valid(point, keys):
            return None
        return point.seq, FORGED_CHECKPOINT, f"signature ({point.source})"

    for point in points:
        other = signed.setdefault(point.seq, point)
        if other.hash != point.hash:
            problem = forged(other) or forged(point)
            problem = problem or (point.seq, CHECKPOINT_MISMATCH, f"{point.source} disagrees")
            return signed, problem, checked
    if signed:
        return signed, forged(signed[max(signed)]), checked
    return signed, None, checked


def verify_chain(
    workspace: Workspace,
    *,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
    checkpoint_file=None,
    tail_only: bool = False,
) -> VerifyResult:
    """Verify one workspace's chain; `progress(checked, total)` is called after every
    chunk. `checkpoint_file`: exported checkpoints (a JSON-lines file or a directory)
    to hold the chain to as well. `tail_only`: only the entries after the newest signed
    checkpoint (what a new checkpoint is about to vouch for)."""
    started = time.perf_counter()
    checked = 0
    last_signed = 0
    checkpoints_checked = 0
    queue = _QueueState()

    def result(bad_seq: int | None = None, problem: str = "", detail: str = "") -> VerifyResult:
        return VerifyResult(
            ok=bad_seq is None,
            entries_checked=checked,
            first_bad_seq=bad_seq,
            problem=problem,
            seconds=time.perf_counter() - started,
            detail=detail,
            workspace=workspace.slug,
            last_signed_seq=last_signed,
            checkpoints_checked=checkpoints_checked,
            quarantined=AuditQuarantine.objects.filter(workspace=workspace).count(),
            pending=queue.pending,
            pending_age_seconds=queue.age,
        )

    own_snapshot = not connection.in_atomic_block  # one the parallel walk can share
    with _snapshot():
        head = AuditChainHead.objects.filter(workspace=workspace).values_list("seq", "hash").first()
        head_seq, head_hash = head or (0, GENESIS_HASH)
        keys = signing.trusted_public_keys()
        signed, bad_point, checkpoints_checked = _signed_points(
            workspace, checkpoint_file, tail_only, keys
        )
        if bad_point is not None:
            return result(*bad_point)
        last_signed = max(signed, default=0)
        if head_seq < last_signed:
            return result(
                head_seq + 1, TRUNCATED, f"chain head is #{head_seq}, #{last_signed} was signed"
            )
        checkpoint = latest_checkpoint(workspace, up_to_seq=head_seq)
        if checkpoint is not None and not checkpoint.signature_valid:
            return result(checkpoint.seq, HASH_MISMATCH, "retention checkpoint signature")
        start = checkpoint.through_seq + 1 if checkpoint else 1
        start_prev = checkpoint.through_hash if checkpoint else GENESIS_HASH
        after = 0
        if tail_only and last_signed >= start:
            start, start_prev, after = last_signed + 1, signed[last_signed].hash, last_signed
        total = max(head_seq - start + 1, 0)
        # Signed sequence numbers still to meet, ascending; the sentinel never matches.
        to_meet = sorted(s for s in signed if s >= start)
        to_meet.append(_NO_CHECKPOINT)
        meet_at = 0
        next_signed = to_meet[0]
        # Entries after the newest checkpoint must carry the application's MAC. With no
        # checkpoint yet, entries older than the MAC column may lack one, but once an
        # entry carries a MAC every later one must.
        mac_from = last_signed + 1 if last_signed else start
        mac_required = bool(last_signed)
        mac_ok = signing.entry_mac_checker()

        on_postgres = connection.vendor == "postgresql"
        hash_row = row_hasher(workspace.pk, input_as_text=on_postgres)
        fetch = _fetch_postgres if on_postgres else _fetch_orm
        expected = None  # next sequence number expected
        prev = None  # hash the next entry must link to; None: cannot be known
        failure = None  # (seq, problem, detail); the fetch is closed before reporting
        beyond = None  # first row found past the chain head
        walked = None
        if own_snapshot and _parallel_ok(total, tail_only):
            walked = _parallel_walk(
                workspace,
                start=start,
                start_prev=start_prev,
                head_seq=head_seq,
                retention=(checkpoint.through_seq, checkpoint.through_hash) if checkpoint else None,
                signed={seq: point.hash for seq, point in signed.items() if seq >= start},
                mac_from=mac_from,
                mac_required=mac_required,
            )
        if walked is not None:  # intact: the serial walk below has nothing to do
            checked, prev, expected = total, walked, head_seq + 1
            if progress is not None:
                progress(checked, total)
            fetch = _no_rows
        with contextlib.closing(fetch(workspace, after, chunk_size)) as chunks:
            for chunk in chunks:
                for row in chunk:
                    seq = row[0]
                    if seq > head_seq:
                        beyond = seq
                        break
                    if expected is None:  # first entry present
                        if seq > start:
                            failure = (start, GAP, "entries missing at the start of the chain")
                            break
                        # Older than the retention checkpoint: kept, its link unknowable.
                        prev = start_prev if seq == start else (GENESIS_HASH if seq == 1 else None)
                        expected = seq
                    if seq != expected:
                        failure = (expected, GAP, f"next entry present is #{seq}")
                        break
                    stored_prev, stored_hash, actor_type, mac = row[_N_HASHED:]
                    if prev is not None and stored_prev != prev:
                        failure = (seq, BROKEN_LINK, "")
                        break
                    if hash_row(stored_prev, row) != stored_hash:
                        failure = (seq, HASH_MISMATCH, "")
                        break
                    if not row[2].startswith(actor_type + ":"):
                        failure = (seq, HASH_MISMATCH, "actor_type does not match actor")
                        break
                    if (
                        checkpoint is not None
                        and seq == checkpoint.through_seq
                        and stored_hash != checkpoint.through_hash
                    ):
                        failure = (seq, HASH_MISMATCH, "differs from retention checkpoint")
                        break
                    if seq == next_signed:
                        point = signed[seq]
                        if stored_hash != point.hash:
                            checkpoints_checked += 1
                            if signature_valid(point, keys):
                                failure = (seq, CHECKPOINT_MISMATCH, f"signed in {point.source}")
                            else:
                                failure = (seq, FORGED_CHECKPOINT, f"signature ({point.source})")
                            break
                        meet_at += 1
                        next_signed = to_meet[meet_at]
                    if seq >= mac_from:
                        if mac:
                            if not mac_ok(stored_hash, mac):
                                failure = (seq, FORGED_ENTRY, "entry MAC does not verify")
                                break
                            mac_required = True
                        elif mac_required:
                            failure = (seq, FORGED_ENTRY, "entry has no MAC")
                            break
                    prev = stored_hash
                    expected = seq + 1
                    checked += 1
                if failure is not None or beyond is not None:
                    break
                if progress is not None:
                    progress(checked, total)
        if failure is None and expected is not None and expected - 1 < head_seq:
            failure = (expected, GAP, f"chain head is #{head_seq}")
        if failure is not None:
            bad_seq, problem, detail = failure
            if problem in (BROKEN_LINK, GAP) and prev is not None:
                # The entry that should be here exists elsewhere: moved, not lost.
                moved = _moved_successor(workspace, prev, bad_seq)
                if moved is not None:
                    problem, detail = REORDERED, f"the entry linking here sits at #{moved}"
            return result(bad_seq, problem, detail)

        if expected is None:  # no entries up to the head
            if head_seq >= start:
                return result(start, GAP, "no entries up to the chain head")
        elif prev != head_hash:
            return result(head_seq, HASH_MISMATCH, "differs from the chain head")
        if beyond is not None:
            count = AuditEntry.objects.filter(workspace=workspace, seq__gt=head_seq).count()
            return result(beyond, BEYOND_HEAD, f"{count} row(s) past the chain head #{head_seq}")
        if not tail_only:
            mismatch = _first_evidence_mismatch(workspace, head_seq)
            if mismatch is not None:
                return result(mismatch[0], HASH_MISMATCH, mismatch[1])
            finding = _queue_findings(workspace, head_seq, queue)
            if finding is not None:
                return result(*finding)
    return result()


# --- The group-commit queue ------------------------------------------------------------


@dataclass
class _QueueState:
    pending: int = 0
    age: float = 0.0


def _pending_values(values: dict) -> dict:
    """A queue row's content as the writer MAC'd it, from the ORM or from the JSON
    copy kept in quarantine (timestamps as ISO text there)."""
    values = {name: values.get(name) for name in PENDING_FIELDS[1:]}
    if isinstance(values["created_at"], str):
        values["created_at"] = datetime.fromisoformat(values["created_at"])
    if values["client_ip"] is not None:
        values["client_ip"] = str(values["client_ip"])
    return values


def _queue_findings(
    workspace: Workspace, head_seq: int, state: _QueueState
) -> tuple[int, str, str] | None:
    """Check every queued row's MAC (counting the valid ones and the oldest one's age in
    `state`) and every quarantined queue row against its exception record."""
    _, mac_ok = signing.pending_mac_checker()
    oldest = None
    queued = AuditPending.objects.filter(workspace=workspace).order_by("id")
    for row in queued.values("id", "mac", *PENDING_FIELDS[1:]):
        values = _pending_values(row)
        if not mac_ok(pending_message(workspace.pk, values), row["mac"]):
            why = "has no queue MAC" if not row["mac"] else "queue MAC does not verify"
            return head_seq + 1, FORGED_QUEUED, f"queue row {row['id']} {why}"
        state.pending += 1
        oldest = values["created_at"] if oldest is None else min(oldest, values["created_at"])
    if oldest is not None:
        state.age = max((timezone.now() - oldest).total_seconds(), 0.0)
    quarantined = AuditQuarantine.objects.filter(
        workspace=workspace, source=AuditQuarantine.Source.PENDING
    ).order_by("id")
    rows = list(quarantined.values_list("id", "reason", "row"))
    if not rows:
        return None
    records = {}
    found = ExceptionRecord.objects.filter(
        workspace=workspace, kind=ExceptionRecord.Kind.QUEUE_FORGED
    ).values_list("pk", "resolved_at", "evidence", "audit_entry__seq")
    for pk, resolved_at, evidence, seq in found:
        for quarantine_id in (evidence or {}).get("quarantine_ids", []):
            records[quarantine_id] = (pk, resolved_at, seq)
    for quarantine_id, reason, row in rows:
        values = _pending_values(row)
        genuine = mac_ok(pending_message(workspace.pk, values), row.get("mac"))
        if genuine and (reason != "replayed" or not _in_chain(workspace, values)):
            return (
                head_seq + 1,
                QUARANTINED_QUEUED,
                f"quarantine {quarantine_id} holds a genuine queued entry (its MAC verifies): "
                "taken out of the queue instead of being chained",
            )
        record = records.get(quarantine_id)
        if record is None:
            return (
                head_seq + 1,
                QUARANTINED_QUEUED,
                f"quarantine {quarantine_id}: no exception record names it",
            )
        if record[1] is None:
            return (
                record[2],
                QUARANTINED_QUEUED,
                f"forged queue row in quarantine {quarantine_id}; exception record "
                f"{record[0]} is open",
            )
    return None


def _in_chain(workspace: Workspace, values: dict) -> bool:
    """An entry identical to a replayed queue row is in the chain (what it copied)."""
    fields = ("actor", "action", "target_type", "target_id", "request_id", "input",
              "decision", "outcome")  # fmt: skip
    same_time = AuditEntry.objects.filter(workspace=workspace, created_at=values["created_at"])
    wanted = tuple(values[name] for name in fields)
    return any(found == wanted for found in same_time.values_list(*fields))
