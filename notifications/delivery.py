"""Sending and sweeping the outbox: one delivery attempt at a time, and the sweeper
that re-enqueues what nobody tried.

The outbox itself (events and their delivery rows, written in one transaction) lives
in notifications.services; this module only reads pending rows and attempts them. A
task claims its delivery row (SELECT ... FOR UPDATE SKIP LOCKED), sends, and marks it
delivered in the same transaction, so two workers never send the same delivery at once
and a worker that dies mid-send leaves the row pending for the sweeper. On SQLite the
send runs outside the transaction (`_sending_scope`).
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from approvals.models import ConfirmationRequest
from audit.models import AuditAction, ExceptionRecord
from audit.services import exception_record
from common import egress
from notifications import signing, transport
from notifications.models import (
    DeliveryStatus,
    EmailDelivery,
    Event,
    NotificationEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.selectors import (
    stale_email_delivery_ids,
    stale_webhook_delivery_ids,
    webhook_host_allowlist,
)
from notifications.services import (
    SYSTEM,
    USER_AGENT,
    canonical_body,
    enqueue_emails,
    enqueue_webhooks,
    max_consecutive_failures,
    max_delivery_attempts,
    notify_confirmation_requested,
    sweep_after,
    webhook_timeout,
)

logger = logging.getLogger("warden.notifications")


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # failed; try again later
    GAVE_UP = "gave_up"  # failed for good (refused URL, too many attempts)
    SKIPPED = "skipped"  # already done, gone, or another worker holds it
    ENDPOINT_DISABLED = "endpoint_disabled"


def _claim(model, pk, *related):
    qs = model.objects.select_for_update(skip_locked=True, of=("self",))
    if related:
        qs = qs.select_related(*related)
    return qs.filter(pk=pk, status=DeliveryStatus.PENDING).first()


def _sending_scope():
    """PostgreSQL: one transaction around claim, send and record, so the row lock keeps
    every other worker off this delivery while it is in flight. SQLite has no row locks,
    and an open write transaction there is the whole database's write lock: it would
    stall every request for as long as a receiver takes to answer. There the send runs
    outside any transaction and `_unchanged` lets exactly one attempt be recorded."""
    return transaction.atomic() if connection.features.has_select_for_update else nullcontext()


def _unchanged(model, pk, attempts: int) -> bool:
    """Inside the recording transaction: nobody recorded an attempt since our claim."""
    return model.objects.filter(pk=pk, status=DeliveryStatus.PENDING, attempts=attempts).exists()


def _count_failure(endpoint: WebhookEndpoint, delivery: WebhookDelivery, now: datetime) -> bool:
    """One more consecutive failure; disables the endpoint at the limit. True if disabled."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    limit = max_consecutive_failures()
    if endpoint.disabled_at is not None or endpoint.consecutive_failures < limit:
        return endpoint.disabled_at is not None
    endpoint.disabled_at = now
    endpoint.disabled_reason = f"{endpoint.consecutive_failures} consecutive failed deliveries"
    endpoint.save(update_fields=["disabled_at", "disabled_reason"])
    exception_record(
        workspace=endpoint.workspace,
        actor=SYSTEM,
        kind=ExceptionRecord.Kind.DELIVERY_FAILURE,
        severity=ExceptionRecord.Severity.MEDIUM,
        what=f"Webhook endpoint {endpoint.name!r} disabled after "
        f"{endpoint.consecutive_failures} consecutive failed deliveries",
        why="Every delivery attempt to this endpoint failed; Warden stopped sending to it.",
        evidence={
            "endpoint_id": str(endpoint.pk),
            "url": endpoint.url,
            "consecutive_failures": endpoint.consecutive_failures,
            "limit": limit,
            "last_status_code": delivery.last_status_code,
            "last_error": delivery.last_error,
            "pending_deliveries": endpoint.deliveries.filter(status=DeliveryStatus.PENDING).count(),
        },
        mitigation="Fix the receiver, then re-enable the endpoint in the admin; "
        "pending deliveries are sent then.",
        subject=f"webhook:{endpoint.pk}",
        action=AuditAction.WEBHOOK_DISABLED,
    )
    return True


