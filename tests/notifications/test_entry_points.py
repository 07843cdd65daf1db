"""Notification tasks and webhook admin actions run as they run in a worker or the admin:
outside any test transaction (tests/entry_points.py), each checking the state change and
its record (attempt rows, audit entries) are both there."""

import json
from datetime import timedelta

import time_machine
from django.core import mail
from django.db import transaction
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry, ExceptionRecord
from audit.services import exception_record
from notifications.models import (
    DeliveryStatus,
    EmailDelivery,
    NotificationEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.tasks import (
    deliver_webhook,
    remind_unresolved_exceptions,
    send_email,
    sweep_outbox,
)
from tenants.models import Role
from tests.entry_points import entry_point
from tests.notifications.conftest import SYSTEM

LIST_URL = "/admin/notifications/webhookendpoint/"


def _pending_again(model, **extra):
    """A delivery the worker has not sent yet (as after a lost message)."""
    delivery = model.objects.get()
    model.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PENDING, **extra)
    return delivery


@entry_point("task:notifications.deliver_webhook", "signal:notifications.confirmation_requested")
def test_webhook_task_sends_and_records_the_attempt(
    live_workspace, make_endpoint, receiver, ask_pending
):
    make_endpoint(live_workspace)
    ask_pending()  # committed for real: the signal enqueues the first delivery
    assert len(receiver.received) == 1
    delivery = _pending_again(WebhookDelivery)
    assert deliver_webhook.delay(str(delivery.pk)).get() == "delivered"
    assert len(receiver.received) == 2
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert WebhookAttempt.objects.filter(delivery=delivery, ok=True).count() == 2


@entry_point("signal:notifications.action_decided")
def test_an_approval_is_announced_once_its_transaction_commits(
    live_workspace, make_endpoint, receiver, ask_pending, approver, approve
):
    make_endpoint(live_workspace, events=("action.approved",))
    confirmation = ask_pending()
    assert approve(approver, live_workspace, confirmation.pk).status_code == 200
    assert [json.loads(got.body)["type"] for got in receiver.received] == ["action.approved"]
    assert NotificationEvent.objects.filter(event="action.approved").count() == 1
    assert (
        AuditEntry.objects.filter(workspace=live_workspace, action="confirmation.approved").count()
        == 1
    )


@entry_point("task:notifications.send_email")
def test_email_task_sends_and_marks_the_delivery(live_workspace, approver, ask_pending):
    ask_pending()
    sent = len(mail.outbox)
    assert sent >= 1
    delivery = EmailDelivery.objects.order_by("pk").first()
    EmailDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PENDING)
    assert send_email.delay(str(delivery.pk)).get() == "delivered"
    assert len(mail.outbox) == sent + 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


@entry_point("task:notifications.sweep_outbox")
def test_sweeper_resends_what_nobody_tried(live_workspace, make_endpoint, receiver, ask_pending):
    make_endpoint(live_workspace)
    ask_pending()
    long_ago = timezone.now() - timedelta(days=1)
    delivery = _pending_again(WebhookDelivery)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=long_ago, last_attempt_at=long_ago
    )
    sweep_outbox.delay().get()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(receiver.received) == 2


@entry_point("task:notifications.remind_unresolved_exceptions")
def test_reminder_task_tells_owners_and_records_it(live_workspace, settings):
    settings.WARDEN_EXCEPTION_REMIND_DAYS = 7
    with transaction.atomic():
        record = exception_record(
            workspace=live_workspace,
            actor=SYSTEM,
            kind=ExceptionRecord.Kind.POLICY_ERROR,
            severity=ExceptionRecord.Severity.MEDIUM,
            what="Condition of crm.x failed",
            why="TypeError",
        )
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert remind_unresolved_exceptions.delay().get() == 1
    reminded = AuditEntry.objects.get(workspace=live_workspace, action="exception.reminded")
    assert reminded.input["exception_ids"] == [record.pk]
    assert any("open for more than 7 days" in m.body for m in mail.outbox)


def _owner_browser(workspace) -> Client:
    client = Client()
    client.force_login(workspace.memberships.get(role=Role.OWNER).user)
    return client


@entry_point("admin:notifications.webhookendpoint.reenable_selected")
def test_reenable_action_lifts_the_disable_with_its_entry(live_workspace, make_endpoint):
    endpoint = make_endpoint(live_workspace)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=timezone.now(), disabled_reason="failures"
    )
    response = _owner_browser(live_workspace).post(
        LIST_URL,
        {"reason": "test change", "action": "reenable_selected", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None and endpoint.is_active
    assert AuditEntry.objects.filter(
        workspace=live_workspace, action="webhook.changed", rationale="re-enabled"
    ).exists()


@entry_point("admin:notifications.webhookendpoint.rotate_secret")
def test_rotate_secret_action_shows_the_new_secret_once_with_its_entry(
    live_workspace, make_endpoint
):
    endpoint = make_endpoint(live_workspace)
    old = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    response = _owner_browser(live_workspace).post(
        LIST_URL,
        {"reason": "test change", "action": "rotate_secret", "_selected_action": [endpoint.pk]},
    )
    assert response.status_code == 200
    new = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    assert new != old and new in response.content.decode()
    assert AuditEntry.objects.filter(
        workspace=live_workspace, action="webhook.changed", rationale="secret rotated"
    ).exists()
