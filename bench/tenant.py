"""One tenant as fast as many: allowed decisions/s with 8 concurrent clients, 8 keys
in ONE workspace against the same load spread over 8 workspaces (one key each).

    .venv/bin/python bench/tenant.py [--clients 8] [--seconds 8] [--rounds 3]

Needs a local PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench; created and migrated if missing).
Each client is a thread with its own database connection calling the decision service
(`action_submit`, what POST /api/v1/actions runs after authentication) in a loop, so the
figure isolates the chain: in one workspace every decision appends to the same chain.
Rounds alternate one/many, with group commit on and (as the baseline, same run) off
(WARDEN_AUDIT_GROUP_COMMIT=0: every append waits on the head lock held through the
holder's commit). Afterwards every chain written verifies and no entry is left queued.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

from benchdb import ensure_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench"


def setup(database_url: str) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from decision import bench_env

    os.environ.update(bench_env(database_url))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(clients: int):
    """(keys in one workspace, keys in `clients` workspaces, the workspaces)."""
    from approvals.catalog import tool_create
    from approvals.guard import operator_seeding
    from common.actor import Actor
    from keys.services import key_create
    from tenants.services import user_get_or_create, workspace_create

    actor = Actor.system("bench")
    suffix = uuid.uuid4().hex[:8]
    owner = user_get_or_create(email=f"bench-{suffix}@bench.local")

    def workspace(n):
        ws = workspace_create(
            reason="benchmark set-up",
            slug=f"tenant-{suffix}-{n}",
            name="Bench",
            owner=owner,
            actor=actor,
        )
        with operator_seeding():
            tool_create(
                reason="benchmark set-up",
                workspace=ws,
                actor=actor,
                name="crm.lookup",
                level="read",
            )
        return ws

    def key(ws, n):
        with operator_seeding():
            issued = key_create(reason="benchmark set-up",
                workspace=ws, name=f"agent-{n}", owner=owner, scopes=["actions:read"],
                tool_allowlist=["crm.*"], rate_limit_per_minute=100_000, actor=actor,
            )  # fmt: skip
        from keys.models import MachineKey

        return MachineKey.objects.select_related("workspace", "owner").get(pk=issued.key.pk)

    one = workspace("one")
    many = [workspace(n) for n in range(clients)]
    return [key(one, n) for n in range(clients)], [key(ws, 0) for ws in many], [one, *many]


def run(keys, seconds: float) -> tuple[int, float]:
    from django.db import connection

    from approvals.asking import action_submit
    from common.actor import Actor

    counts = [0] * len(keys)
    errors: list[BaseException] = []
    start = threading.Barrier(len(keys) + 1)
    stop = [0.0]

    def client(n: int) -> None:
        key = keys[n]
        actor = Actor.for_key(key, request_id=f"bench{n}", client_ip="10.0.0.1")
        try:
            start.wait()
            i = 0
            while time.perf_counter() < stop[0]:
                answer = action_submit(
                    key=key, tool_name="crm.lookup", params={"id": i}, actor=actor
                )
                assert answer.allowed, answer
                i += 1
            counts[n] = i
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=client, args=(n,)) for n in range(len(keys))]
    for thread in pool:
        thread.start()
    stop[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return sum(counts), time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    ensure_database(database_url)
    setup(database_url)
    from django.conf import settings
    from django.db import connection

    from audit.models import AuditPending
    from audit.services import seal_wait_idle
    from audit.verify import verify_chain

    one, many, workspaces = seed(args.clients)
    connection.close()
    totals = {(mode, gc): [0, 0.0] for mode in ("one", "many") for gc in (True, False)}
    run(one[:2], 1)  # warm
    for _ in range(args.rounds):
        for group_commit in (True, False):
            settings.WARDEN_AUDIT_GROUP_COMMIT = group_commit
            for mode, keys in (("one", one), ("many", many)):
                count, elapsed = run(keys, args.seconds)
                seal_wait_idle()  # the round's queued entries are chained before the next
                totals[(mode, group_commit)][0] += count
                totals[(mode, group_commit)][1] += elapsed
    settings.WARDEN_AUDIT_GROUP_COMMIT = True
    seal_wait_idle()
    print(
        f"{args.clients} concurrent clients (threads, own connections), decision service, "
        f"{args.rounds} alternating rounds of {args.seconds:.0f} s, PostgreSQL"
    )
    rate = {k: v[0] / v[1] for k, v in totals.items()}
    for group_commit, label in ((True, "group commit (default)"), (False, "head lock only")):
        one_rate, many_rate = rate[("one", group_commit)], rate[("many", group_commit)]
        print(
            f"  {label:<24} 1 workspace: {one_rate:7.0f} decisions/s   "
            f"{args.clients} workspaces: {many_rate:7.0f} decisions/s   "
            f"one/many {one_rate / many_rate:6.1%}"
        )
    print("  (target: one workspace >= 90% of many, group commit on)")
    left = AuditPending.objects.filter(workspace__in=workspaces).count()
    results = [verify_chain(ws) for ws in workspaces]
    checked = sum(r.entries_checked for r in results)
    assert all(r.ok for r in results), [r.summary() for r in results if not r.ok]
    print(f"  every chain verifies ({checked:,} entries), {left} entries left queued")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
