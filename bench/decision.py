"""Decision-path benchmark: POST /api/v1/actions (allow path) against a bare
authenticated DRF endpoint (GET /api/v1/whoami: key auth, workspace resolution,
rate limit, a tiny JSON body; no gate, no writes), same client, same run.

    .venv/bin/python bench/decision.py [--requests 1500] [--threads 4] [--seconds 60]

Needs a local PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench; the database is created and
migrated if missing). Starts gunicorn (2 workers, gthread by default) on 127.0.0.1 only, seeds a
fresh workspace, key and read tool through the services, alternates rounds of both
endpoints, prints requests/s, p50, p99 and server CPU per request (gunicorn's processes
plus the bench database's PostgreSQL backends, from /proc) for each, both ratios marked
met or not (decision p50 over whoami p50, target <= 1.5x; decisions/s over whoami
req/s, target >= 75%), the SQL statements per decision (counted in-process with
CaptureQueriesContext, target <= 3) and the CPU ratio. Every decision commits durably
(synchronous_commit on) before it answers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchdb import ensure_database
from load import drive, free_port, percentile

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench"
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def bench_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=env.get("SECRET_KEY") or "bench-only-" + "k" * 50,
        # base64 of a bench-only 32-byte Ed25519 seed (audit checkpoints and entry MACs)
        WARDEN_AUDIT_SIGNING_KEY=env.get("WARDEN_AUDIT_SIGNING_KEY")
        or "YmVuY2gtb25seS1hdWRpdC1zaWduaW5nLWtleS0zMmI=",
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        LOG_LEVEL="WARNING",
        CONN_MAX_AGE="600",
    )
    env.pop("REDIS_URL", None)  # local-memory throttle cache per worker
    return env


def seed(env: dict[str, str]) -> tuple[str, int]:
    """Workspace, key and read tool through the services; SQL statements per decision."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from approvals.catalog import tool_create
    from approvals.guard import operator_seeding
    from common.actor import Actor
    from keys.services import key_create
    from tenants.services import user_get_or_create, workspace_create

    actor = Actor.system("bench")
    suffix = uuid.uuid4().hex[:8]
    owner = user_get_or_create(email=f"bench-{suffix}@bench.local")
    workspace = workspace_create(slug=f"bench-{suffix}", name="Bench", owner=owner, actor=actor)
    with operator_seeding():  # set-up, as an operator at a shell
        tool_create(workspace=workspace, actor=actor, name="crm.lookup", level="read")
        issued = key_create(
            workspace=workspace,
            name="bench-agent",
            owner=owner,
            scopes=["actions:read"],
            tool_allowlist=["crm.*"],
            rate_limit_per_minute=100_000,
            actor=actor,
        )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    body = json.dumps({"tool": "crm.lookup", "params": {"id": 1}})
    client.post("/api/v1/actions", body, content_type="application/json")  # warm
    with CaptureQueriesContext(connection) as ctx:
        response = client.post("/api/v1/actions", body, content_type="application/json")
    assert response.status_code == 200, response.content
    statements = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].split()[0].upper() not in TRANSACTION_CONTROL
    ]
    connection.close()
    return issued.plaintext, len(statements)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (Linux /proc), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(server_pid: int, database_url: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far of gunicorn (master and workers: the application, its sealer
    thread included) and of PostgreSQL's backends serving the bench database."""
    import psycopg

    workers = [server_pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == server_pid:
                        workers.append(int(entry))
            except OSError:
                continue
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        own = conn.info.backend_pid
        backends = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                (name, own),
            )
        ]
    return {
        "python": {pid: _cpu_seconds(pid) for pid in workers},
        "postgres": {pid: _cpu_seconds(pid) for pid in backends},
    }