def webhook_deliver(*, delivery_id, now: datetime | None = None) -> Outcome:
    """One attempt of one delivery, recorded whatever happens."""
    with _sending_scope():
        delivery = _claim(WebhookDelivery, delivery_id, "endpoint", "event", "workspace")
        if delivery is None:
            return Outcome.SKIPPED
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            return Outcome.ENDPOINT_DISABLED
        started = now or timezone.now()
        number = delivery.attempts + 1
        status_code, error, permanent = None, "", False
        clock = time.monotonic()
        try:
            target = egress.check_destination(
                endpoint.url, webhook_host_allowlist(endpoint.workspace)
            )
            body = canonical_body(delivery.event.payload)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                signing.EVENT_HEADER: delivery.event.event,
                **signing.signed_headers(
                    secret=endpoint.secret, body=body, delivery_id=str(delivery.pk)
                ),
            }
            response = transport.post(target, body, headers, timeout=webhook_timeout())
            status_code = response.status
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except egress.DestinationRefused as exc:
            error, permanent = f"refused: {exc}", True
        except transport.TransportError as exc:
            error = str(exc)
        duration_ms = int((time.monotonic() - clock) * 1000)  # timeouts take time too
        with transaction.atomic():
            if not _unchanged(WebhookDelivery, delivery.pk, number - 1):
                return Outcome.SKIPPED
            outcome = _record_webhook_attempt(
                delivery, endpoint, number, started, duration_ms, status_code, error, permanent
            )
    if outcome != Outcome.DELIVERED:
        logger.warning(
            "webhook delivery %s attempt %s to endpoint %s failed: %s (%s)",
            delivery.pk,
            number,
            endpoint.pk,
            error,
            outcome.value,
        )
    return outcome


def _record_webhook_attempt(
    delivery, endpoint, number, started, duration_ms, status_code, error, permanent
) -> Outcome:
    ok = not error
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=started,
        duration_ms=duration_ms,
        status_code=status_code,
        ok=ok,
        error=error[:500],
    )
    delivery.attempts = number
    delivery.last_attempt_at = started
    delivery.last_status_code = status_code
    delivery.last_error = error[:500]
    if ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = timezone.now()
        WebhookEndpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )
        outcome = Outcome.DELIVERED
    else:
        if permanent or number >= max_delivery_attempts():
            delivery.status = DeliveryStatus.FAILED
            outcome = Outcome.GAVE_UP
        else:
            outcome = Outcome.RETRY
        if _count_failure(endpoint, delivery, started):
            outcome = Outcome.ENDPOINT_DISABLED if outcome == Outcome.RETRY else outcome
    delivery.save()
    return outcome


def email_send(*, delivery_id, now: datetime | None = None) -> Outcome:
    with _sending_scope():
        delivery = _claim(EmailDelivery, delivery_id)
        if delivery is None:
            return Outcome.SKIPPED
        claimed_attempts = delivery.attempts
        started = now or timezone.now()
        delivery.attempts += 1
        delivery.last_attempt_at = started
        message = EmailMultiAlternatives(
            subject=delivery.subject,
            body=delivery.body_text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[delivery.recipient],
        )
        if delivery.body_html:
            message.attach_alternative(delivery.body_html, "text/html")
        try:
            message.send(fail_silently=False)
        except Exception as exc:  # SMTP, network, bad header: all recorded and retried
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
            if delivery.attempts >= max_delivery_attempts():
                delivery.status = DeliveryStatus.FAILED
                outcome = Outcome.GAVE_UP
            else:
                outcome = Outcome.RETRY
        else:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.sent_at = timezone.now()
            delivery.last_error = ""
            outcome = Outcome.DELIVERED
        with transaction.atomic():
            if not _unchanged(EmailDelivery, delivery.pk, claimed_attempts):
                return Outcome.SKIPPED
            delivery.save()
    return outcome


# --- the sweeper ----------------------------------------------------------------


def outbox_sweep(
    *, now: datetime | None = None, stale_after: timedelta | None = None, limit: int = 500
) -> dict:
    """Re-enqueue deliveries nobody has tried for `stale_after` (default: longer than
    the longest retry backoff, so live retry chains are left alone), and publish
    confirmation notifications whose signal never arrived."""
    now = now or timezone.now()
    cutoff = now - (stale_after if stale_after is not None else sweep_after())
    webhook_ids = stale_webhook_delivery_ids(cutoff=cutoff, limit=limit)
    email_ids = stale_email_delivery_ids(cutoff=cutoff, limit=limit)
    enqueue_webhooks(webhook_ids)
    enqueue_emails(email_ids)
    backfilled = _backfill_confirmations(now=now, limit=limit)
    return {"webhooks": len(webhook_ids), "emails": len(email_ids), "backfilled": backfilled}


def _backfill_confirmations(*, now: datetime, limit: int) -> int:
    candidates = list(
        ConfirmationRequest.objects.filter(
            status=ConfirmationRequest.Status.PENDING,
            created_at__lt=now - timedelta(minutes=2),
            expires_at__gt=now,
            created_at__gt=now - timedelta(days=1),
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    prefix = f"{Event.CONFIRMATION_REQUESTED}:"
    keys = {f"{prefix}{pk}": pk for pk in candidates}
    done = set(
        NotificationEvent.objects.filter(event_key__in=list(keys)).values_list(
            "event_key", flat=True
        )
    )
    count = 0
    for event_key, pk in keys.items():
        if event_key not in done and notify_confirmation_requested(confirmation_id=pk):
            count += 1
    return count
