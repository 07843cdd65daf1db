"""Audit benchmark: append throughput, verify throughput, actor-prefix filter latency.

    .venv/bin/python bench/audit.py [--rows 1000000] [--appends 2000] [--threads 4] [--fresh]

Needs a local PostgreSQL (BENCH_AUDIT_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench_audit; created and migrated if
missing; nothing else is touched). Prints:

1. append throughput (entries/s): `audit_record` in its own transaction per entry, as
   services call it; one workspace (every writer queues on the chain-head lock) and
   many workspaces (writers spread over chains), sequential and with threads;
2. `verify_chain` throughput over a chain of --rows entries, serial and with the
   parallel walk (WARDEN_AUDIT_VERIFY_WORKERS processes, default one per CPU), against
   a naive verifier measured in the same run (model instances + dict + json.dumps);
3. the API's actor-prefix filter (first page, 51 rows) over that --rows-entry table,
   with EXPLAIN ANALYZE, against two baselines in the same run: a LIKE on `actor`
   (what the filter would be without the indexed `actor_type` column) and the same
   query with index scans disabled.

The big chain is bulk-loaded through COPY with correct hashes (fast path: the same
`row_hasher` verify uses) and reused by later runs unless --fresh.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchdb import ensure_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench_audit"
BIG_SLUG = "bench-audit-big"


def setup_django(database_url: str) -> None:
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-" + "k" * 50,
        # base64 of a bench-only 32-byte Ed25519 seed (audit checkpoints and entry MACs)
        WARDEN_AUDIT_SIGNING_KEY=os.environ.get("WARDEN_AUDIT_SIGNING_KEY")
        or "YmVuY2gtb25seS1hdWRpdC1zaWduaW5nLWtleS0zMmI=",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        CONN_MAX_AGE="600",
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f} entries/s  ({count:,} in {seconds:.2f} s)"


# --- 1. appends ------------------------------------------------------------------------


def _workspaces(prefix: str, count: int):
    from tenants.models import Workspace

    stamp = datetime.now(UTC).strftime("%H%M%S%f")
    return [
        Workspace.objects.create(slug=f"{prefix}-{stamp}-{i}", name=f"{prefix} {i}")
        for i in range(count)
    ]


def _append_loop(workspaces, count: int, offset: int = 0) -> None:
    from django.db import transaction

    from audit.events import EVENTS
    from audit.models import AuditAction
    from audit.services import audit_record
    from common.actor import Actor

    actor = Actor("key:6f1c1d7e-0000-4000-8000-000000000001", client_ip="10.1.2.3")
    for i in range(count):
        with transaction.atomic():
            event = EVENTS[AuditAction.ACTION_DECIDED].event(
                target_id="3b7e0c8a-0000-4000-8000-000000000002",
                tool="crm.lookup",
                input={"params": {"q": "acme", "limit": 10}, "reason": "", "dry_run": False},
                decision="allowed",
                rationale="allowlist: the tool needs no confirmation",
                policy_version=4,
                outcome="allowed",
            )
            audit_record(event, workspace=workspaces[(offset + i) % len(workspaces)], actor=actor)


def _threaded(workspaces, total: int, threads: int) -> float:
    from django.db import connection

    per = total // threads
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            own = [workspaces[(n + k) % len(workspaces)] for k in range(len(workspaces))]
            _append_loop(own if len(workspaces) > 1 else workspaces, per, offset=n)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def bench_appends(appends: int, threads: int, many: int) -> None:
    print(f"\n1. Append throughput (audit_record, one transaction per entry, {appends:,} each)")
    [one] = _workspaces("bench-one", 1)
    started = time.perf_counter()
    _append_loop([one], appends)
    print(f"  one workspace,   1 writer : {rate(appends, time.perf_counter() - started)}")
    seconds = _threaded([one], appends, threads)
    print(f"  one workspace, {threads:>3} writers: {rate(appends, seconds)}")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    started = time.perf_counter()
    _append_loop([one], appends)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = on")
    print(f"  one workspace,   1 writer, no commit fsync wait: {rate(appends, seconds)}")
    spread = _workspaces("bench-many", many)
    started = time.perf_counter()
    _append_loop(spread, appends)
    print(f"  {many} workspaces, 1 writer : {rate(appends, time.perf_counter() - started)}")
    seconds = _threaded(spread, appends, threads)
    print(f"  {many} workspaces,{threads:>3} writers: {rate(appends, seconds)}")
    from audit.verify import verify_chain

    assert verify_chain(one).ok and all(verify_chain(w).ok for w in spread)
    print("  (every chain written here verifies)")


# --- 2. the big chain ------------------------------------------------------------------

COPY_COLUMNS = (
    "workspace_id",
    "seq",
    "created_at",
    "actor",
    "actor_type",
    "action",
    "target_type",
    "target_id",
    "tool",
    "input",
    "decision",
    "rationale",
    "policy_version",
    "request_id",
    "client_ip",
    "outcome",
    "prev_hash",
    "hash",
    "mac",
)
ACTORS = (
    # ~75% key, ~25% user: agents dominate a real log. System entries are rare (one
    # in SYSTEM_EVERY), the case where a filter without the right index has to wade
    # through most of the table to fill one page.
    *[("key", f"key:6f1c1d7e-0000-4000-8000-{n:012d}") for n in range(15)],
    *[("user", f"user:person{n}@example.test") for n in range(5)],
)
SYSTEM_EVERY = 5000
BIG_NAME = "Audit bench v3"  # bump when the synthetic data changes
TOOLS = ("crm.lookup", "crm.update", "email.send", "payments.charge", "docs.search")


def _synthetic(seq: int, base: datetime):
    kind, actor = ACTORS[seq % len(ACTORS)]
    if seq % SYSTEM_EVERY == 0:
        kind, actor = "system", "system:retention"
    tool = TOOLS[seq % len(TOOLS)]
    decision = ("allowed", "denied", "requires_confirmation")[seq % 7 % 3]
    return (
        seq,
        base + timedelta(milliseconds=seq * 50),
        actor,
        "action.decided",
        "action_request",
        f"00000000-0000-4000-8000-{seq:012d}",
        tool,
        {"params": {"id": seq, "q": f"customer {seq % 977}"}, "reason": "", "dry_run": False},
        decision,
        "allowlist" if decision == "allowed" else "scope",
        4,
        f"req{seq:010d}",
        "10.0.0.1",
        decision,
    ), kind


def load_big_chain(rows: int, fresh: bool):
    """One workspace holding `rows` entries with correct hashes and MACs (COPY fast
    path), signed every WARDEN_AUDIT_CHECKPOINT_EVERY entries as the application does."""
    import json

    from django.db import connection, transaction

    from audit.chain import GENESIS_HASH, row_hasher
    from audit.checkpoints import checkpoint_every, checkpoint_sign
    from audit.models import AuditChainHead, AuditEntry
    from audit.signing import entry_mac
    from tenants.models import Workspace

    workspace = Workspace.objects.filter(slug=BIG_SLUG).first()
    if workspace is not None and workspace.name == BIG_NAME and not fresh:
        head = AuditChainHead.objects.filter(workspace=workspace).first()
        if head is not None and head.seq == rows:
            print(f"\n  reusing {rows:,}-entry chain in workspace {BIG_SLUG}")
            return workspace
    print(f"\n  loading a {rows:,}-entry chain through COPY ...", flush=True)
    started = time.perf_counter()
    # The bench database only, as a superuser: the audit triggers refuse TRUNCATE, bulk
    # rows that do not follow the head one by one and a head jump, so they are bypassed
    # (session_replication_role=replica) for the load, exactly as a DBA could.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "TRUNCATE audit_exceptionrecord, audit_versionlog, audit_auditentry,"
            " audit_auditchainhead, audit_auditcheckpoint, audit_auditquarantine CASCADE"
        )
    Workspace.objects.filter(slug=BIG_SLUG).delete()
    workspace = Workspace.objects.create(slug=BIG_SLUG, name=BIG_NAME)
    hash_row = row_hasher(workspace.pk)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ws = str(workspace.pk)
    prev = GENESIS_HASH
    every = checkpoint_every()
    signed_at = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        raw = cursor.cursor
        copy_sql = f"COPY audit_auditentry ({', '.join(COPY_COLUMNS)}) FROM STDIN"
        with raw.copy(copy_sql) as copy:
            for seq in range(1, rows + 1):
                values, kind = _synthetic(seq, base)
                digest = hash_row(prev, values)
                (_, created, actor, action, ttype, tid, tool, inp, dec, rat, pv, rid, ip, out) = (
                    values
                )
                copy.write_row(
                    (ws, seq, created, actor, kind, action, ttype, tid, tool, json.dumps(inp),
                     dec, rat, pv, rid, ip, out, prev, digest, entry_mac(digest))
                )  # fmt: skip
                if seq % every == 0:
                    signed_at.append((seq, digest))
                prev = digest
        AuditChainHead.objects.update_or_create(
            workspace=workspace, defaults={"seq": rows, "hash": prev}
        )
        for seq, digest in signed_at:
            checkpoint_sign(workspace, seq, digest)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditentry")
    count = AuditEntry.objects.filter(workspace=workspace).count()
    print(f"  loaded {count:,} rows in {time.perf_counter() - started:.1f} s")
    return workspace


def naive_verify(workspace, limit: int) -> tuple[int, float]:
    """The obvious verifier: model instances, dict payload, json.dumps per row."""
    from audit.chain import GENESIS_HASH, compute_hash, entry_payload
    from audit.models import AuditEntry

    started = time.perf_counter()
    prev, checked = GENESIS_HASH, 0
    rows = AuditEntry.objects.filter(workspace=workspace, seq__lte=limit).order_by("seq")
    for entry in rows.iterator(chunk_size=2000):
        assert entry.prev_hash == prev
        assert compute_hash(entry.prev_hash, entry_payload(entry)) == entry.hash
        prev = entry.hash
        checked += 1
    return checked, time.perf_counter() - started


def bench_verify(workspace, naive_rows: int) -> None:
    from django.conf import settings

    from audit.verify import verify_chain, verify_workers

    print("\n2. Verify throughput")
    checked, seconds = naive_verify(workspace, naive_rows)
    print(f"  naive (models + dict + json.dumps), first {checked:,}: {rate(checked, seconds)}")
    parallel = max(verify_workers(), 2)
    rates = {}
    for workers in (1, parallel):
        settings.WARDEN_AUDIT_VERIFY_WORKERS = workers
        best, cpu = None, None
        for _ in range(3):
            cpu_started = time.process_time()
            result = verify_chain(workspace)
            cpu_seconds = time.process_time() - cpu_started
            assert result.ok, result
            if best is None or result.seconds < best.seconds:
                best, cpu = result, cpu_seconds
        rates[workers] = best.entries_checked / best.seconds
        label = "serial walk        " if workers == 1 else f"{workers} processes (default)"
        print(f"  verify_chain, {label}: {rate(best.entries_checked, best.seconds)}  best of 3")
        print(f"      Python CPU {cpu / best.entries_checked * 1e6:.2f} us/entry in this process")
    settings.WARDEN_AUDIT_VERIFY_WORKERS = 0
    print(f"  parallel over serial: {rates[parallel] / rates[1]:.2f}x on {os.cpu_count()} CPUs")
    speedup = rates[parallel] / (checked / seconds)
    print(f"  speed-up over naive: {speedup:.1f}x   (target >= 200,000 entries/s)")


def bench_export(workspace) -> None:
    """Streaming export of the whole chain: lines/s and how much the process grew."""
    import resource

    from audit.export import iter_export_lines

    print("\n2b. Export (iter_export_lines, the audit_export command's generator)")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    lines = size = 0
    for line in iter_export_lines(workspace):
        lines += 1
        size += len(line)
    seconds = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"  {rate(lines, seconds)}, {size / 2**20:,.0f} MiB of JSONL")
    print(f"  peak RSS grew by {grown:,.1f} MiB while streaming it (constant memory)")


# --- 3. the filter ---------------------------------------------------------------------


def _timed(queryset, runs: int = 15) -> tuple[float, int]:
    list(queryset.all())  # warm the buffer cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        count = len(list(queryset.all()))  # a fresh clone: no result cache
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, count


def _plan_summary(queryset) -> str:
    plan = queryset.explain(analyze=True)
    lines = [line.strip() for line in plan.splitlines()]
    scans = [line for line in lines if "Scan" in line]
    timing = [line for line in lines if line.startswith("Execution Time")]
    return "\n      ".join((scans[:2] or lines[:2]) + timing)


def bench_filter(workspace) -> None:
    from django.db import connection, transaction

    from audit.models import AuditEntry
    from audit.selectors import audit_entries

    total = AuditEntry.objects.count()
    print(f"\n3. Actor-prefix filter, first API page (51 rows), over {total:,} rows")
    for prefix in ("user:", "system:"):
        page = audit_entries(workspace=workspace, filters={"actor_prefix": prefix})[:51]
        ms, count = _timed(page)
        print(f"  actor_prefix={prefix:<8} (indexed actor_type): {ms:7.2f} ms median, {count} rows")
        print(f"      {_plan_summary(page)}")
    like = AuditEntry.objects.filter(workspace=workspace, actor__startswith="system:").order_by(
        "-seq"
    )[:51]
    ms, _ = _timed(like, runs=5)
    print(f"  baseline: actor LIKE 'system:%' (no actor_type): {ms:7.2f} ms median")
    print(f"      {_plan_summary(like)}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")
        page = audit_entries(workspace=workspace, filters={"actor_prefix": "system:"})[:51]
        ms, _ = _timed(page, runs=3)
        print(f"  baseline: same filter, index scans disabled : {ms:7.2f} ms median")
        print(f"      {_plan_summary(page)}")
    last = AuditEntry.objects.filter(workspace=workspace).order_by("-seq").first()
    since = last.created_at - timedelta(days=1)
    ranged = audit_entries(
        workspace=workspace, filters={"actor_prefix": "user:", "since": since.isoformat()}
    )[:51]
    ms, count = _timed(ranged)
    print(f"  actor_prefix=user: + since (time range)       : {ms:7.2f} ms median, {count} rows")
    print("  (target < 50 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workspaces", type=int, default=16)
    parser.add_argument("--naive-rows", type=int, default=100_000)
    parser.add_argument("--fresh", action="store_true", help="reload the big chain")
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_AUDIT_DATABASE_URL", DEFAULT_DB)
    ensure_database(database_url)
    setup_django(database_url)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(",")[0]
    print(f"Audit benchmark on {version}, {os.cpu_count()} CPUs, database {database_url}")
    bench_appends(args.appends, args.threads, args.workspaces)
    big = load_big_chain(args.rows, args.fresh)
    bench_verify(big, min(args.naive_rows, args.rows))
    bench_export(big)
    bench_filter(big)


if __name__ == "__main__":
    main()
