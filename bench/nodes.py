"""Scaling out the web tier: allowed decisions (POST /api/v1/actions) and the bare
authenticated call (GET /api/v1/whoami) against 1..N gunicorn nodes sharing one
PostgreSQL and one Redis (rate limits shared, as in production), the client threads
spread round-robin over the nodes, one node and all nodes in alternating rounds of the
same run. It also reports the CPU time each request costs in gunicorn and in the
PostgreSQL backends (Linux /proc, same host), which holds when the machine is busy and
is what sizing needs: requests/s per core of web processes.

    .venv/bin/python bench/nodes.py --nodes 1 --workers 1 [--threads 8] [--requests 2000]

Needs a local PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench_nodes; created and migrated if missing)
and REDIS_URL (the rate-limit counters and a queue, both unique to the run, removed after).
Each client thread spreads its requests over 8 keys of one workspace so that the
figures measure the web tier and the database, not one key's rate limit.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from benchdb import ensure_database
from decision import bench_env
from load import drive, free_port, percentile

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench_nodes"
KEYS = 8


def node_env(database_url: str, redis_url: str, run: str) -> dict[str, str]:
    """The benchmark environment of bench/decision.py, plus the Redis the nodes share
    and a cache prefix and Celery queue of this run's own."""
    env = bench_env(database_url)
    env.update(
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=f"bench-nodes-{run}",
        CELERY_TASK_DEFAULT_QUEUE=f"bench-nodes-{run}",
    )
    return env


def seed(env: dict[str, str]) -> list[str]:
    """A workspace, a read tool and KEYS keys through the services."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from approvals.catalog import tool_create
    from approvals.guard import operator_seeding
    from common.actor import Actor
    from keys.services import key_create
    from tenants.services import user_get_or_create, workspace_create

    actor = Actor.system("bench")
    suffix = uuid.uuid4().hex[:8]
    with operator_seeding():
        owner = user_get_or_create(email=f"bench-{suffix}@bench.local")
        workspace = workspace_create(
            reason="benchmark set-up",
            slug=f"nodes-{suffix}",
            name="Nodes",
            owner=owner,
            actor=actor,
        )
        tool_create(
            reason="benchmark set-up",
            workspace=workspace,
            actor=actor,
            name="crm.lookup",
            level="read",
        )
        keys = [
            key_create(
                reason="benchmark set-up",
                workspace=workspace,
                name=f"bench-agent-{n}",
                owner=owner,
                scopes=["actions:read"],
                tool_allowlist=["crm.*"],
                rate_limit_per_minute=100_000,
                actor=actor,
            ).plaintext
            for n in range(KEYS)
        ]
    connection.close()
    return keys


def start_nodes(
    env: dict[str, str], nodes: int, workers: int
) -> list[tuple[int, subprocess.Popen]]:
    started = []
    for _ in range(nodes):
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            f"--workers={workers}",
            "--worker-class=gthread",
            "--threads=4",
            "--keep-alive=30",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
        ]
        started.append((port, subprocess.Popen(command, cwd=ROOT, env=env)))
    deadline = time.monotonic() + 60
    for port, _ in started:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
    return started


TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def web_cpu(servers) -> float:
    """CPU seconds of every gunicorn master and worker so far."""
    return sum(_cpu(p) for _, proc in servers for p in (proc.pid, *_children(proc.pid)))


def database_cpu(database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving `database` (same host only)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            total += _cpu(int(entry.name))
    return total


def drop_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    # the cache keys, and the run's queue (checkpoint deliveries land there) and bindings
    for name in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(name)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2, help="compared with one node")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per node")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--requests", type=int, default=1000, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url:
        print("bench/nodes.py needs PostgreSQL (BENCH_DATABASE_URL) and REDIS_URL", file=sys.stderr)
        return 2
    run = uuid.uuid4().hex[:8]
    env = node_env(database_url, redis_url, run)
    ensure_database(database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    keys = seed(env)
    servers = start_nodes(env, args.nodes, args.workers)
    ports = [port for port, _ in servers]
    # One node, then all of them, alternately, so both see the same background load.
    configs = {1: ports[:1], args.nodes: ports}
    results: dict[tuple[int, str], tuple[list[float], float, int]] = {}
    database = urlsplit(database_url).path.lstrip("/")
    cpu = {"bare": (0.0, 0.0), "decision": (0.0, 0.0)}  # (web, database) CPU seconds
    counted = {"bare": 0, "decision": 0}
    loads = []
    try:
        for endpoint in ("bare", "decision"):  # warm every process and its connections
            drive(ports, keys, endpoint, args.threads * 20, args.threads)
        for _ in range(args.rounds):
            for nodes, config_ports in configs.items():
                for endpoint in ("bare", "decision"):
                    before = web_cpu(servers), database_cpu(database)
                    lat, elapsed, errors = drive(
                        config_ports, keys, endpoint, args.requests, args.threads
                    )
                    used = web_cpu(servers) - before[0], database_cpu(database) - before[1]
                    cpu[endpoint] = tuple(c + u for c, u in zip(cpu[endpoint], used, strict=True))
                    counted[endpoint] += len(lat)
                    old = results.get((nodes, endpoint), ([], 0.0, 0))
                    results[nodes, endpoint] = (old[0] + lat, old[1] + elapsed, old[2] + errors)
            loads.append(os.getloadavg()[0])
    finally:
        for _, process in servers:
            process.terminate()
        for _, process in servers:
            process.wait(timeout=30)
        drop_keys(redis_url, f"bench-nodes-{run}")

    print(
        f"gunicorn nodes of {args.workers} gthread worker(s) x 4 threads, {args.threads} "
        f"client threads over {KEYS} keys, {args.rounds} alternating rounds, PostgreSQL + "
        f"Redis, {os.cpu_count()} CPUs, 1-min load average during the rounds "
        f"{min(loads):.1f}-{max(loads):.1f}"
    )
    print(
        f"{'nodes':<6}{'endpoint':<30}{'requests':>9}{'req/s':>8}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}"
    )
    rate = {}
    for nodes in configs:
        for endpoint, label in (
            ("bare", "GET /api/v1/whoami"),
            ("decision", "POST /api/v1/actions (allow)"),
        ):
            lat, elapsed, errors = results[nodes, endpoint]
            rate[nodes, endpoint] = len(lat) / elapsed if elapsed else 0.0
            print(
                f"{nodes:<6}{label:<30}{len(lat):>9}{rate[nodes, endpoint]:>8.0f}"
                f"{percentile(lat, 50):>9.2f}{percentile(lat, 99):>9.2f}{errors:>7}"
            )
    for endpoint in ("bare", "decision"):
        print(
            f"{endpoint}: {args.nodes} nodes / 1 node = "
            f"{rate[args.nodes, endpoint] / rate[1, endpoint]:.2f}x requests/s"
        )
    for endpoint in ("bare", "decision"):
        web, db = (1000 * c / counted[endpoint] for c in cpu[endpoint])
        print(
            f"{endpoint}: CPU per request {web:.1f} ms in gunicorn, {db:.1f} ms in PostgreSQL "
            f"backends: about {1000 / web:.0f} req/s per core of web processes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
