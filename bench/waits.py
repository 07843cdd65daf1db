"""Waits never hold a worker: 200 concurrent long-polls (GET /api/v1/actions/{id}?wait=30)
against gunicorn as docs "Running in production" runs it (config.asgi, 2 workers x 8
threads, the default wait caps; `--worker-class gthread` for threaded waits), while
another workspace's key calls GET /api/v1/whoami; its p50/p99 under the waits against
its idle p50/p99, same run.

    .venv/bin/python bench/waits.py [--waiters 200] [--seconds 15]

Needs a local PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench; created and migrated if missing);
BENCH_REDIS_URL, if set, is the shared cache (the per-key cap then counts over both
workers, as in production; without it each worker counts its own). Seeds through the
services a workspace whose tool always needs a human, waiters/4 keys each with one
pending request (4 waiters per key: the per-key cap), and another workspace with one
key. Each waiter loops: long-poll for 30 s; on 429 too_many_waits it sleeps Retry-After,
as the SDK does. Prints both whoami figures, the p99 ratio (target <= 2x), what the
waiters got (answers, 429s, errors) and the load average.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from benchdb import ensure_database
from decision import DEFAULT_DB, ROOT, bench_env, start_gunicorn
from load import drive, free_port, percentile


def seed(env: dict[str, str], waiters: int) -> tuple[list[tuple[str, str]], str]:
    """(key, pending action id) per waiter (4 per key), and the other workspace's key."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from approvals.catalog import tool_create
    from approvals.guard import operator_seeding
    from common.actor import Actor
    from keys.services import key_create
    from tenants.services import user_get_or_create, workspace_create

    actor = Actor.system("bench")
    suffix = uuid.uuid4().hex[:8]
    owner = user_get_or_create(email=f"bench-{suffix}@bench.local")
    waiting = workspace_create(
        reason="benchmark set-up", slug=f"waits-{suffix}", name="Waits", owner=owner, actor=actor
    )
    other = workspace_create(
        reason="benchmark set-up", slug=f"other-{suffix}", name="Other", owner=owner, actor=actor
    )

    def key(ws, name: str) -> str:
        with operator_seeding():
            return key_create(
                reason="benchmark set-up",
                workspace=ws,
                name=name,
                owner=owner,
                scopes=["actions:external"],
                tool_allowlist=["email.*"],
                rate_limit_per_minute=100_000,
                actor=actor,
            ).plaintext

    with operator_seeding():  # set-up, as an operator at a shell
        waiting.writes_enabled = True
        waiting.save()
        tool_create(
            reason="benchmark set-up",
            workspace=waiting,
            actor=actor,
            name="email.send",
            level="external",
            confirmation="always",
        )
    pairs = []
    for n in range((waiters + 3) // 4):
        plaintext = key(waiting, f"waiter-{n}")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        body = json.dumps({"tool": "email.send", "params": {"to": f"a{n}@example.test"}})
        answer = client.post("/api/v1/actions", body, content_type="application/json")
        assert answer.status_code == 202, answer.content
        pairs += [(plaintext, answer.json()["id"])] * 4
    whoami_key = key(other, "whoami")
    connection.close()
    return pairs[:waiters], whoami_key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15, help="each whoami phase")
    parser.add_argument("--clients", type=int, default=2, help="whoami clients")
    parser.add_argument(
        "--worker-class",
        default="asgi",
        choices=["asgi", "gthread"],
        help="asgi: the production server (waits parked, no thread each); gthread: threads",
    )
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = bench_env(database_url)
    if os.environ.get("BENCH_REDIS_URL"):
        env["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    ensure_database(database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={k: v for k, v in env.items() if k != "REDIS_URL"},
        check=True,
    )
    pairs, whoami_key = seed({k: v for k, v in env.items() if k != "REDIS_URL"}, args.waiters)
    port = free_port()
    server = start_gunicorn(env, port, args.worker_class)
    stop = threading.Event()
    counts = {"answered": 0, "too_many_waits": 0, "other": 0}
    lock = threading.Lock()

    def waiter(key: str, action_id: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        while not stop.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=45)
                while not stop.is_set():
                    conn.request("GET", f"/api/v1/actions/{action_id}?wait=30", headers=headers)
                    response = conn.getresponse()
                    response.read()
                    with lock:
                        if response.status == 200:
                            counts["answered"] += 1
                        elif response.status == 429:
                            counts["too_many_waits"] += 1
                        else:
                            counts["other"] += 1
                    if response.status == 429:
                        stop.wait(float(response.getheader("Retry-After", "2")))
            except OSError:
                if not stop.is_set():
                    with lock:
                        counts["other"] += 1
                    stop.wait(1)

    try:
        drive([port], [whoami_key], "whoami", 200, args.clients, 30)  # warm
        load_idle = os.getloadavg()[0]
        idle, _, idle_errors = drive(
            [port], [whoami_key], "whoami", 10**6, args.clients, args.seconds
        )
        pool = [threading.Thread(target=waiter, args=pair, daemon=True) for pair in pairs]
        for thread in pool:
            thread.start()
        time.sleep(3)  # every waiter has asked once
        load_busy = os.getloadavg()[0]
        busy, _, busy_errors = drive(
            [port], [whoami_key], "whoami", 10**6, args.clients, args.seconds
        )
        load_after = os.getloadavg()[0]
        stop.set()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(
        f"gunicorn 2 {args.worker_class} workers x 8 threads, {args.waiters} waiters on "
        f"{len({k for k, _ in pairs})} keys, {args.clients} whoami clients of another "
        f"workspace; load average {load_idle:.1f} idle, {load_busy:.1f} / {load_after:.1f} "
        "under the waits"
    )
    for label, lat, errors in (("idle", idle, idle_errors), ("200 waits", busy, busy_errors)):
        print(
            f"whoami {label:<10} {len(lat):>7} calls  p50 {percentile(lat, 50):7.2f} ms  "
            f"p99 {percentile(lat, 99):7.2f} ms  errors {errors}"
        )
    ratio = percentile(busy, 99) / percentile(idle, 99)
    print(
        f"whoami p99 under the waits / idle: {ratio:.2f}x "
        f"(target <= 2x: {'met' if ratio <= 2 else 'NOT met'})"
    )
    print(
        f"waiters: {counts['answered']} answered after their wait, {counts['too_many_waits']} "
        f"refused 429 too_many_waits (retried after Retry-After), {counts['other']} other"
    )
    return 0 if not (idle_errors or busy_errors) else 1


if __name__ == "__main__":
    raise SystemExit(main())
