"""Claiming: a delivery is sent by one worker at a time (SKIP LOCKED on PostgreSQL), and
one that keeps failing is given up after its attempt budget."""

import threading

import pytest
from django.db import connection

from notifications import services
from notifications.delivery import Outcome, webhook_deliver
from notifications.models import DeliveryStatus, WebhookAttempt, WebhookDelivery


def publish(workspace, monkeypatch):
    monkeypatch.setattr(services, "enqueue_webhooks", lambda ids: None)
    services.event_publish(
        workspace=workspace, event="confirmation.requested", event_key="claim-1", data={}
    )
    monkeypatch.undo()
    return WebhookDelivery.objects.get()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_skips_a_delivery_being_sent(
    live_workspace, make_endpoint, receiver, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: select_for_update is a no-op on SQLite")
    make_endpoint(live_workspace)
    delivery = publish(live_workspace, monkeypatch)
    receiver.hold_next(threading.Event())
    outcomes = {}

    def first_worker():
        try:
            outcomes["first"] = webhook_deliver(delivery_id=delivery.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert receiver.arrived.wait(timeout=10)
        # The first worker holds the row while its request is in flight.
        outcomes["second"] = webhook_deliver(delivery_id=delivery.pk)
    finally:
        receiver.release()
        thread.join(timeout=15)
    assert outcomes == {"first": Outcome.DELIVERED, "second": Outcome.SKIPPED}
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_delivery_is_given_up_after_its_attempt_budget(
    live_workspace, make_endpoint, receiver, monkeypatch, settings
):
    settings.WARDEN_WEBHOOK_MAX_ATTEMPTS = 2
    settings.WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES = 10
    receiver.status = 503
    make_endpoint(live_workspace)
    delivery = publish(live_workspace, monkeypatch)
    assert webhook_deliver(delivery_id=delivery.pk) == Outcome.RETRY
    assert webhook_deliver(delivery_id=delivery.pk) == Outcome.GAVE_UP
    assert webhook_deliver(delivery_id=delivery.pk) == Outcome.SKIPPED
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_status_code == 503
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 2


def test_a_timeout_is_recorded_with_its_duration(
    live_workspace, make_endpoint, receiver, monkeypatch, settings
):
    settings.WARDEN_WEBHOOK_TIMEOUT_SECONDS = 1
    make_endpoint(live_workspace)
    delivery = publish(live_workspace, monkeypatch)
    receiver.hold_next(threading.Event())
    try:
        assert webhook_deliver(delivery_id=delivery.pk) == Outcome.RETRY
    finally:
        receiver.release()
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.error == "timed out" and attempt.status_code is None
    assert attempt.duration_ms >= 900
