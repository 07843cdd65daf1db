"""Impact replay benchmark: 100,000 recorded requests replayed under a proposed policy
(approvals.policy_impact.simulate), target <= 10 s.

    .venv/bin/python bench/policy_replay.py [--requests 100000] [--keys 20]

Needs a local PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench_replay; created and migrated if
missing). Seeds a fresh workspace with keys and four tools (one conditional on
params.amount, one with a deny rule, two plain) through the services, then the recorded
requests with bulk_create (their decisions as the gate made them), and times three
replays: today's policy, a loosened condition, and a whole tool's confirmation raised.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from benchdb import ensure_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench_replay"


def setup(database_url: str) -> None:
    ensure_database(database_url)
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-" + "k" * 50,
        WARDEN_AUDIT_SIGNING_KEY=os.environ.get("WARDEN_AUDIT_SIGNING_KEY")
        or "YmVuY2gtb25seS1hdWRpdC1zaWduaW5nLWtleS0zMmI=",
        DEBUG="0",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(requests: int, keys: int):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from approvals import gate
    from approvals.catalog import tool_create
    from approvals.guard import operator_seeding
    from approvals.models import ActionRequest
    from common.actor import Actor
    from keys.services import key_create
    from tenants.models import Workspace
    from tenants.services import workspace_create

    actor = Actor.system("bench")
    owner = get_user_model().objects.create_user(
        username=f"bench-{uuid.uuid4().hex[:8]}", email=f"{uuid.uuid4().hex[:8]}@bench.test"
    )
    slug = f"replay-{uuid.uuid4().hex[:8]}"
    workspace = workspace_create(
        reason="benchmark set-up", slug=slug, name=slug, owner=owner, actor=actor
    )
    with operator_seeding():
        Workspace.objects.filter(pk=workspace.pk).update(writes_enabled=True, mode="live")
        workspace.refresh_from_db()
        tools = [
            tool_create(
                reason="benchmark set-up",
                workspace=workspace,
                actor=actor,
                name="billing.refund",
                level="write",
                confirmation="conditional",
                condition="params.amount > 100",
                summary_template="Refund {params.amount}",
            ),
            tool_create(
                reason="benchmark set-up",
                workspace=workspace,
                actor=actor,
                name="crm.update",
                level="write",
                deny_condition="params.stage == 'deleted'",
                deny_reason="no deletes",
            ),
            tool_create(
                reason="benchmark set-up", workspace=workspace, actor=actor, name="crm.lookup"
            ),
            tool_create(
                reason="benchmark set-up",
                workspace=workspace,
                actor=actor,
                name="email.send",
                level="external",
            ),
        ]
        made = [
            key_create(
                reason="benchmark set-up",
                workspace=workspace,
                name=f"agent-{i}",
                owner=owner,
                scopes=["actions:read", "actions:write", "actions:external"],
                tool_allowlist=["*"],
                actor=actor,
            ).key
            for i in range(keys)
        ]
    workspace.refresh_from_db()
    rng = random.Random(7)
    now = timezone.now()
    batch = []
    started = time.perf_counter()
    for i in range(requests):
        tool = tools[i % len(tools)]
        key = made[i % len(made)]
        if tool.name == "billing.refund":
            params = {"amount": rng.randint(1, 400), "order": f"o-{i}"}
        elif tool.name == "crm.update":
            params = {"deal": i, "stage": rng.choice(["won", "lost", "deleted"])}
        else:
            params = {"query": f"q{i}"}
        decision = gate.decide(key, workspace, tool, params, workspace.policy_version)
        batch.append(
            ActionRequest(
                id=uuid.uuid4(),
                workspace=workspace,
                key=key,
                requested_by=f"key:{key.pk}",
                tool=tool,
                tool_name=tool.name,
                params=params,
                params_digest=hashlib.sha256(str(i).encode()).hexdigest(),
                decision=decision.outcome,
                denial_code=decision.code,
                status="denied" if decision.denied else "allowed",
                policy_version=workspace.policy_version,
                created_at=now - timedelta(seconds=i * 20),
            )
        )
        if len(batch) == 5000:
            ActionRequest.objects.bulk_create(batch)
            batch = []
    if batch:
        ActionRequest.objects.bulk_create(batch)
    print(f"seeded {requests} requests in {time.perf_counter() - started:.1f} s")
    # What autovacuum does to a real history: without it the first read of freshly
    # inserted rows also writes their hint bits (measured: about 2x slower, once).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {ActionRequest._meta.db_table}")
    return workspace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--reuse", metavar="SLUG", help="replay a workspace seeded earlier")
    args = parser.parse_args()
    setup(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    if args.reuse:
        from tenants.models import Workspace

        workspace = Workspace.objects.get(slug=args.reuse)
    else:
        workspace = seed(args.requests, args.keys)
        print(f"workspace {workspace.slug} (replay it again with --reuse {workspace.slug})")

    from approvals.models import Tool
    from approvals.policy_impact import simulate

    snapshots = [t.snapshot() for t in Tool.objects.filter(workspace=workspace)]

    def changed(name, **fields):
        return [{**s, **fields} if s["name"] == name else s for s in snapshots]

    cases = [
        ("today's policy", None),
        ("refund condition > 200", changed("billing.refund", condition="params.amount > 200")),
        ("lookup always confirmed", changed("crm.lookup", confirmation="always")),
    ]
    worst = 0.0
    for label, proposed in cases:
        started = time.perf_counter()
        report = simulate(workspace, proposed, days=30)
        took = time.perf_counter() - started
        worst = max(worst, took)
        print(f"{label:<26} {report.scanned:>7} requests  {took:6.2f} s  {report.headline}")
    verdict = "met" if worst <= 10 else "NOT met"
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"slowest replay {worst:.2f} s for {report.scanned} requests (target <= 10 s: {verdict})")


if __name__ == "__main__":
    main()
