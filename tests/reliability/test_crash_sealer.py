"""Crash tests for the group-commit queue (issue 25's proof): under load, the server is
killed (SIGKILL) at random moments, a worker at a time or the whole server (master,
workers and their sealer threads), and restarted. Every decision answered `200` must
afterwards be stored, its evidence entry chained and MAC-valid (verify_chain), and
nothing may stay queued: after the last restart the queue is empty within 1 s of the
server serving again (the sealer sweeps what a killed process left queued).

Loopback only and bounded (a fixed number of kills, a few seconds of load), on a
database of the test's own, created, migrated and dropped here; gunicorn as docs
"Running in production" runs it. The random schedule's seed is printed."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import suppress

import psycopg
import pytest
from django.conf import settings as django_settings

from tests.reliability.server import PRODUCTION, ROOT, free_port, server_env

DATABASE = django_settings.DATABASES["default"]
ON_POSTGRES = DATABASE["ENGINE"].endswith("postgresql")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ON_POSTGRES, reason="the group-commit queue is PostgreSQL's"),
]

CLIENTS = 6
KILLS = 5
BODY = json.dumps({"tool": "crm.lookup", "params": {"id": 1}})


def _server_url(database: str) -> str:
    from urllib.parse import quote

    auth = quote(DATABASE["USER"] or "", safe="")
    if DATABASE.get("PASSWORD"):
        auth += ":" + quote(DATABASE["PASSWORD"], safe="")
    host, port = DATABASE.get("HOST") or "127.0.0.1", DATABASE.get("PORT") or "5432"
    return f"postgres://{auth}@{host}:{port}/{database}"


class Server:
    """gunicorn in a session of its own, so the whole server can be killed at once."""

    def __init__(self, env: dict[str, str], log) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Start and return the monotonic time it first served a request."""
        self.process = subprocess.Popen(
            [sys.executable, *PRODUCTION, "--workers=2", f"--bind=127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/whoami")
                conn.getresponse().read()
                return time.monotonic()
            assert self.process.poll() is None, "the server exited"
            time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def workers(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == self.process.pid:
                        found.append(int(entry))
        return found

    def kill_worker(self, rng: random.Random) -> None:
        workers = self.workers()
        if workers:
            with suppress(ProcessLookupError):
                os.kill(rng.choice(workers), signal.SIGKILL)

    def kill_all(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _load(port_of, key: str, answered: list[str], stop: threading.Event) -> None:
    """Ask for allowed decisions until stopped; keep the id of every 200 answer."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port_of(), timeout=10)
            conn.request("POST", "/api/v1/actions", body=BODY, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status == 200:
                answered.append(json.loads(body)["id"])
        except (OSError, http.client.HTTPException, ValueError):
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.02)


def _queued(url: str, workspace: str) -> tuple[int, float]:
    """(rows queued for the workspace's chain, age in s of the oldest)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(p.created_at)), 0)"
            " FROM audit_auditpending p JOIN tenants_workspace w ON w.id = p.workspace_id"
            " WHERE w.slug = %s",
            [workspace],
        ).fetchone()
    return row[0], float(row[1])


def test_answered_decisions_survive_kills_and_are_chained_within_a_second(tmp_path):
    seed = int(os.environ.get("WARDEN_CRASH_SEED") or random.randrange(10**6))
    print(f"crash schedule seed: {seed} (WARDEN_CRASH_SEED to replay)")
    rng = random.Random(seed)
    database = f"{DATABASE['NAME']}_crash_{uuid.uuid4().hex[:8]}"
    admin_url, url = _server_url("postgres"), _server_url(database)
    env = server_env(url, CONN_MAX_AGE="60", LOG_LEVEL="ERROR")
    log = (tmp_path / "server.log").open("w")
    server = Server(env, log)
    stop = threading.Event()
    answered: list[str] = []
    clients: list[threading.Thread] = []
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT, env=env, check=True, timeout=180,
        )  # fmt: skip
        seeded = subprocess.run(
            [sys.executable, "-m", "tests.reliability.seed_server_db", "0"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        seed_data = json.loads(seeded.stdout.strip().splitlines()[-1])
        server.start()
        clients = [
            threading.Thread(
                target=_load, args=(lambda: server.port, seed_data["key"], answered, stop)
            )
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        kills = ["worker"] * (KILLS - 1)
        kills.insert(rng.randrange(len(kills) + 1), "server")
        kills.append("server")  # the last one, with the load on
        left_queued = []
        for kind in kills:
            time.sleep(rng.uniform(0.3, 1.5))
            if kind == "worker":
                server.kill_worker(rng)
                continue
            server.kill_all()
            left_queued.append(_queued(url, seed_data["workspace"])[0])
            if len(left_queued) < kills.count("server"):
                server.start()
        stop.set()
        for client in clients:
            client.join(timeout=30)
        serving = server.start()  # the last restart: no new decisions from here on
        while True:
            queued, _age = _queued(url, seed_data["workspace"])
            waited = time.monotonic() - serving
            if not queued or waited > 5:
                break
            time.sleep(0.02)
        print(
            f"{len(answered)} decisions answered; left queued at the server kills: "
            f"{left_queued}; queue empty {waited:.2f} s after the last restart served"
        )
        assert len(answered) > 20, "the load never got going"
        assert not queued, f"{queued} entries still queued 5 s after the restart"
        assert waited <= 1.0, f"the queue took {waited:.2f} s to be chained after the restart"
        checked = subprocess.run(
            [sys.executable, "-m", "tests.reliability.crash_check", seed_data["workspace"]],
            cwd=ROOT, env=env, input=json.dumps(answered), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr[-3000:]
        report = json.loads(checked.stdout.strip().splitlines()[-1])
        print(report)
        assert report["missing_requests"] == []
        assert report["missing_entries"] == []
        assert report["chain_ok"], report["summary"]
        assert report["queued"] == 0
        assert report["quarantined"] == 0
    except BaseException:
        log.flush()
        print((tmp_path / "server.log").read_text()[-6000:])
        raise
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
        if server.process is not None and server.process.poll() is None:
            server.kill_all()
        log.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
