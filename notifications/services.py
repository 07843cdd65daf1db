"""Notification writes: endpoint lifecycle, the outbox, and delivery attempts.

Delivery is at-least-once with an idempotency id. An event and its deliveries are
written in one transaction (the outbox); tasks are enqueued only after it commits.
A task claims its delivery row (SELECT ... FOR UPDATE SKIP LOCKED), sends, and marks
it delivered in the same transaction, so two workers never send the same delivery at
once and a worker that dies mid-send leaves the row pending (its transaction rolls
back). The sweeper re-enqueues pending rows nobody has tried for a while, which
covers a lost enqueue and a killed worker. A delivery can therefore reach a receiver
twice (sent, then the worker died before recording it), always with the same
X-Warden-Delivery id: a receiver that drops ids it has seen observes each event once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audit.models import AuditAction, ExceptionRecord
from audit.services import audit_record_change, exception_record
from common.actor import Actor
from common.errors import WardenError
from notifications import content, signing, transport
from notifications.models import (
    DeliveryStatus,
    EmailDelivery,
    Event,
    NotificationEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WorkspaceAutomationSettings,
)
from notifications.selectors import (
    automation_settings_for,
    endpoints_subscribed,
    stale_email_delivery_ids,
    stale_webhook_delivery_ids,
    users_with_workspace_perm,
    webhook_host_allowlist,
)
from tenants.models import Workspace

logger = logging.getLogger("warden.notifications")

SYSTEM = Actor.system("notifications")
USER_AGENT = "Warden-Webhooks/1"
AUTOMATION_FIELDS = ("webhook_host_allowlist", "anomaly_auto_suspend", "email_notifications")
# Only platform operators may widen where Warden connects to (README: "Webhooks").
OPERATOR_ONLY_FIELDS = frozenset({"webhook_host_allowlist"})


def _setting(name: str, default):
    return getattr(settings, name, default)


def webhook_timeout() -> float:
    return float(_setting("WARDEN_WEBHOOK_TIMEOUT_SECONDS", 10))


def max_consecutive_failures() -> int:
    return int(_setting("WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES", 5))


def max_delivery_attempts() -> int:
    return int(_setting("WARDEN_WEBHOOK_MAX_ATTEMPTS", 15))


def sweep_after() -> timedelta:
    return timedelta(seconds=int(_setting("WARDEN_OUTBOX_SWEEP_AFTER_SECONDS", 900)))


def canonical_body(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------
# Workspace automation settings and endpoints (admin-facing, audited)


@transaction.atomic
def automation_settings_update(
    *, workspace: Workspace, actor: Actor, changes: dict, operator: bool = False
) -> WorkspaceAutomationSettings:
    """`operator` is true for platform staff (superusers): only they may change the
    webhook host allowlist."""
    unknown = sorted(set(changes) - set(AUTOMATION_FIELDS))
    if unknown:
        raise WardenError("validation_error", "Unknown automation settings.", {"fields": unknown})
    if not operator and OPERATOR_ONLY_FIELDS & set(changes):
        raise WardenError(
            "permission_denied", "Only platform operators may change the webhook host allowlist."
        )
    if "webhook_host_allowlist" in changes:
        try:
            changes = {
                **changes,
                "webhook_host_allowlist": transport.validate_entries(
                    changes["webhook_host_allowlist"]
                ),
            }
        except ValueError as exc:
            raise WardenError(
                "validation_error", str(exc), {"webhook_host_allowlist": [str(exc)]}
            ) from None
    current, _ = WorkspaceAutomationSettings.objects.select_for_update().get_or_create(
        workspace=workspace
    )
    before = current.snapshot()
    for field, value in changes.items():
        setattr(current, field, value)
    current.updated_at = timezone.now()
    current.save()
    if current.snapshot() != before:
        audit_record_change(
            workspace=workspace,
            actor=actor,
            action=AuditAction.WORKSPACE_SETTINGS_CHANGED,
            target_type="automation_settings",
            target_id=workspace.pk,
            before=before,
            after=current.snapshot(),
        )
    return current


def _clean_events(events: Iterable[str]) -> list[str]:
    events = sorted(set(events or []))
    unknown = [e for e in events if e not in Event.values]
    if unknown or not events:
        raise WardenError(
            "validation_error",
            "Subscribe to at least one known event.",
            {"events": [f"known events: {', '.join(Event.values)}"]},
        )
    return events


def _check_url(workspace: Workspace, url: str) -> str:
    try:
        transport.check_destination(url, webhook_host_allowlist(workspace))
    except transport.DestinationRefused as exc:
        raise WardenError("validation_error", str(exc), {"url": [str(exc)]}) from None
    return url.strip()


@dataclass(frozen=True)
class IssuedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once

    def __repr__(self) -> str:
        return f"IssuedEndpoint(endpoint={self.endpoint.pk}, secret='***')"


def _audit_endpoint(endpoint, actor, before, reason=""):
    audit_record_change(
        workspace=endpoint.workspace,
        actor=actor,
        action=AuditAction.WEBHOOK_CHANGED,
        target_type="webhook_endpoint",
        target_id=endpoint.pk,
        before=before,
        after=endpoint.snapshot() if endpoint.pk else None,
        reason=reason,
    )


@transaction.atomic
def endpoint_create(
    *, workspace: Workspace, name: str, url: str, events: Iterable[str], actor: Actor
) -> IssuedEndpoint:
    name = content.clean_line(name, limit=100).strip()
    if not name:
        raise WardenError("validation_error", "An endpoint needs a name.", {"name": ["Required."]})
    secret = signing.new_secret()
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace,
        name=name,
        url=_check_url(workspace, url),
        events=_clean_events(events),
        secret=secret,
        created_by=actor.label,
    )
    _audit_endpoint(endpoint, actor, None)
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, actor: Actor, changes: dict) -> WebhookEndpoint:
    unknown = sorted(set(changes) - {"name", "url", "events", "enabled"})
    if unknown:
        raise WardenError("validation_error", "Unknown endpoint fields.", {"fields": unknown})
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = endpoint.snapshot()
    if "url" in changes:
        endpoint.url = _check_url(endpoint.workspace, changes["url"])
    if "events" in changes:
        endpoint.events = _clean_events(changes["events"])
    if "name" in changes:
        endpoint.name = content.clean_line(changes["name"], limit=100).strip() or endpoint.name
    if "enabled" in changes:
        endpoint.enabled = bool(changes["enabled"])
    endpoint.save()
    if endpoint.snapshot() != before:
        _audit_endpoint(endpoint, actor, before)
    return endpoint


@transaction.atomic
def endpoint_reenable(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """Lift an automatic disable; pending deliveries go out on the next sweep."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if endpoint.disabled_at is None and endpoint.enabled:
        return endpoint
    before = endpoint.snapshot()
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.consecutive_failures = 0
    endpoint.enabled = True
    endpoint.save()
    _audit_endpoint(endpoint, actor, before, reason="re-enabled")
    ids = list(
        endpoint.deliveries.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: _enqueue_webhooks(ids))
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor) -> IssuedEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = signing.new_secret()
    endpoint.secret = secret
    endpoint.save(update_fields=["secret"])
    _audit_endpoint(endpoint, actor, endpoint.snapshot(), reason="secret rotated")
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = endpoint.snapshot()
    pk, workspace = endpoint.pk, endpoint.workspace
    endpoint.delete()
    audit_record_change(
        workspace=workspace,
        actor=actor,
        action=AuditAction.WEBHOOK_CHANGED,
        target_type="webhook_endpoint",
        target_id=pk,
        before=before,
        after=None,
    )


