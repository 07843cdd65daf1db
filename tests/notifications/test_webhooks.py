"""Approvers' webhooks: created through the outbox when a confirmation is requested,
signed, recorded per attempt, retried, and disabled after repeated failures."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.guard import operator_seeding
from audit.models import AuditEntry, ExceptionRecord
from common import egress
from common.actor import Actor
from common.errors import WardenError
from notifications import services, signing
from notifications.delivery import outbox_sweep
from notifications.models import (
    DeliveryStatus,
    NotificationEvent,
    WebhookAttempt,
    WebhookDelivery,
)
from notifications.services import (
    automation_settings_update,
    endpoint_create,
    endpoint_reenable,
)
from notifications.tasks import deliver_webhook

SYSTEM = Actor.system("tests")


def test_pending_request_sends_one_signed_webhook(
    live_workspace, make_endpoint, receiver, ask_pending
):
    endpoint = make_endpoint(live_workspace)
    confirmation = ask_pending(params={"deal": 7}, reason="close the deal")

    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.valid
    assert signing.verify_signature(
        secret=receiver.secret,
        timestamp=got.headers[signing.TIMESTAMP_HEADER],
        body=got.body,
        signature=got.headers[signing.SIGNATURE_HEADER],
    )
    payload = json.loads(got.body)
    assert payload["type"] == "confirmation.requested"
    assert payload["workspace"]["slug"] == live_workspace.slug
    assert payload["data"]["confirmation_id"] == str(confirmation.pk)
    assert payload["data"]["tool"] == "crm.update_stage"
    assert payload["data"]["reason"] == "close the deal"
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert got.headers[signing.DELIVERY_HEADER] == str(delivery.pk)
    assert got.headers[signing.EVENT_HEADER] == "confirmation.requested"
    assert delivery.status == DeliveryStatus.DELIVERED
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.ok and attempt.status_code == 200 and attempt.number == 1
    assert attempt.duration_ms >= 0


def test_webhook_never_carries_the_confirmation_token(
    live_workspace, make_endpoint, receiver, agent, gated_tool, django_capture_on_commit_callbacks
):
    make_endpoint(live_workspace)
    _, client = agent
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/actions", {"tool": gated_tool.name, "params": {}}, format="json"
        )
    token = response.json()["confirmation_token"]
    assert token.encode() not in receiver.received[0].body
    assert token not in json.dumps(NotificationEvent.objects.get().payload)


def test_endpoint_secret_is_shown_once_and_never_audited(
    live_workspace, allow_hosts, allow_http, receiver
):
    allow_hosts(live_workspace)
    with operator_seeding():
        issued = endpoint_create(
            reason="test set-up",
            workspace=live_workspace,
            name="ops",
            url=receiver.url,
            events=["confirmation.requested"],
            actor=SYSTEM,
        )
    assert issued.secret.startswith("whsec_")
    assert issued.secret not in repr(issued) and issued.secret not in repr(issued.endpoint)
    entry = AuditEntry.objects.filter(workspace=live_workspace, action="webhook.changed").get()
    assert issued.secret not in json.dumps(entry.input)
    assert entry.input["after"]["url"] == receiver.url


def test_endpoint_url_must_be_on_the_allowlist(live_workspace, allow_http):
    with pytest.raises(WardenError) as refused:
        endpoint_create(
            reason="test set-up",
            workspace=live_workspace,
            name="x",
            url="https://hooks.example.com/in",
            events=["confirmation.requested"],
            actor=SYSTEM,
        )
    assert refused.value.code == "validation_error"
    assert "allowlist" in refused.value.message


def test_endpoint_needs_known_events(live_workspace, allow_hosts, allow_http, receiver):
    allow_hosts(live_workspace)
    with pytest.raises(WardenError):
        endpoint_create(
            reason="test set-up",
            workspace=live_workspace,
            name="x",
            url=receiver.url,
            events=["everything"],
            actor=SYSTEM,
        )


def test_only_operators_change_the_host_allowlist(live_workspace):
    with pytest.raises(WardenError) as refused:
        automation_settings_update(
            reason="test set-up",
            workspace=live_workspace,
            actor=SYSTEM,
            changes={"webhook_host_allowlist": ["10.0.0.0/8"]},
        )
    assert refused.value.code == "permission_denied"
    settings_row = automation_settings_update(
        reason="test set-up",
        workspace=live_workspace,
        actor=SYSTEM,
        changes={"anomaly_auto_suspend": True},
    )
    assert settings_row.anomaly_auto_suspend and settings_row.webhook_host_allowlist == []
    assert (
        AuditEntry.objects.filter(
            workspace=live_workspace, target_type="automation_settings"
        ).count()
        == 1
    )


def test_unsubscribed_and_other_workspace_endpoints_get_nothing(
    live_workspace, make_workspace, make_endpoint, receiver, ask_pending
):
    make_endpoint(live_workspace, events=["anomaly.detected"])
    make_endpoint(make_workspace(), events=["confirmation.requested"])
    ask_pending()
    assert receiver.received == []
    assert WebhookDelivery.objects.count() == 0


def test_failed_attempts_are_recorded_and_retried_with_backoff(
    live_workspace, make_endpoint, receiver, ask_pending, eager_retries
):
    receiver.statuses = [500, 503]
    endpoint = make_endpoint(live_workspace)
    ask_pending()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    # Eager Celery runs the retries at once: two failures, then success.
    assert delivery.status == DeliveryStatus.DELIVERED
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code, a.ok) for a in attempts] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert attempts[0].error == "HTTP 500"
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0
    ids = {r.headers[signing.DELIVERY_HEADER] for r in receiver.received}
    assert ids == {str(delivery.pk)}  # the same idempotency id on every attempt
    assert receiver.processed == [str(delivery.pk)]


def test_retry_options_use_exponential_backoff_and_late_ack():
    assert deliver_webhook.acks_late is True
    assert deliver_webhook.retry_backoff and deliver_webhook.retry_jitter
    assert deliver_webhook.max_retries >= 5
    assert deliver_webhook.retry_backoff_max < services.sweep_after().total_seconds()


def test_endpoint_is_disabled_after_consecutive_failures(
    live_workspace,
    make_endpoint,
    receiver,
    ask_pending,
    settings,
    eager_retries,
    django_capture_on_commit_callbacks,
):
    settings.WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES = 5
    receiver.status = 500
    endpoint = make_endpoint(live_workspace)
    ask_pending()
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and not endpoint.is_active
    assert endpoint.consecutive_failures == 5
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == DeliveryStatus.PENDING  # kept for when it is re-enabled
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 5
    record = ExceptionRecord.objects.get(workspace=live_workspace, kind="delivery_failure")
    assert record.evidence["consecutive_failures"] == 5
    assert record.evidence["last_status_code"] == 500
    assert record.audit_entry.action == "webhook.disabled"
    assert receiver.secret not in json.dumps(record.evidence)

    # Fixed receiver, re-enabled endpoint: the pending delivery goes out.
    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        endpoint_reenable(reason="test set-up", endpoint=endpoint, actor=SYSTEM)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert receiver.processed == [str(delivery.pk)]


def test_a_disabled_endpoint_is_not_swept(
    live_workspace, make_endpoint, receiver, ask_pending, settings, eager_retries
):
    settings.WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES = 2
    receiver.status = 500
    make_endpoint(live_workspace)
    ask_pending()
    sent = len(receiver.received)
    outbox_sweep(stale_after=timedelta(0))
    assert len(receiver.received) == sent == 2


def test_delivering_twice_sends_once(live_workspace, make_endpoint, receiver, ask_pending):
    make_endpoint(live_workspace)
    ask_pending()
    delivery = WebhookDelivery.objects.get()
    assert deliver_webhook.delay(str(delivery.pk)).get() == "skipped"
    assert len(receiver.received) == 1


def test_lost_enqueue_is_recovered_by_the_sweeper(
    live_workspace, make_endpoint, receiver, ask_pending, monkeypatch
):
    make_endpoint(live_workspace)
    monkeypatch.setattr(services, "enqueue_webhooks", lambda ids: None)
    ask_pending()
    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    monkeypatch.undo()
    # Not stale yet: the sweeper leaves it to the (lost) task.
    assert outbox_sweep()["webhooks"] == 0
    assert outbox_sweep(now=timezone.now() + timedelta(minutes=16))["webhooks"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(receiver.processed) == 1


def test_lost_signal_is_backfilled_by_the_sweeper(
    live_workspace, make_endpoint, receiver, ask_pending, django_capture_on_commit_callbacks
):
    make_endpoint(live_workspace)
    confirmation = ask_pending(execute=False)  # the after-commit signal never ran
    assert NotificationEvent.objects.count() == 0
    assert outbox_sweep()["backfilled"] == 0  # too fresh: the signal may still come
    with django_capture_on_commit_callbacks(execute=True):
        result = outbox_sweep(now=timezone.now() + timedelta(minutes=3))
    assert result["backfilled"] == 1
    assert NotificationEvent.objects.get().event_key == f"confirmation.requested:{confirmation.pk}"
    assert len(receiver.processed) == 1
    # A second sweep (or a late signal) publishes nothing twice.
    assert outbox_sweep(now=timezone.now() + timedelta(minutes=3))["backfilled"] == 0
    assert services.notify_confirmation_requested(confirmation_id=confirmation.pk) is None
    assert len(receiver.received) == 1


def test_dns_changed_to_an_internal_address_is_refused_at_send_time(
    live_workspace, make_endpoint, receiver, ask_pending, monkeypatch, allow_hosts
):
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: ["93.184.216.34"])
    allow_hosts(live_workspace, ["hooks.example.com"])
    with operator_seeding():
        issued = endpoint_create(
            reason="test set-up",
            workspace=live_workspace,
            name="rebinding",
            url="https://hooks.example.com/in",
            events=["confirmation.requested"],
            actor=SYSTEM,
        )
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: ["127.0.0.1"])
    ask_pending()
    delivery = WebhookDelivery.objects.get(endpoint=issued.endpoint)
    assert delivery.status == DeliveryStatus.FAILED
    assert "private or reserved" in delivery.last_error
    assert receiver.received == []


def test_publishing_is_idempotent_per_event_key(live_workspace, make_endpoint, receiver):
    make_endpoint(live_workspace)
    first = services.event_publish(
        workspace=live_workspace, event="confirmation.requested", event_key="k-1", data={}
    )
    again = services.event_publish(
        workspace=live_workspace, event="confirmation.requested", event_key="k-1", data={}
    )
    assert first is not None and again is None
    assert WebhookDelivery.objects.count() == 1


def test_receiver_failure_never_breaks_the_request(
    live_workspace, agent, gated_tool, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services, "notify_confirmation_requested", broken)
    _, client = agent
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/actions", {"tool": gated_tool.name, "params": {}}, format="json"
        )
    assert response.status_code == 202


def test_review_link_points_at_the_approval_queue(
    live_workspace, make_endpoint, receiver, ask_pending, settings
):
    settings.WARDEN_PUBLIC_URL = "https://warden.example.com/"
    make_endpoint(live_workspace)
    confirmation = ask_pending()
    payload = json.loads(receiver.received[0].body)
    assert payload["data"]["review_url"].startswith(
        f"https://warden.example.com/admin/approvals/confirmationrequest/{confirmation.pk}/?link="
    )