def cpu_spent(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per side between two `server_cpu` samples (processes started in
    between count from zero; backends that closed in between are missed)."""
    return {
        side: sum(seconds - before[side].get(pid, 0.0) for pid, seconds in after[side].items())
        for side in after
    }


def start_gunicorn(env: dict[str, str], port: int, worker_class: str) -> subprocess.Popen:
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    command = [
        str(gunicorn) if gunicorn.exists() else "gunicorn",
        "config.wsgi",
        "--workers=2",
        f"--worker-class={worker_class}",
        "--threads=2",
        "--keep-alive=30",
        f"--bind=127.0.0.1:{port}",
        "--log-level=warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("gunicorn did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="per endpoint")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--seconds", type=float, default=60, help="cap per round")
    parser.add_argument(
        "--worker-class",
        default="gthread",
        choices=["gthread", "sync"],
        help="gthread keeps connections alive; sync reconnects per request",
    )
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    if not database_url.startswith("postgres"):
        print("bench/decision.py needs PostgreSQL (BENCH_DATABASE_URL)", file=sys.stderr)
        return 2
    env = bench_env(database_url)
    ensure_database(database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    key, queries = seed(env)
    port = free_port()
    server = start_gunicorn(env, port, args.worker_class)
    try:
        per_round = max(args.threads, args.requests // args.rounds)
        for endpoint in ("bare", "decision"):  # warm both workers and their connections
            drive([port], [key], endpoint, args.threads * 20, args.threads, args.seconds)
        results = {"bare": ([], 0.0, 0), "decision": ([], 0.0, 0)}
        cpu = {
            "bare": {"python": 0.0, "postgres": 0.0},
            "decision": {"python": 0.0, "postgres": 0.0},
        }
        for _ in range(args.rounds):
            for endpoint in ("bare", "decision"):
                before = server_cpu(server.pid, database_url)
                lat, elapsed, errors = drive(
                    [port], [key], endpoint, per_round, args.threads, args.seconds
                )
                if endpoint == "decision":
                    time.sleep(0.3)  # the sealer's last batch of the round
                spent = cpu_spent(before, server_cpu(server.pid, database_url))
                for side, seconds in spent.items():
                    cpu[endpoint][side] += seconds
                old = results[endpoint]
                results[endpoint] = (old[0] + lat, old[1] + elapsed, old[2] + errors)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(
        f"gunicorn 2 {args.worker_class} workers, {args.threads} client threads, "
        f"{args.rounds} alternating rounds, PostgreSQL"
    )
    print(
        f"{'endpoint':<34}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'CPU ms/req (app + pg)':>24}"
    )
    summary = {}
    for endpoint, label in (
        ("bare", "GET /api/v1/whoami (bare)"),
        ("decision", "POST /api/v1/actions (allow)"),
    ):
        lat, elapsed, errors = results[endpoint]
        rps = len(lat) / elapsed if elapsed else 0.0
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        app, pg = (cpu[endpoint][side] * 1000 / max(1, len(lat)) for side in ("python", "postgres"))
        summary[endpoint] = (rps, p50, p99, app + pg)
        print(
            f"{label:<34}{len(lat):>9}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}{errors:>8}"
            f"{f'{app + pg:.2f} ({app:.2f} + {pg:.2f})':>24}"
        )
    bare, decision = summary["bare"], summary["decision"]
    p50_ratio, throughput_share = decision[1] / bare[1], decision[0] / bare[0]

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    print(
        f"decision p50 / whoami p50:   {p50_ratio:.2f}x  (target <= 1.5x: "
        f"{verdict(p50_ratio <= 1.5)}); p99 {decision[2] / bare[2]:.2f}x"
    )
    print(
        f"decisions/s / whoami req/s:  {throughput_share:.0%}  (target >= 75%: "
        f"{verdict(throughput_share >= 0.75)})"
    )
    print(
        f"SQL statements per decision: {queries}  (target <= 3: {verdict(queries <= 3)}; "
        "BEGIN/COMMIT not counted)"
    )
    if bare[3]:
        print(
            f"server CPU per decision / per whoami: {decision[3] / bare[3]:.2f}x (on a machine "
            "whose CPUs are saturated, decisions/s over whoami req/s tends to its inverse)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
