"""Policy plan benchmark: `plan` (and `parse_document`) on a 1,000-tool policy.

    .venv/bin/python bench/policy_plan.py [--tools 1000] [--changed 100] [--rounds 5]

Needs a local PostgreSQL (BENCH_POLICY_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench_policy; created and migrated if missing).
Seeds one workspace with --tools tools (bulk insert, once), then times, over --rounds
rounds, parsing the exported document (YAML text, schema validation) and planning it with
--changed tools changed (half loosened, half narrowed) and one tool added and one removed.
Prints the median and worst of each; the target is plan < 1 s (issue 24)."""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

from benchdb import ensure_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench_policy"
SLUG = "bench-policy"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_POLICY_DATABASE_URL", DEFAULT_DB)
    ensure_database(database_url)
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-" + "k" * 50,
        WARDEN_AUDIT_SIGNING_KEY=os.environ.get("WARDEN_AUDIT_SIGNING_KEY")
        or "YmVuY2gtb25seS1hdWRpdC1zaWduaW5nLWtleS0zMmI=",
        DEBUG="0",
        REDIS_URL="",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from approvals.models import Tool
    from approvals.policy.document import dump, export_document, parse_document
    from approvals.policy.planning import plan
    from common.actor import Actor
    from tenants.models import Workspace
    from tenants.services import workspace_create

    workspace = Workspace.objects.filter(slug=SLUG).first()
    if workspace is None:
        owner, _ = get_user_model().objects.get_or_create(email="bench-policy@example.test")
        workspace = workspace_create(
            slug=SLUG,
            name="Bench policy",
            owner=owner,
            actor=Actor.system("bench"),
            reason="benchmark set-up",
        )
    have = Tool.objects.filter(workspace=workspace).count()
    if have != args.tools:
        Tool.objects.filter(workspace=workspace).delete()
        Tool.objects.bulk_create(
            Tool(
                workspace=workspace,
                name=f"svc{i // 50}.op{i:05d}",
                description=f"Operation {i}",
                level=("read", "write", "external")[i % 3],
                confirmation=("never", "always", "conditional")[i % 3],
                condition="params.amount > 1000" if i % 3 == 2 else "",
                data_classes=["pii"] if i % 7 == 0 else [],
                summary_template="Do {params.thing}",
                input_schema={"type": "object", "properties": {"amount": {"type": "number"}}},
            )
            for i in range(args.tools)
        )

    document = export_document(workspace)
    text = dump(document)
    proposed = copy.deepcopy(document)
    for n, entry in enumerate(proposed["tools"][: args.changed]):
        if n % 2:
            entry["confirmation"] = "always"  # narrows
        else:
            entry["level"] = "read"  # loosens (or nothing, for a read tool)
            entry["description"] += " (changed)"
    proposed["tools"].pop()
    proposed["tools"].append({"name": "bench.added", "level": "read"})
    proposed_text = dump(proposed)

    parse_times, plan_times, diff_times = [], [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        parsed = parse_document(proposed_text)
        parse_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        plan(workspace, parsed, impact=False)
        diff_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = plan(workspace, parsed)
        plan_times.append(time.perf_counter() - start)
    governed = len(result.governed)
    print(f"policy of {args.tools} tools: {len(text) / 1024:.0f} KiB of YAML")
    print(
        f"parse_document: median {statistics.median(parse_times) * 1000:.0f} ms, "
        f"worst {max(parse_times) * 1000:.0f} ms"
    )
    print(
        f"plan without the impact replay: median {statistics.median(diff_times) * 1000:.0f} "
        f"ms, worst {max(diff_times) * 1000:.0f} ms"
    )
    verdict = "met" if max(plan_times) < 1 else "NOT met"
    print(
        f"plan with impact ({len(result.changes)} objects change, {governed} governed): median "
        f"{statistics.median(plan_times) * 1000:.0f} ms, worst {max(plan_times) * 1000:.0f} ms "
        f"(target < 1 s: {verdict})"
    )


if __name__ == "__main__":
    main()
