"""The Celery broker down: the agent is still answered, the notification waits in the
outbox (its delivery row stays pending), and once the broker is back the sweeper hands
it to a worker, which delivers it.

Needs PostgreSQL (the worker process must see the test database) and a redis-server
binary; the broker is a redis-server of this test's own, stopped and started at will."""

import os
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from common import background
from common.actor import Actor
from notifications.delivery import outbox_sweep
from notifications.models import DeliveryStatus, WebhookDelivery
from notifications.services import automation_settings_update, endpoint_create
from tests.integration.test_celery_worker import Worker, _database_url, publishing_to, wait_for
from tests.notifications.receiver import Receiver

SYSTEM = Actor.system("tests")
ON_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL shared with the worker"),
    pytest.mark.django_db(transaction=True),
]


def test_notifications_wait_in_the_outbox_while_the_broker_is_down(
    make_workspace, make_key, key_client, settings, tmp_path, redis_server
):
    port, start_broker, stop_broker = redis_server
    stop_broker()
    broker = f"redis://127.0.0.1:{port}/0"
    queue = f"warden-broker-down-{uuid.uuid4().hex[:8]}"
    settings.WARDEN_WEBHOOK_ALLOW_HTTP = True
    settings.WARDEN_DELIVERY_IN_BACKGROUND = True  # as served; tests default to inline
    receiver = Receiver().start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": _database_url(),
        "CONN_MAX_AGE": "0",
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "WARDEN_WEBHOOK_ALLOW_HTTP": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DEBUG": "0",
    }
    worker = Worker(env, queue, tmp_path / "worker.log")
    try:
        workspace = make_workspace(writes_enabled=True, mode="live")
        with operator_seeding():  # set-up, as an operator
            tool_create(
                reason="test set-up",
                workspace=workspace,
                actor=SYSTEM,
                name="crm.update_stage",
                level="write",
                confirmation="always",
            )
            _, plaintext = make_key(workspace, scopes=["actions:read", "actions:write"])
            automation_settings_update(
                reason="test set-up",
                workspace=workspace,
                actor=SYSTEM,
                changes={"webhook_host_allowlist": ["127.0.0.1"]},
                operator=True,
            )
            receiver.secret = endpoint_create(
                reason="test set-up",
                workspace=workspace,
                name="hooks",
                url=receiver.url,
                events=["confirmation.requested"],
                actor=SYSTEM,
            ).secret

        with publishing_to(broker, queue):
            started = time.monotonic()
            response = key_client(plaintext).post(
                "/api/v1/actions",
                {"tool": "crm.update_stage", "params": {"deal": 1}},
                format="json",
            )
            took = time.monotonic() - started
            assert response.status_code == 202, response.json()
            assert took < 1, f"the broker outage held the answer {took:.1f}s"
            assert background.wait_idle(timeout=30)  # the publish attempts gave up
            delivery = WebhookDelivery.objects.get()
            assert delivery.status == DeliveryStatus.PENDING
            assert delivery.attempts == 0 and receiver.received == []

            start_broker()
            worker.start()
            wait_for(
                lambda: WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED,
                timeout=90,
                what=f"delivery after the broker returned\n{worker.output()}",
                tick=lambda: outbox_sweep(stale_after=timedelta(0)),
                every=2,
            )
        assert [r.valid for r in receiver.received] == [True]
    finally:
        worker.kill()
        receiver.stop()