# ---------------------------------------------------------------------------
# The outbox


@dataclass(frozen=True)
class Email:
    recipient: str
    content: content.EmailContent


def _enqueue(task, ids: Iterable) -> None:
    """Best effort: a failed enqueue (broker down) leaves the row pending for the sweeper."""
    from celery.exceptions import Retry

    for pk in ids:
        try:
            task.delay(str(pk))
        except Retry:  # eager mode (no broker) cannot wait for a backoff: the sweeper will
            logger.info("%s %s will be retried by the outbox sweeper", task.name, pk)
        except Exception:
            logger.exception(
                "enqueue of %s %s failed; the outbox sweeper will retry", task.name, pk
            )


def _enqueue_webhooks(ids: Iterable) -> None:
    from notifications.tasks import deliver_webhook

    _enqueue(deliver_webhook, ids)


def _enqueue_emails(ids: Iterable) -> None:
    from notifications.tasks import send_email

    _enqueue(send_email, ids)


@transaction.atomic
def event_publish(
    *,
    workspace: Workspace,
    event: str,
    event_key: str,
    data: dict,
    emails: Iterable[Email] = (),
) -> NotificationEvent | None:
    """Record an event and its deliveries once per `event_key`; None if already recorded."""
    if event not in Event.values:
        raise ValueError(f"unknown event {event!r}")
    if NotificationEvent.objects.filter(event_key=event_key).exists():
        return None
    event_id = uuid.uuid4()
    now = timezone.now()
    payload = {
        "id": str(event_id),
        "type": event,
        "created_at": now.isoformat(),
        "workspace": {"id": str(workspace.pk), "slug": workspace.slug},
        "data": data,
    }
    try:
        with transaction.atomic():  # a racing publisher (signal vs. sweeper) loses cleanly
            notification = NotificationEvent.objects.create(
                id=event_id,
                workspace=workspace,
                event=event,
                event_key=event_key,
                payload=payload,
                created_at=now,
            )
    except IntegrityError:
        return None
    webhook_ids = [
        WebhookDelivery.objects.create(workspace=workspace, event=notification, endpoint=ep).pk
        for ep in endpoints_subscribed(workspace=workspace, event=event)
    ]
    email_ids = []
    if automation_settings_for(workspace).email_notifications:
        seen = set()
        for email in emails:
            if email.recipient.lower() in seen:
                continue
            seen.add(email.recipient.lower())
            email_ids.append(
                EmailDelivery.objects.create(
                    workspace=workspace,
                    event=notification,
                    recipient=email.recipient,
                    subject=email.content.subject,
                    body_text=email.content.text,
                    body_html=email.content.html,
                ).pk
            )
    transaction.on_commit(lambda: (_enqueue_webhooks(webhook_ids), _enqueue_emails(email_ids)))
    return notification


