"""A real Celery worker against the local Redis: a pending request made through the API
reaches a local receiver as a signed webhook; a worker killed mid-delivery loses
nothing, and the deduping receiver observes the delivery exactly once.

Needs PostgreSQL (the worker process must see the test database) and REDIS_URL; CI
runs it in the full suite (`.ci/run`). It uses its own Redis database number and a
queue name unique to the run, so parallel runs do not take each other's tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from common.actor import Actor
from config.celery import app
from notifications import signing
from notifications.delivery import outbox_sweep
from notifications.models import DeliveryStatus, WebhookDelivery
from notifications.services import automation_settings_update, endpoint_create
from tests.notifications.receiver import Receiver

SYSTEM = Actor.system("tests")
BASE_DIR = Path(__file__).resolve().parents[2]
REDIS_DB = 13  # not the 0 the app and the cache tests use
REDIS_URL = os.environ.get("REDIS_URL", "")
ON_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a real broker)"),
    pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL shared with the worker"),
    pytest.mark.django_db(transaction=True),
]


def _redis_url() -> str:
    parts = urlsplit(REDIS_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", "", ""))


def _database_url() -> str:
    """The test database (test_<name>), so the worker sees what this test commits."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def _reset_producer_state() -> None:
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.__dict__.pop("amqp", None)  # cached router and queues


@contextmanager
def publishing_to(broker_url: str, queue: str):
    """Make this (eager, test) process publish tasks to the real broker and queue."""
    keys = ("task_always_eager", "broker_url", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(task_always_eager=False, broker_url=broker_url, task_default_queue=queue)
    _reset_producer_state()
    try:
        yield
    finally:
        app.conf.update(saved)
        _reset_producer_state()


class Worker:
    """`celery -A config worker` in its own process group (so SIGKILL takes the pool
    children too), logging to a file for the failure message."""

    def __init__(self, env: dict, queue: str, log: Path):
        self.env, self.queue, self.log = env, queue, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Worker:
        offset = self.log.stat().st_size if self.log.exists() else 0
        self._log_handle = open(self.log, "ab")  # noqa: SIM115 (closed in kill())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queue,
                "-c",
                "1",
                "-n",
                f"{self.queue}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.output()}")
            with open(self.log, "rb") as handle:
                handle.seek(offset)
                if b" ready." in handle.read():
                    return self
            time.sleep(0.2)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if getattr(self, "_log_handle", None):
            self._log_handle.close()
            self._log_handle = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def wait_for(predicate, *, timeout: float, what: str, tick=None, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if tick is not None:
            tick()
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def delivered(delivery_id) -> bool:
    return WebhookDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.DELIVERED


def test_worker_delivers_signed_webhook_and_survives_being_killed_mid_delivery(
    make_workspace, make_key, key_client, settings, tmp_path
):
    settings.WARDEN_WEBHOOK_ALLOW_HTTP = True
    queue = f"warden-it-{uuid.uuid4().hex[:10]}"
    broker = _redis_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "WARDEN_AUDIT_SIGNING_KEY": settings.WARDEN_AUDIT_SIGNING_KEY,
        "DATABASE_URL": _database_url(),
        "CONN_MAX_AGE": "0",
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "WARDEN_WEBHOOK_ALLOW_HTTP": "1",
        "WARDEN_WEBHOOK_TIMEOUT_SECONDS": "30",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DEBUG": "0",
    }
    receiver = Receiver().start()
    worker = Worker(env, queue, tmp_path / "worker.log")
    try:
        workspace = make_workspace(writes_enabled=True, mode="live")
        with operator_seeding():
            tool = tool_create(
                reason="test set-up",
                workspace=workspace,
                actor=SYSTEM,
                name="crm.update_stage",
                level="write",
                confirmation="always",
            )
        _, plaintext = make_key(workspace, scopes=["actions:read", "actions:write"])
        agent = key_client(plaintext)
        with operator_seeding():  # widening the host allowlist is governed: seeded
            automation_settings_update(
                reason="test set-up",
                workspace=workspace,
                actor=SYSTEM,
                changes={"webhook_host_allowlist": ["127.0.0.1"]},
                operator=True,
            )
        with operator_seeding():  # a new endpoint that sends at once is governed: seeded
            issued = endpoint_create(
                reason="test set-up",
                workspace=workspace,
                name="it",
                url=receiver.url,
                events=["confirmation.requested"],
                actor=SYSTEM,
            )
        receiver.secret = issued.secret
        worker.start()

        def ask(deal):
            response = agent.post(
                "/api/v1/actions",
                {"tool": tool.name, "params": {"deal": deal}},
                format="json",
            )
            assert response.status_code == 202, response.json()
            return WebhookDelivery.objects.get(
                event__payload__data__action_request_id=response.json()["id"]
            )

        with publishing_to(broker, queue):
            # 1. A pending request reaches the receiver as a signed webhook.
            first = ask(1)
            wait_for(
                lambda: delivered(first.pk),
                timeout=60,
                what=f"first delivery\n{worker.output()}",
            )
            [got] = receiver.received
            assert got.valid
            assert signing.verify_signature(
                secret=issued.secret,
                timestamp=got.headers[signing.TIMESTAMP_HEADER],
                body=got.body,
                signature=got.headers[signing.SIGNATURE_HEADER],
            )
            assert got.headers[signing.DELIVERY_HEADER] == str(first.pk)

            # 2. The receiver holds the next request; the worker dies while it waits.
            receiver.arrived.clear()
            receiver.hold_next(threading.Event())
            second = ask(2)
            assert receiver.arrived.wait(timeout=60), worker.output()
            worker.kill()
            receiver.release()
            assert WebhookDelivery.objects.get(pk=second.pk).status == DeliveryStatus.PENDING

            # 3. A new worker and the periodic sweeper finish the job.
            worker = Worker(env, queue, tmp_path / "worker.log").start()
            wait_for(
                lambda: delivered(second.pk),
                timeout=90,
                what=f"redelivery after the kill\n{worker.output()}",
                tick=lambda: outbox_sweep(stale_after=timedelta(0)),
                every=2,
            )

        ids = [r.headers[signing.DELIVERY_HEADER] for r in receiver.received]
        assert ids.count(str(second.pk)) >= 2  # sent again after the kill: at-least-once
        assert all(r.valid for r in receiver.received)
        # ...and observed once by a receiver that dedupes on X-Warden-Delivery.
        assert receiver.processed == [str(first.pk), str(second.pk)]
        attempts = WebhookDelivery.objects.get(pk=second.pk).log.all()
        assert [a.ok for a in attempts] == [True]  # the killed attempt left no row
    finally:
        worker.kill()
        receiver.stop()
        _drop_queue(broker, queue)


def _drop_queue(broker: str, queue: str) -> None:
    """Remove this run's queue, its bindings and its unacknowledged messages."""
    try:
        import json

        import redis

        client = redis.Redis.from_url(broker)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        for tag, raw in client.hgetall("unacked").items():
            try:
                _, exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            if queue in (exchange, routing_key):
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
        client.close()
    except Exception:  # cleanup only
        pass
