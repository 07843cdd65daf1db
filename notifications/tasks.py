"""Celery tasks: thin wrappers over notifications.delivery.

All are idempotent (a delivery is claimed with SKIP LOCKED and only while pending) and
acknowledged late, so a worker that dies mid-task leaves the message to be redelivered
and the row pending for the sweeper. Failed sends retry with exponential backoff."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from notifications import delivery, services
from notifications.slack import services as slack_services

# Backoff tops out below the sweeper's threshold, so the sweeper never competes with a
# retry chain that is still alive.
RETRY_OPTIONS = {
    "acks_late": True,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


class DeliveryRetry(Exception):
    """A send failed in a way worth retrying (network error, timeout, non-2xx)."""


@shared_task(
    name=services.DELIVER_WEBHOOK_TASK,
    autoretry_for=(DeliveryRetry, OperationalError, InterfaceError),
    **RETRY_OPTIONS,
)
def deliver_webhook(delivery_id: str) -> str:
    outcome = delivery.webhook_deliver(delivery_id=delivery_id)
    if outcome == delivery.Outcome.RETRY:
        raise DeliveryRetry(f"webhook delivery {delivery_id} failed; retrying")
    return outcome.value


@shared_task(
    name=services.SEND_EMAIL_TASK,
    autoretry_for=(DeliveryRetry, OperationalError, InterfaceError),
    **RETRY_OPTIONS,
)
def send_email(delivery_id: str) -> str:
    outcome = delivery.email_send(delivery_id=delivery_id)
    if outcome == delivery.Outcome.RETRY:
        raise DeliveryRetry(f"email delivery {delivery_id} failed; retrying")
    return outcome.value


@shared_task(name="notifications.sweep_outbox", acks_late=True)
def sweep_outbox() -> dict:
    return delivery.outbox_sweep()


@shared_task(name="notifications.remind_unresolved_exceptions", acks_late=True)
def remind_unresolved_exceptions() -> int:
    return services.exceptions_remind_unresolved()


@shared_task(name="notifications.remind_pending_confirmations")
def remind_pending_confirmations() -> int:
    """Reminders and escalations of requests nobody decided (once each, audited)."""
    return services.confirmations_remind_due()


@shared_task(
    name=slack_services.POST_TASK,
    autoretry_for=(DeliveryRetry, OperationalError, InterfaceError),
    **RETRY_OPTIONS,
)
def slack_post(message_id: str) -> str:
    """Post one request to one Slack conversation (at least once, once per row)."""
    outcome = slack_services.slack_message_post(message_id=message_id)
    if outcome == slack_services.Outcome.RETRY:
        raise DeliveryRetry(f"slack message {message_id} failed; retrying")
    return outcome.value


@shared_task(name=slack_services.UPDATE_TASK, acks_late=True)
def slack_update(confirmation_id: str) -> int:
    """Show who decided (or that it expired) in the request's Slack messages."""
    return slack_services.slack_messages_update(confirmation_id=confirmation_id)


@shared_task(name="notifications.send_approval_digests")
def send_approval_digests() -> int:
    """Digests of pending requests, for workspaces that chose them (audited each)."""
    return services.confirmations_digest_due()
