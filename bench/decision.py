"""Decision-path benchmark: POST /api/v1/actions (allow path) against the durable-write
floor (POST /bench/floor: the same key authentication, permission and rate limit, then
one ~1 KB row inserted and committed with synchronous_commit on, nothing else; a
bench-only URL configuration, bench/floor_urls.py, never in config.urls) and the bare
authenticated call (GET /api/v1/whoami: no writes), same clients, same run.

    .venv/bin/python bench/decision.py [--requests 1500] [--clients 8] [--seconds 60]

Needs a local PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench; the database is created and migrated if
missing). Starts gunicorn as docs "Running in production" documents it (config.asgi, 2
workers x 8 threads; --worker-class gthread to compare) on 127.0.0.1 only, seeds through
the services 8 keys in ONE workspace and 8 workspaces with one key each (a read tool
each), and for both layouts alternates rounds of the three endpoints with `--clients`
keep-alive clients (client i uses key i). Prints requests/s, p50, p99 and server CPU per
request (gunicorn's processes plus the bench database's PostgreSQL backends, from /proc)
for each, the ratios of issue 25 marked met or not (decision p50 over floor p50, target
<= 1.3x; decisions/s over floor req/s, target >= 80%), the whoami ratios for reference,
the SQL statements per decision (in process, CaptureQueriesContext) and the load
average. Every decision commits durably (synchronous_commit on) before it answers.
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


def seed(env: dict[str, str], clients: int) -> tuple[list[str], list[str], int]:
    """Keys through the services: `clients` keys in one workspace, and one key in each of
    `clients` workspaces (each workspace with the read tool); SQL statements per decision."""
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

    def workspace(n: int):
        ws = workspace_create(
            reason="benchmark set-up",
            slug=f"bench-{suffix}-{n}",
            name="Bench",
            owner=owner,
            actor=actor,
        )
        with operator_seeding():  # set-up, as an operator at a shell
            tool_create(
                reason="benchmark set-up",
                workspace=ws,
                actor=actor,
                name="crm.lookup",
                level="read",
            )
        return ws

    def key(ws, n: int) -> str:
        with operator_seeding():
            return key_create(
                reason="benchmark set-up",
                workspace=ws,
                name=f"bench-agent-{n}",
                owner=owner,
                scopes=["actions:read"],
                tool_allowlist=["crm.*"],
                rate_limit_per_minute=100_000,
                actor=actor,
            ).plaintext

    shared = workspace(0)
    one = [key(shared, n) for n in range(clients)]
    many = [key(workspace(n + 1), 0) for n in range(clients)]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {one[0]}")
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
    from floor_urls import FLOOR_TABLE_SQL

    with connection.cursor() as cursor:
        for statement in FLOOR_TABLE_SQL:
            cursor.execute(statement)
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on", "the floor must commit durably"
    connection.close()
    return one, many, len(statements)


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


def start_gunicorn(
    env: dict[str, str], port: int, worker_class: str = "asgi", threads: int = 8
) -> subprocess.Popen:
    """gunicorn as docs "Running in production" runs it (`asgi`: config.asgi on
    config.asgi_worker.Worker, WARDEN_SERVER_THREADS threads per process), 2 workers
    (this machine's cores), with the bench-only settings that add the floor endpoint;
    `gthread` / `sync`: config.wsgi on gunicorn's own workers, to compare."""
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    if not gunicorn.exists():
        gunicorn = Path(sys.executable).parent / "gunicorn"
    env = dict(env, DJANGO_SETTINGS_MODULE="floor_settings", WARDEN_SERVER_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(ROOT / "bench"), env.get("PYTHONPATH", "")) if p
    )
    if worker_class == "asgi":
        served = ["config.asgi", "--worker-class=config.asgi_worker.Worker"]
    else:
        served = ["config.wsgi", f"--worker-class={worker_class}", f"--threads={threads}"]
    command = [
        str(gunicorn),
        *served,
        "--workers=2",
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


ENDPOINTS = (
    ("bare", "GET /api/v1/whoami (bare)"),
    ("floor", "POST /bench/floor (durable write)"),
    ("decision", "POST /api/v1/actions (allow)"),
)
LAYOUTS = (("one", "one workspace"), ("many", "one workspace per client"))


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="per endpoint and layout")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--server-threads", type=int, default=8, help="gunicorn --threads")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--seconds", type=float, default=60, help="cap per round")
    parser.add_argument(
        "--worker-class",
        default="asgi",
        choices=["asgi", "gthread", "sync"],
        help="asgi: the production server (config.asgi); gthread / sync: config.wsgi",
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
    sys.path.insert(0, str(ROOT / "bench"))
    one, many, queries = seed(env, args.clients)
    keys = {"one": one, "many": many}
    port = free_port()
    load_before = os.getloadavg()
    server = start_gunicorn(env, port, args.worker_class, args.server_threads)
    results = {(lay, ep): ([], 0.0, 0) for lay, _ in LAYOUTS for ep, _ in ENDPOINTS}
    cpu = {(lay, ep): {"python": 0.0, "postgres": 0.0} for lay, _ in LAYOUTS for ep, _ in ENDPOINTS}
    try:
        per_round = max(args.clients, args.requests // args.rounds)
        for layout, _ in LAYOUTS:  # warm both workers and their connections
            for endpoint, _ in ENDPOINTS:
                drive([port], keys[layout], endpoint, args.clients * 20, args.clients, 30)
        for _ in range(args.rounds):
            for layout, _ in LAYOUTS:
                for endpoint, _ in ENDPOINTS:
                    before = server_cpu(server.pid, database_url)
                    lat, elapsed, errors = drive(
                        [port], keys[layout], endpoint, per_round, args.clients, args.seconds
                    )
                    if endpoint == "decision":
                        time.sleep(0.3)  # the sealer's last batch of the round
                    spent = cpu_spent(before, server_cpu(server.pid, database_url))
                    for side, seconds in spent.items():
                        cpu[layout, endpoint][side] += seconds
                    old = results[layout, endpoint]
                    results[layout, endpoint] = (old[0] + lat, old[1] + elapsed, old[2] + errors)
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_after = os.getloadavg()
    failed = {pair: r[2] for pair, r in results.items() if r[2]}

    print(
        f"gunicorn 2 {args.worker_class} workers x {args.server_threads} threads, "
        f"{args.clients} keep-alive clients, {args.rounds} alternating rounds, PostgreSQL; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    for layout, layout_label in LAYOUTS:
        print(f"\n{args.clients} clients, {layout_label}")
        print(
            f"{'endpoint':<36}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'errors':>8}{'CPU ms/req (app + pg)':>24}"
        )
        summary = {}
        for endpoint, label in ENDPOINTS:
            lat, elapsed, errors = results[layout, endpoint]
            rps = len(lat) / elapsed if elapsed else 0.0
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            app, pg = (
                cpu[layout, endpoint][side] * 1000 / max(1, len(lat))
                for side in ("python", "postgres")
            )
            summary[endpoint] = (rps, p50, p99, app + pg)
            print(
                f"{label:<36}{len(lat):>9}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}{errors:>8}"
                f"{f'{app + pg:.2f} ({app:.2f} + {pg:.2f})':>24}"
            )
        floor, decision, bare = summary["floor"], summary["decision"], summary["bare"]
        p50_ratio, share = decision[1] / floor[1], decision[0] / floor[0]
        print(
            f"decision p50 / floor p50:    {p50_ratio:.2f}x  (target <= 1.3x: "
            f"{verdict(p50_ratio <= 1.3)}); p99 {decision[2] / floor[2]:.2f}x"
        )
        print(f"decisions/s / floor req/s:   {share:.0%}  (target >= 80%: {verdict(share >= 0.8)})")
        print(
            f"for reference: decision p50 / whoami p50 {decision[1] / bare[1]:.2f}x, "
            f"decisions/s / whoami req/s {decision[0] / bare[0]:.0%}, "
            f"CPU per decision / per floor {decision[3] / max(floor[3], 1e-9):.2f}x"
        )
    print(f"\nSQL statements per decision: {queries} (BEGIN/COMMIT not counted)")
    if failed:
        print(f"non-200 answers (the figures above are not valid): {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