def _emails_to(users, rendered: content.EmailContent) -> list[Email]:
    return [Email(recipient=user.email, content=rendered) for user in users]


def _review_path(confirmation_id) -> str:
    """The approval queue's review page (admin), where approvers decide."""
    try:
        return reverse("admin:approvals_confirmationrequest_review", args=[confirmation_id])
    except NoReverseMatch:
        return "/admin/"


def notify_confirmation_requested(*, confirmation_id) -> NotificationEvent | None:
    """Approvers learn of a pending request: webhooks, and email to every member who may
    approve it (never the key's owner, who cannot approve it anyway)."""
    from approvals.models import ConfirmationRequest

    confirmation = (
        ConfirmationRequest.objects.select_related(
            "workspace", "action_request__key", "action_request__tool"
        )
        .filter(pk=confirmation_id)
        .first()
    )
    if confirmation is None or confirmation.status != ConfirmationRequest.Status.PENDING:
        return None
    workspace = confirmation.workspace
    action = confirmation.action_request
    key = action.key  # None when a human asked (platform operations)
    review_path = _review_path(confirmation.pk)
    data = {
        "confirmation_id": str(confirmation.pk),
        "action_request_id": str(action.pk),
        "tool": action.tool_name,
        "summary": confirmation.summary,
        "reason": action.reason,
        "irreversible": confirmation.irreversible,
        "approvals_required": confirmation.approvals_required,
        "dry_run": action.dry_run,
        "expires_at": confirmation.expires_at.isoformat(),
        "requested_by": action.requested_by,
        "key": {"id": str(key.pk), "name": key.name} if key else None,
        "review_url": content.admin_url(review_path),
    }
    rendered = content.render_email(
        "confirmation_requested",
        {
            "workspace_name": content.clean_line(workspace.name),
            "tool": content.clean_line(action.tool_name),
            "key_name": content.clean_line(
                f"machine key {key.name}" if key else action.requested_by
            ),
            "irreversible": confirmation.irreversible,
            "expires_at": confirmation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
            "link": content.admin_url(review_path),
            "has_reason": bool(action.reason),
            "agent": {"summary": confirmation.summary, "reason": action.reason},
        },
        subject=f"Approval needed: {action.tool_name} in {workspace.name}",
    )
    # Four eyes: whoever answers for the request (the key's owner) cannot approve it.
    answerable = [action.accountable_user_id, key.owner_id if key else None]
    approvers = users_with_workspace_perm(
        workspace=workspace, perm="approve_actions", exclude=answerable
    )
    return event_publish(
        workspace=workspace,
        event=Event.CONFIRMATION_REQUESTED,
        event_key=f"{Event.CONFIRMATION_REQUESTED}:{confirmation.pk}",
        data=data,
        emails=_emails_to(approvers, rendered),
    )


