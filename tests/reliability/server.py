"""A real Warden server in a subprocess, as `make run` serves it: `runserver` (one
thread per connection) on a SQLite file in WAL mode, eager Celery, no Redis. The
database is migrated once per test session and copied for each server."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Barrier

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database: Path | str, **extra: str) -> dict[str, str]:
    """`database`: a SQLite file, or a database URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        DATABASE_URL=database if isinstance(database, str) else f"sqlite:///{database}",
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="reliability-tests-only-" + "r" * 40,
        # Serving without DEBUG needs the audit signing key (config/startup.py).
        WARDEN_AUDIT_SIGNING_KEY="dGVzdC1vbmx5LWF1ZGl0LXNpZ25pbmcta2V5LTMyYnk=",
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1,testserver",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.pop("CELERY_BROKER_URL", None)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env.update(extra)
    return env


def migrate(database: Path | str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=server_env(database),
        check=True,
        timeout=120,
    )


@dataclass
class Reply:
    status: int
    headers: dict
    body: dict | None


RUNSERVER = ("manage.py", "runserver", "--noreload")  # what `make run` serves
GUNICORN = ("-m", "gunicorn", "config.wsgi", "--workers=1", "--threads=4", "--worker-class=gthread")
# docs "Running in production" (add --workers and --bind)
PRODUCTION = ("-m", "gunicorn", "config.asgi", "--worker-class=config.asgi_worker.Worker")
PRODUCTION += ("--log-level=warning", "--graceful-timeout=5")


class WardenServer:
    """Start with a copy of a migrated SQLite database (or a migrated database URL),
    seed it, serve it (runserver, or gunicorn as in production); stop() kills it."""

    def __init__(
        self,
        template: Path | None,
        workdir: Path,
        database_url: str = "",
        serve: tuple[str, ...] = RUNSERVER,
        **env: str,
    ):
        self.database = workdir / "warden.sqlite3"
        if template is not None:
            shutil.copy(template, self.database)
        self.env = server_env(database_url or self.database, **env)
        self.serve = serve
        self.port = free_port()
        self.log = workdir / "server.log"
        self.process: subprocess.Popen | None = None
        self.seed: dict = {}

    def start(self, *seed_args: str) -> WardenServer:
        seeded = subprocess.run(
            [sys.executable, "-m", "tests.reliability.seed_server_db", *seed_args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        self.seed = json.loads(seeded.stdout.strip().splitlines()[-1])
        with self.log.open("w") as log:
            bind = f"127.0.0.1:{self.port}"
            self.process = subprocess.Popen(
                [sys.executable, *self.serve, bind if self.serve == RUNSERVER else f"-b{bind}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # serving, not only listening (gunicorn boots late)
            try:
                self.request("GET", "/api/v1/whoami")
                return self
            except OSError:
                assert self.process.poll() is None, self.log.read_text()[-3000:]
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def call(self, method: str, path: str, body=None, headers=None, timeout=60) -> Call:
        return Call(self.port, method, path, body, headers or {}, timeout)

    def request(self, method: str, path: str, body=None, headers=None) -> Reply:
        call = self.call(method, path, body, headers)
        call.connect()
        return call.send()

    def agent_call(self, method: str, path: str, body=None) -> Call:
        headers = {"Authorization": f"Bearer {self.seed['key']}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.call(method, path, body, headers)

    def as_agent(self, method: str, path: str, body=None) -> Reply:
        call = self.agent_call(method, path, body)
        call.connect()
        return call.send()

    def approver_call(self, method: str, path: str, body=None) -> Call:
        csrf = self.seed["csrf"]
        headers = {
            "Cookie": f"sessionid={self.seed['session']}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "X-Warden-Workspace": self.seed["workspace"],
            "Content-Type": "application/json",
        }
        return self.call(method, path, body, headers)


@dataclass
class Call:
    """One HTTP request whose connection is opened ahead of sending it."""

    port: int
    method: str
    path: str
    body: dict | None
    headers: dict
    timeout: float
    conn: http.client.HTTPConnection | None = None

    def connect(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        self.conn.connect()

    def send(self) -> Reply:
        try:
            payload = json.dumps(self.body) if self.body is not None else None
            self.conn.request(self.method, self.path, body=payload, headers=self.headers)
            response = self.conn.getresponse()
            raw = response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = {"raw": raw[:500].decode(errors="replace")}
            return Reply(response.status, dict(response.getheaders()), parsed)
        finally:
            self.conn.close()


def all_at_once(calls: list[Call]) -> list[Reply]:
    """Open every connection first (one by one: runserver's listen backlog is small),
    then send all the requests at the same instant, one thread each."""
    for call in calls:
        call.connect()
    barrier = Barrier(len(calls))

    def run(call: Call) -> Reply:
        barrier.wait(timeout=30)
        return call.send()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
