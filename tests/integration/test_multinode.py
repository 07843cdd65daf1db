"""More than one node: two web processes (gunicorn, on two ports) and two Celery
workers against one PostgreSQL database and one Redis, configured only through the
environment as in production (DATABASE_URL, REDIS_URL, the broker on Redis, no eager
tasks). Everything is observed through HTTP: the nodes' API and a local webhook
receiver that counts what it is sent.

- a catalog change made through one node is enforced by the other on its next request
  (each process caches tool rows, keyed by the workspace's policy version, which every
  request reads afresh with the key);
- a key's rate limit is one budget across nodes (the counter lives in Redis);
- 50 concurrent confirmed re-calls of one approved request, half on each node, give
  exactly one `200 allowed` and 49 `409 confirmation_used` (row locks in PostgreSQL);
- each webhook reaches the receiver exactly once while both workers take tasks.

The test brings its own database (created, migrated and dropped here), a Redis key
prefix and a Celery queue unique to the run, so it shares nothing with other runs on
the same servers. On failure the output shows every process's log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings as django_settings

from notifications import signing
from tests.http_servers import serve_in_background
from tests.integration.test_celery_worker import Worker, _drop_queue
from tests.reliability.server import ROOT, Call, Reply, all_at_once, free_port, server_env

REDIS_URL = os.environ.get("REDIS_URL", "")
DATABASE = django_settings.DATABASES["default"]
ON_POSTGRES = DATABASE["ENGINE"].endswith("postgresql")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a shared Redis)"),
    pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (one database, two nodes)"),
]

RATE_LIMIT = 12  # the limited key's calls per minute
CONCURRENT_CONFIRMS = 50
WEBHOOK_ASKS = 10
# Web process: one gunicorn worker per node, so "node B's cache" is one process's cache.
GUNICORN = ("-m", "gunicorn", "config.wsgi", "--workers=1", "--threads=8")
GUNICORN += ("--worker-class=gthread", "--log-level=warning")


def _server_url(database: str) -> str:
    """A URL for `database` on the server the test suite uses."""
    auth = quote(DATABASE["USER"] or "", safe="")
    if DATABASE.get("PASSWORD"):
        auth += ":" + quote(DATABASE["PASSWORD"], safe="")
    host, port = DATABASE.get("HOST") or "127.0.0.1", DATABASE.get("PORT") or "5432"
    return f"postgres://{auth}@{host}:{port}/{database}"


class HookReceiver:
    """Counts webhook deliveries by X-Warden-Delivery. Each answer takes a little time,
    as a real receiver's would, so that one worker is busy when the next task comes."""

    def __init__(self, answer_after: float = 0.3):
        self.secret = ""
        self.answer_after = answer_after
        self.deliveries: list[tuple[str, bool, dict]] = []  # (delivery id, signed, body)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = signing.verify_signature(
                    secret=receiver.secret,
                    timestamp=self.headers.get(signing.TIMESTAMP_HEADER),
                    body=body,
                    signature=self.headers.get(signing.SIGNATURE_HEADER),
                )
                time.sleep(receiver.answer_after)
                with receiver.lock:
                    receiver.deliveries.append(
                        (self.headers.get(signing.DELIVERY_HEADER), signed, json.loads(body))
                    )
                self.send_response(200 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        serve_in_background(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def snapshot(self) -> list[tuple[str, bool, dict]]:
        with self.lock:
            return list(self.deliveries)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Node:
    """One web node: gunicorn on its own port, logging to a file."""

    name: str
    env: dict
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, *GUNICORN, f"--bind=127.0.0.1:{self.port}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.request("GET", "/api/v1/whoami")  # serving, not only listening
                return
            except OSError:
                if self.process.poll() is not None:
                    raise AssertionError(f"node {self.name} exited:\n{self.output()}") from None
                time.sleep(0.2)
        raise AssertionError(f"node {self.name} not serving in {timeout}s:\n{self.output()}")

    def terminate(self) -> None:
        """Ask for a graceful stop (gunicorn lets the background lane finish)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def call(self, method: str, path: str, body=None, headers=None) -> Call:
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        return Call(self.port, method, path, body, headers, 30)

    def request(self, method: str, path: str, body=None, headers=None) -> Reply:
        call = self.call(method, path, body, headers)
        call.connect()
        return call.send()


@dataclass
class Cluster:
    nodes: tuple[Node, Node]
    workers: tuple[Worker, Worker]
    receiver: HookReceiver
    seed: dict

    def as_key(self, node: Node, key: str, method: str, path: str, body=None) -> Reply:
        return node.request(method, path, body, {"Authorization": f"Bearer {self.seed[key]}"})

    def key_call(self, node: Node, key: str, method: str, path: str, body=None) -> Call:
        return node.call(method, path, body, {"Authorization": f"Bearer {self.seed[key]}"})

    def as_approver(self, node: Node, method: str, path: str, body=None) -> Reply:
        csrf = self.seed["csrf"]
        headers = {
            "Cookie": f"sessionid={self.seed['session']}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "X-Warden-Workspace": self.seed["workspace"],
        }
        return node.request(method, path, body, headers)

    def logs(self) -> str:
        parts = [f"--- node {n.name} (port {n.port})\n{n.output()}" for n in self.nodes]
        parts += [f"--- worker {i}\n{w.output()}" for i, w in enumerate(self.workers, 1)]
        return "\n".join(parts)


@pytest.fixture
def cluster(tmp_path):
    """Two nodes and two workers on a fresh database; everything stopped and removed
    afterwards, whatever happened; every log printed if the test failed."""
    run = uuid.uuid4().hex[:8]
    database = f"{DATABASE['NAME']}_nodes_{run}"
    admin_url = _server_url("postgres")
    redis_url = REDIS_URL
    queue, prefix = f"warden-nodes-{run}", f"warden-nodes-{run}"
    env = server_env(
        _server_url(database),
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        CELERY_TASK_ALWAYS_EAGER="0",
        CELERY_TASK_DEFAULT_QUEUE=queue,
        CACHE_KEY_PREFIX=prefix,
        CONN_MAX_AGE="60",
        WARDEN_WEBHOOK_ALLOW_HTTP="1",
        LOG_LEVEL="WARNING",
    )
    receiver = HookReceiver()
    nodes = (Node("A", env, tmp_path / "node-a.log"), Node("B", env, tmp_path / "node-b.log"))
    workers = (
        Worker(env, queue, tmp_path / "worker-1.log"),
        Worker(env, queue, tmp_path / "worker-2.log"),
    )
    cluster = Cluster(nodes, workers, receiver, {})
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=180,
        )
        for node in nodes:
            node.start()
        with ThreadPoolExecutor(max_workers=4) as pool:  # all four boot while seeding
            booting = [pool.submit(node.wait_serving) for node in nodes]
            booting += [pool.submit(worker.start) for worker in workers]
            seeded = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.multinode_seed",
                    str(RATE_LIMIT),
                    receiver.url,
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert seeded.returncode == 0, seeded.stderr[-4000:]
            cluster.seed = json.loads(seeded.stdout.strip().splitlines()[-1])
            receiver.secret = cluster.seed["webhook_secret"]
            for future in booting:
                future.result()
        yield cluster
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        for node in nodes:  # both at once: each may wait for its background lane
            node.terminate()
        for node in nodes:
            node.stop()
        for worker in workers:
            worker.kill()
        receiver.stop()
        _drop_queue(redis_url, queue)
        _drop_keys(redis_url, prefix)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _drop_keys(redis_url: str, prefix: str) -> None:
    with suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url)
        for name in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(name)
        client.close()


def _code(reply: Reply) -> str:
    return ((reply.body or {}).get("error") or {}).get("code", "")


def _wait(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_two_nodes_two_workers_share_one_state(cluster):
    a, b = cluster.nodes
    try:
        asked = []  # ids of every request that waits for a human: one webhook each
        lookup = {"tool": "crm.lookup", "params": {"id": 1}}

        # 1. A catalog change through one node is enforced by the other at once.
        for node in (b, b, a):  # both processes' tool caches are warm
            reply = cluster.as_key(node, "agent", "POST", "/api/v1/actions", lookup)
            assert (reply.status, reply.body["decision"]) == (200, "allowed"), reply.body
        tool_path = f"/api/v1/tools/{cluster.seed['lookup_id']}"
        reply = cluster.as_key(
            a, "catalog_admin", "PATCH", tool_path, {"confirmation": "always", "reason": "stricter"}
        )
        assert reply.status == 200, reply.body
        reply = cluster.as_key(b, "agent", "POST", "/api/v1/actions", lookup)
        assert (reply.status, reply.body["decision"]) == (202, "requires_confirmation")
        asked.append(reply.body["id"])
        reply = cluster.as_key(
            b, "catalog_admin", "PATCH", tool_path, {"enabled": False, "reason": "off"}
        )
        assert reply.status == 200, reply.body
        reply = cluster.as_key(a, "agent", "POST", "/api/v1/actions", lookup)
        assert (reply.status, _code(reply)) == (403, "tool_not_allowed"), reply.body
        listed = cluster.as_key(a, "agent", "GET", "/api/v1/tools").body["results"]
        assert [t["name"] for t in listed] == ["crm.update_stage"]

        # 2. One rate limit across nodes: the key's budget, not the budget per node.
        for _attempt in range(3):  # a minute boundary mid-burst starts a fresh window
            window = int(time.time() // 60)
            replies = [
                (node.name, cluster.as_key(node, "limited", "GET", "/api/v1/whoami"))
                for node in (a, b) * RATE_LIMIT
            ]
            if int(time.time() // 60) == window:
                break
        else:
            pytest.fail("three bursts in a row straddled a minute boundary")
        statuses = Counter(reply.status for _, reply in replies)
        assert statuses == {200: RATE_LIMIT, 429: RATE_LIMIT}, statuses
        refused_by = {name for name, reply in replies if reply.status == 429}
        assert refused_by == {"A", "B"}
        assert all(
            _code(reply) == "rate_limited" and int(reply.headers["Retry-After"]) >= 1
            for _, reply in replies
            if reply.status == 429
        )

        # 3. Asked on A, approved on B, then 50 confirmed re-calls at once over both.
        stage = {"tool": "crm.update_stage", "params": {"deal": 1}}
        reply = cluster.as_key(a, "agent", "POST", "/api/v1/actions", stage)
        assert reply.status == 202, reply.body
        request_id, token = reply.body["id"], reply.body["confirmation_token"]
        asked.append(request_id)
        pending = cluster.as_approver(b, "GET", "/api/v1/approvals").body["results"]
        [confirmation] = [c for c in pending if c["action_request"] == request_id]
        reply = cluster.as_approver(
            b, "POST", f"/api/v1/approvals/{confirmation['id']}/approve", {"reason": "fine"}
        )
        assert reply.status == 200, reply.body
        confirmed = {**stage, "confirmed": True, "confirmation_token": token}
        calls = [
            cluster.key_call(node, "agent", "POST", "/api/v1/actions", confirmed)
            for node in (a, b) * (CONCURRENT_CONFIRMS // 2)
        ]
        replies = all_at_once(calls)
        outcomes = Counter((reply.status, _code(reply)) for reply in replies)
        assert outcomes == {
            (200, ""): 1,
            (409, "confirmation_used"): CONCURRENT_CONFIRMS - 1,
        }, outcomes
        [allowed] = [reply for reply in replies if reply.status == 200]
        assert (allowed.body["id"], allowed.body["decision"]) == (request_id, "allowed")
        status = cluster.as_key(b, "agent", "GET", f"/api/v1/actions/{request_id}")
        assert status.body["status"] == "allowed", status.body

        # 4. Each webhook once, with both workers taking tasks.
        for n in range(WEBHOOK_ASKS):
            body = {"tool": "crm.update_stage", "params": {"deal": 100 + n}}
            reply = cluster.as_key((a, b)[n % 2], "agent", "POST", "/api/v1/actions", body)
            assert reply.status == 202, reply.body
            asked.append(reply.body["id"])
        expected = len(asked)

        def all_arrived() -> bool:
            return len({d for d, _, _ in cluster.receiver.snapshot()}) >= expected

        _wait(all_arrived, timeout=60, what=f"{expected} webhook deliveries")
        time.sleep(2)  # anything sent twice would arrive by now
        deliveries = cluster.receiver.snapshot()
        per_delivery = Counter(delivery for delivery, _, _ in deliveries)
        assert len(per_delivery) == expected and set(per_delivery.values()) == {1}, per_delivery
        assert all(signed for _, signed, _ in deliveries)
        notified = sorted(body["data"]["action_request_id"] for _, _, body in deliveries)
        assert notified == sorted(asked)
        for worker in cluster.workers:  # both workers delivered some of them
            delivered = re.findall(r"deliver_webhook\[\S+\] succeeded", worker.output())
            assert delivered, "a worker delivered nothing"
    except BaseException:
        print(cluster.logs())
        raise