def notify_anomaly(*, finding, suspended: bool) -> NotificationEvent | None:
    """Call inside the finding's transaction: the notification commits with it."""
    workspace, key = finding.workspace, finding.key
    record: ExceptionRecord = finding.exception_record
    data = {
        "exception_id": record.pk,
        "kind": finding.kind,
        "key": {"id": str(key.pk), "name": key.name},
        "window_start": finding.window_start.isoformat(),
        "window_end": finding.window_end.isoformat(),
        "what": record.what,
        "evidence": finding.evidence,
        "key_suspended": suspended,
    }
    rendered = content.render_email(
        "anomaly_detected",
        {
            "workspace_name": content.clean_line(workspace.name),
            "key_name": content.clean_line(key.name),
            "what": content.clean_line(record.what, limit=300),
            "window_start": finding.window_start.strftime("%Y-%m-%d %H:%M UTC"),
            "window_end": finding.window_end.strftime("%Y-%m-%d %H:%M UTC"),
            "suspended": suspended,
            "evidence": [
                (content.clean_line(k), content.clean_line(json.dumps(v), limit=300))
                for k, v in sorted(finding.evidence.items())
            ],
            "link": content.admin_url("/admin/audit/exceptionrecord/"),
        },
        subject=f"Anomaly on key {key.name} in {workspace.name}",
    )
    admins = users_with_workspace_perm(workspace=workspace, perm="manage_keys")
    return event_publish(
        workspace=workspace,
        event=Event.ANOMALY_DETECTED,
        event_key=f"{Event.ANOMALY_DETECTED}:{finding.pk}",
        data=data,
        emails=_emails_to(admins, rendered),
    )


def notify_chain_broken(*, workspace: Workspace, result, day: str) -> NotificationEvent | None:
    data = {
        "entries_checked": result.entries_checked,
        "first_bad_seq": result.first_bad_seq,
        "problem": result.problem,
        "verified_on": day,
    }
    rendered = content.render_email(
        "chain_broken",
        {
            "workspace_name": content.clean_line(workspace.name),
            "first_bad_seq": result.first_bad_seq,
            "problem": content.clean_line(result.problem, limit=300),
            "entries_checked": result.entries_checked,
        },
        subject=f"Audit chain verification FAILED in {workspace.name}",
    )
    auditors = users_with_workspace_perm(workspace=workspace, perm="view_audit")
    return event_publish(
        workspace=workspace,
        event=Event.AUDIT_CHAIN_BROKEN,
        event_key=f"{Event.AUDIT_CHAIN_BROKEN}:{workspace.pk}:{day}:{result.first_bad_seq}",
        data=data,
        emails=_emails_to(auditors, rendered),
    )


def chain_verification_run(
    *, workspace: Workspace, actor: Actor | None = None, now: datetime | None = None
):
    """Verify and record (audit.verified; chain_broken exception when broken), then
    notify on failure. Nightly runs act as system:chain-verify; the admin button passes
    the person who pressed it."""
    from audit.services import audit_verify_and_record

    result = audit_verify_and_record(
        workspace=workspace, actor=actor or Actor.system("chain-verify")
    )
    if not result.ok:
        day = (now or timezone.now()).date().isoformat()
        notify_chain_broken(workspace=workspace, result=result, day=day)
    return result


# ---------------------------------------------------------------------------
# Sending


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
    with transaction.atomic():
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
            target = transport.check_destination(
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
        except transport.DestinationRefused as exc:
            error, permanent = f"refused: {exc}", True
        except transport.TransportError as exc:
            error = str(exc)
        duration_ms = int((time.monotonic() - clock) * 1000)  # timeouts take time too
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


def email_send(*, delivery_id, now: datetime | None = None) -> Outcome:
    with transaction.atomic():
        delivery = _claim(EmailDelivery, delivery_id)
        if delivery is None:
            return Outcome.SKIPPED
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
        delivery.save()
    return outcome


# ---------------------------------------------------------------------------
# The sweeper


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
    _enqueue_webhooks(webhook_ids)
    _enqueue_emails(email_ids)
    backfilled = _backfill_confirmations(now=now, limit=limit)
    return {"webhooks": len(webhook_ids), "emails": len(email_ids), "backfilled": backfilled}


def _backfill_confirmations(*, now: datetime, limit: int) -> int:
    from approvals.models import ConfirmationRequest

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
