"""Notification writes: endpoint lifecycle and the outbox. Delivery attempts and the
sweeper live in notifications.delivery.

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
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from celery import current_app
from celery.exceptions import Retry
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from approvals.confirmations import answerable_user_ids
from approvals.models import ActionRequest, ConfirmationRequest
from approvals.policy import versions as policy_versions
from approvals.review_link import QUERY_PARAMETER as LINK_PARAMETER
from approvals.review_link import VERDICTS, decision_link_token, review_link_token
from audit.events import EVENTS, TargetType
from audit.models import AuditAction, ExceptionRecord
from audit.services import audit_record, audit_record_change, audit_verify_and_record
from common import background, crypto, egress
from common.actor import Actor
from common.errors import WardenError
from common.sql import insert_once
from notifications import content, signing
from notifications.models import (
    DeliveryStatus,
    DigestedConfirmation,
    EmailDelivery,
    Event,
    NotificationEvent,
    WebhookDelivery,
    WebhookEndpoint,
    WorkspaceAutomationSettings,
)
from notifications.selectors import (
    automation_settings_for,
    endpoints_subscribed,
    users_with_workspace_perm,
    webhook_host_allowlist,
)
from tenants.models import Workspace

logger = logging.getLogger("warden.notifications")

SYSTEM = Actor.system("notifications")
USER_AGENT = "Warden-Webhooks/1"
AUTOMATION_FIELDS = (
    "webhook_host_allowlist",
    "anomaly_auto_suspend",
    "email_notifications",
    "approval_remind_after_minutes",
    "approval_escalate_after_minutes",
    "approval_escalate_to",
    "slack_enabled",
    "slack_team_id",
    "slack_channel",
    "slack_dm_approvers",
    "slack_bot_token_encrypted",  # sealed (common.crypto) before it reaches a proposal
    "approval_digest_minutes",
    "unreported_result_window_minutes",
)
# Only platform operators may widen where Warden connects to (docs: "Webhooks").
OPERATOR_ONLY_FIELDS = frozenset({"webhook_host_allowlist"})


DELIVER_WEBHOOK_TASK = "notifications.deliver_webhook"
SEND_EMAIL_TASK = "notifications.send_email"


def webhook_timeout() -> float:
    return float(settings.WARDEN_WEBHOOK_TIMEOUT_SECONDS)


def max_consecutive_failures() -> int:
    return int(settings.WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES)


def max_delivery_attempts() -> int:
    return int(settings.WARDEN_WEBHOOK_MAX_ATTEMPTS)


def sweep_after() -> timedelta:
    return timedelta(seconds=int(settings.WARDEN_OUTBOX_SWEEP_AFTER_SECONDS))


def canonical_body(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------
# Workspace automation settings and endpoints (admin-facing, audited)


@transaction.atomic
def automation_settings_update(
    *,
    workspace: Workspace,
    actor: Actor,
    changes: dict,
    operator: bool = False,
    reason: str = "",
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
                "webhook_host_allowlist": egress.validate_entries(
                    changes["webhook_host_allowlist"]
                ),
            }
        except ValueError as exc:
            raise WardenError(
                "validation_error", str(exc), {"webhook_host_allowlist": [str(exc)]}
            ) from None
    _check_slack_changes(changes)
    _check_window(changes)
    current, _ = WorkspaceAutomationSettings.objects.select_for_update().get_or_create(
        workspace=workspace
    )
    before = current.snapshot()
    for field, value in changes.items():
        setattr(current, field, value)
    current.updated_at = timezone.now()
    current.save()
    if current.snapshot() != before:
        event = EVENTS[AuditAction.WORKSPACE_SETTINGS_CHANGED].change(
            target_type=TargetType.AUTOMATION_SETTINGS,
            target_id=workspace.pk,
            before=before,
            after=current.snapshot(),
            reason=reason,
        )
        audit_record_change(event, workspace=workspace, actor=actor)
        policy_versions.automation_changed(
            workspace=workspace, before=before, after=current.snapshot(), actor=actor
        )
    return current


_SLACK_IDS = {"slack_team_id": "T", "slack_channel": "CGD"}
# At most 30 days: the check looks back a bounded stretch (oversight.unreported).
MAX_UNREPORTED_WINDOW_MINUTES = 30 * 24 * 60


def _check_window(changes: dict) -> None:
    if "unreported_result_window_minutes" not in changes:
        return
    value = changes["unreported_result_window_minutes"]
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_UNREPORTED_WINDOW_MINUTES
    ):
        raise WardenError(
            "validation_error",
            f"unreported_result_window_minutes is 1-{MAX_UNREPORTED_WINDOW_MINUTES} or empty.",
            {"unreported_result_window_minutes": ["Out of range."]},
        )


def _check_slack_changes(changes: dict) -> None:
    """Slack ids are short upper-case ids (T…, C…); a bot token arrives sealed only."""
    for field, first in _SLACK_IDS.items():
        value = changes.get(field)
        if value in (None, ""):
            continue
        if (
            not isinstance(value, str)
            or len(value) > 32
            or value[0] not in first
            or not value.isalnum()
            or not value.isupper()
        ):
            raise WardenError(
                "validation_error",
                f"Not a Slack id: {field} starts with {'/'.join(first)} and holds A-Z, 0-9.",
                {field: ["Not a Slack id."]},
            )
    sealed = changes.get("slack_bot_token_encrypted")
    if sealed:
        try:
            crypto.decrypt(sealed)
        except crypto.SecretUnreadable:
            raise WardenError(
                "validation_error",
                "The Slack bot token must be sealed by Warden.",
                {"slack_bot_token_encrypted": ["Not sealed by Warden."]},
            ) from None


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
        egress.check_destination(url, webhook_host_allowlist(workspace))
    except egress.DestinationRefused as exc:
        raise WardenError("validation_error", str(exc), {"url": [str(exc)]}) from None
    return url.strip()


@dataclass(frozen=True)
class IssuedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once

    def __repr__(self) -> str:
        return f"IssuedEndpoint(endpoint={self.endpoint.pk}, secret='***')"


def _audit_endpoint(endpoint, actor, before, reason=""):
    event = EVENTS[AuditAction.WEBHOOK_CHANGED].change(
        target_id=endpoint.pk,
        before=before,
        after=endpoint.snapshot() if endpoint.pk else None,
        reason=reason,
    )
    audit_record_change(event, workspace=endpoint.workspace, actor=actor)


@transaction.atomic
def endpoint_create(
    *,
    workspace: Workspace,
    name: str,
    url: str,
    events: Iterable[str],
    actor: Actor,
    enabled: bool = True,
    reason: str = "",
) -> IssuedEndpoint:
    """Enabled, it sends notifications somewhere new: the guard refuses that unless the
    door granted it (approvals.effective.CREATION). Created switched off, it sends
    nothing and applies at once."""
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
        enabled=enabled,
        created_by=actor.label,
    )
    _audit_endpoint(endpoint, actor, None, reason=reason)
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def endpoint_update(
    *, endpoint: WebhookEndpoint, actor: Actor, changes: dict, reason: str = ""
) -> WebhookEndpoint:
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
        _audit_endpoint(endpoint, actor, before, reason=reason)
    return endpoint


@transaction.atomic
def endpoint_reenable(
    *, endpoint: WebhookEndpoint, actor: Actor, reason: str = ""
) -> WebhookEndpoint:
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
    _audit_endpoint(endpoint, actor, before, reason=reason)
    ids = list(
        endpoint.deliveries.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: enqueue_webhooks(ids))
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
def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor, reason: str = "") -> None:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = endpoint.snapshot()
    pk, workspace = endpoint.pk, endpoint.workspace
    endpoint.delete()
    event = EVENTS[AuditAction.WEBHOOK_CHANGED].change(
        target_id=pk, before=before, after=None, reason=reason
    )
    audit_record_change(event, workspace=workspace, actor=actor)


# ---------------------------------------------------------------------------
# The outbox


@dataclass(frozen=True)
class Email:
    recipient: str
    content: content.EmailContent


def _enqueue(task_name: str, ids: Iterable) -> None:
    """Best effort: a failed enqueue (broker down) leaves the row pending for the sweeper.

    Called after the commit, usually still inside the request. Without a broker (eager
    Celery) the task itself would run here, and with a broker that is down each publish
    retries for a while: both go to the background thread instead, so the agent is
    answered without waiting for a receiver or a broker (docs: "Contention and
    faults")."""
    ids = [str(pk) for pk in ids]
    if not ids:
        return
    if settings.WARDEN_DELIVERY_IN_BACKGROUND:
        background.submit(_send_now, task_name, ids)
    else:
        _send_now(task_name, ids)


def _send_now(task_name: str, ids: list[str]) -> None:
    # By name: the tasks module (registered in NotificationsConfig.ready) sits above
    # this one. The registered task object keeps eager mode working.
    task = current_app.tasks[task_name]
    for pk in ids:
        try:
            task.delay(pk)
        except Retry:  # eager mode (no broker) cannot wait for a backoff: the sweeper will
            logger.info("%s %s will be retried by the outbox sweeper", task.name, pk)
        except Exception:
            logger.exception(
                "enqueue of %s %s failed; the outbox sweeper will retry", task.name, pk
            )


def enqueue_webhooks(ids: Iterable) -> None:
    _enqueue(DELIVER_WEBHOOK_TASK, ids)


def enqueue_emails(ids: Iterable) -> None:
    _enqueue(SEND_EMAIL_TASK, ids)


@transaction.atomic
def event_publish(
    *,
    workspace: Workspace,
    event: str,
    event_key: str,
    data: dict,
    emails: Iterable[Email] = (),
    endpoints: list[WebhookEndpoint] | None = None,
) -> NotificationEvent | None:
    """Record an event and its deliveries once per `event_key`; None if already recorded.
    `endpoints`: the subscribed endpoints when the caller already looked them up."""
    if event not in Event.values:
        raise ValueError(f"unknown event {event!r}")
    now = timezone.now()
    notification = NotificationEvent(
        id=uuid.uuid4(), workspace=workspace, event=event, event_key=event_key, created_at=now
    )
    notification.payload = {
        "id": str(notification.id),
        "type": event,
        "created_at": now.isoformat(),
        "workspace": {"id": str(workspace.pk), "slug": workspace.slug},
        "data": data,
    }
    if not insert_once(notification):  # a racing publisher (signal vs. sweeper) loses
        return None
    if endpoints is None:
        endpoints = endpoints_subscribed(workspace=workspace, event=event)
    webhook_ids = [
        WebhookDelivery.objects.create(workspace=workspace, event=notification, endpoint=ep).pk
        for ep in endpoints
    ]
    email_ids = []
    emails = list(emails)
    if emails and automation_settings_for(workspace).email_notifications:
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
    transaction.on_commit(lambda: (enqueue_webhooks(webhook_ids), enqueue_emails(email_ids)))
    return notification


def _emails_to(users, rendered: content.EmailContent) -> list[Email]:
    return [Email(recipient=user.email, content=rendered) for user in users]


def _review_path(confirmation_id) -> str:
    """The approval queue's review page (admin), where approvers decide."""
    try:
        return reverse("admin:approvals_confirmationrequest_review", args=[confirmation_id])
    except NoReverseMatch:
        return "/admin/"


def _signed_review_path(confirmation) -> str:
    """The review page with a signed link (approvals.review_link): bound to this request
    and workspace, dead when the request expires, and never a credential by itself."""
    token = review_link_token(
        confirmation_id=confirmation.pk,
        workspace_id=confirmation.workspace_id,
        expires_at=confirmation.expires_at,
    )
    return f"{_review_path(confirmation.pk)}?{urlencode({LINK_PARAMETER: token})}"


def _decision_paths(confirmation) -> dict[str, str]:
    """The e-mail's Approve and Deny buttons: signed links (verdict signed in) to a
    one-press confirmation page in the approver's session; they never decide on GET."""
    paths = {}
    for verdict in VERDICTS:
        token = decision_link_token(
            confirmation_id=confirmation.pk,
            workspace_id=confirmation.workspace_id,
            expires_at=confirmation.expires_at,
            verdict=verdict,
        )
        try:
            path = reverse(
                "admin:approvals_confirmationrequest_email_decision",
                args=[confirmation.pk, verdict],
            )
        except NoReverseMatch:
            return {}
        paths[verdict] = f"{path}?{urlencode({LINK_PARAMETER: token})}"
    return paths


def _pending_confirmation(confirmation_id) -> ConfirmationRequest | None:
    confirmation = (
        ConfirmationRequest.objects.select_related(
            "workspace", "action_request__key", "action_request__tool__connector"
        )
        .filter(pk=confirmation_id)
        .first()
    )
    if confirmation is None or confirmation.status != ConfirmationRequest.Status.PENDING:
        return None
    return confirmation


def _answerable(action) -> list:
    """Who answers for the request (the requester, the key's custody, the custody of a
    key the request changes) and so may not approve it (four eyes): never asked to."""
    return list(answerable_user_ids(action))


def _confirmation_message(confirmation, *, stage_line: str = "") -> tuple[dict, Any]:
    """The webhook data and the e-mail of a pending request (requested, reminded or
    escalated: the same facts, with one line saying which)."""
    workspace = confirmation.workspace
    action = confirmation.action_request
    key = action.key  # None when a human asked (platform operations)
    review_url = content.admin_url(_signed_review_path(confirmation))
    buttons = _decision_paths(confirmation)
    tool = action.tool
    upstream = tool.connector.name if tool is not None and tool.connector_id else ""
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
        "review_url": review_url,
    }
    prefix = "Approval needed"
    if stage_line:
        prefix = {"reminded": "Still waiting", "escalated": "Escalated"}[stage_line.split(":")[0]]
    rendered = content.render_email(
        "confirmation_requested",
        {
            "stage_line": stage_line,
            "workspace_name": content.clean_line(workspace.name),
            "tool": content.clean_line(action.tool_name),
            "key_name": content.clean_line(
                f"machine key {key.name}" if key else action.requested_by
            ),
            "irreversible": confirmation.irreversible,
            "expires_at": confirmation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
            "link": review_url,
            "approve_link": content.admin_url(buttons["approve"]) if buttons else "",
            "deny_link": content.admin_url(buttons["deny"]) if buttons else "",
            "has_reason": bool(action.reason),
            # An imported tool's description is the upstream server's text: shown as
            # theirs, cleaned and quoted like the agent's.
            "upstream_server": content.clean_line(upstream) if upstream else "",
            "agent": {
                "summary": confirmation.summary,
                "reason": action.reason,
                "description": tool.description if upstream else "",
            },
        },
        subject=f"{prefix}: {action.tool_name} in {workspace.name}",
    )
    return data, rendered


def notify_confirmation_requested(*, confirmation_id) -> NotificationEvent | None:
    """Approvers learn of a pending request: webhooks, and email to every member who may
    approve it (never the key's owner, who cannot approve it anyway)."""
    confirmation = _pending_confirmation(confirmation_id)
    if confirmation is None:
        return None
    data, rendered = _confirmation_message(confirmation)
    approvers = users_with_workspace_perm(
        workspace=confirmation.workspace,
        perm="approve_actions",
        exclude=_answerable(confirmation.action_request),
    )
    if automation_settings_for(confirmation.workspace).approval_digest_minutes is not None:
        approvers = []  # the next digest lists it (confirmations_digest_due); webhooks now
    return event_publish(
        workspace=confirmation.workspace,
        event=Event.CONFIRMATION_REQUESTED,
        event_key=f"{Event.CONFIRMATION_REQUESTED}:{confirmation.pk}",
        data=data,
        emails=_emails_to(approvers, rendered),
    )


def _backup_approvers(workspace: Workspace, settings_row, exclude: list) -> list:
    """Named backup approvers who may still approve here, else the owners."""
    approvers = users_with_workspace_perm(
        workspace=workspace, perm="approve_actions", exclude=exclude
    )
    named = {email.lower() for email in settings_row.approval_escalate_to or ()}
    if named:
        return [user for user in approvers if user.email.lower() in named]
    owners = {
        user.pk for user in users_with_workspace_perm(workspace=workspace, perm="manage_workspace")
    }
    return [user for user in approvers if user.pk in owners]


def confirmations_remind_due(*, now: datetime | None = None) -> int:
    """Remind, then escalate, requests nobody decided (per workspace settings). Each
    step happens once per request (its event key), with an audit entry, in one
    transaction; the request still expires at its TTL. Returns how many went out."""
    now = now or timezone.now()
    sent = 0
    pending = (
        ConfirmationRequest.objects.filter(
            status=ConfirmationRequest.Status.PENDING, expires_at__gt=now
        )
        .select_related("workspace__automation", "action_request__key", "action_request__tool")
        .order_by("created_at")
    )
    for confirmation in pending.iterator(chunk_size=500):
        settings_row = getattr(confirmation.workspace, "automation", None)
        if settings_row is None:
            settings_row = WorkspaceAutomationSettings(workspace=confirmation.workspace)
        waited = int((now - confirmation.created_at).total_seconds() // 60)
        steps = (
            ("escalated", settings_row.approval_escalate_after_minutes),
            ("reminded", settings_row.approval_remind_after_minutes),
        )
        for stage, after in steps:
            if after is None or waited < after:
                continue
            sent += _confirmation_step(confirmation, stage, settings_row, waited)
            break  # an escalated request gets no late reminder on top
    return sent


def _confirmation_step(confirmation, stage: str, settings_row, waited: int) -> bool:
    event = {"reminded": Event.CONFIRMATION_REMINDED, "escalated": Event.CONFIRMATION_ESCALATED}
    workspace, action = confirmation.workspace, confirmation.action_request
    answerable = _answerable(action)
    if stage == "escalated":
        recipients = _backup_approvers(workspace, settings_row, answerable)
        line = f"escalated: no one has decided this request in {waited} minutes"
    else:
        recipients = users_with_workspace_perm(
            workspace=workspace, perm="approve_actions", exclude=answerable
        )
        line = f"reminded: this request has been waiting {waited} minutes"
    data, rendered = _confirmation_message(confirmation, stage_line=line)
    with transaction.atomic():
        published = event_publish(
            workspace=workspace,
            event=event[stage],
            event_key=f"{event[stage]}:{confirmation.pk}",
            data={**data, "waited_minutes": waited},
            emails=_emails_to(recipients, rendered),
        )
        if published is None:
            return False
        action_name = {
            "reminded": AuditAction.CONFIRMATION_REMINDED,
            "escalated": AuditAction.CONFIRMATION_ESCALATED,
        }[stage]
        audit_record(
            EVENTS[action_name].event(
                target_id=confirmation.pk,
                tool=action.tool_name,
                input={
                    "action_request": str(action.pk),
                    "waited_minutes": waited,
                    "notified": [user.email for user in recipients],
                },
                rationale=line,
                policy_version=action.policy_version,
                outcome=stage,
            ),
            workspace=workspace,
            actor=SYSTEM,
        )
    return True


def confirmations_digest_due(*, now: datetime | None = None) -> int:
    """Digests for workspaces that chose them (`approval_digest_minutes`): each approver
    gets, at most once per interval, one e-mail listing the pending requests they may
    decide and no digest has listed to them yet. One audit entry per digest sent.
    Returns how many digests went out."""
    now = now or timezone.now()
    sent = 0
    rows = WorkspaceAutomationSettings.objects.filter(
        approval_digest_minutes__isnull=False,
        email_notifications=True,
        workspace__deleted_at__isnull=True,
    ).select_related("workspace")
    for settings_row in rows.iterator(chunk_size=200):
        sent += _workspace_digests(settings_row, now)
    return sent


def _workspace_digests(settings_row: WorkspaceAutomationSettings, now: datetime) -> int:
    workspace = settings_row.workspace
    every = settings_row.approval_digest_minutes
    pending = list(
        ConfirmationRequest.objects.filter(
            workspace=workspace, status=ConfirmationRequest.Status.PENDING, expires_at__gt=now
        )
        .select_related("workspace", "action_request__key", "action_request__tool")
        .order_by("created_at")
    )
    if not pending:
        return 0
    answerable = {c.pk: set(_answerable(c.action_request)) for c in pending}
    sent = 0
    for user in users_with_workspace_perm(workspace=workspace, perm="approve_actions"):
        recent = DigestedConfirmation.objects.filter(
            workspace=workspace, user=user, created_at__gt=now - timedelta(minutes=every)
        )
        if every and recent.exists():
            continue
        listed = set(
            DigestedConfirmation.objects.filter(user=user, confirmation__in=pending).values_list(
                "confirmation_id", flat=True
            )
        )
        items = [c for c in pending if c.pk not in listed and user.pk not in answerable[c.pk]]
        if items:
            sent += _digest_send(workspace, user, items, every, now)
    return sent


def _digest_send(workspace: Workspace, user, items: list, every: int, now: datetime) -> bool:
    entries = []
    for confirmation in items:
        buttons = _decision_paths(confirmation)
        action = confirmation.action_request
        entries.append(
            {
                "tool": content.clean_line(action.tool_name),
                "summary": content.clean_text(confirmation.summary, limit=500),
                "quoted_summary": content.quoted(confirmation.summary),
                "irreversible": confirmation.irreversible,
                "expires_at": confirmation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                "link": content.admin_url(_signed_review_path(confirmation)),
                "approve_link": content.admin_url(buttons["approve"]) if buttons else "",
                "deny_link": content.admin_url(buttons["deny"]) if buttons else "",
            }
        )
    count = len(items)
    rendered = content.render_email(
        "confirmation_digest",
        {
            "workspace_name": content.clean_line(workspace.name),
            "entries": entries,
            "every": every,
            "count": count,
        },
        subject=f"{count} request{'s' if count != 1 else ''} waiting in {workspace.name}",
    )
    ids = [str(c.pk) for c in items]
    try:
        with transaction.atomic():
            published = event_publish(
                workspace=workspace,
                event=Event.CONFIRMATION_DIGEST,
                event_key=f"{Event.CONFIRMATION_DIGEST}:{user.pk}:{now.isoformat()}",
                data={"confirmations": ids, "every_minutes": every},
                emails=[Email(recipient=user.email, content=rendered)],
                endpoints=[],  # webhooks already had each request as it came
            )
            if published is None:
                return False
            DigestedConfirmation.objects.bulk_create(
                DigestedConfirmation(
                    workspace=workspace,
                    confirmation=confirmation,
                    user=user,
                    event=published,
                    created_at=now,
                )
                for confirmation in items
            )
            audit_record(
                EVENTS[AuditAction.CONFIRMATION_DIGEST_SENT].event(
                    target_id=user.pk,
                    input={"confirmations": ids, "recipient": user.email, "every_minutes": every},
                    rationale=f"digest of {count} pending request(s) every {every} minutes",
                    outcome="sent",
                ),
                workspace=workspace,
                actor=SYSTEM,
            )
    except IntegrityError:  # a concurrent run listed one of them first: its digest stands
        return False
    return True


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


def notify_action_decided(*, action_id, workspace_id, event: str) -> NotificationEvent | None:
    """Webhook event for the agent's side: its request was approved, denied, expired or
    executed (no email: people already saw it in the queue). Agent text is not sent:
    the ids let the agent's runner fetch the request with its key.

    Agents hear of their requests by webhook only (no email, no backfill): with no
    endpoint subscribed there is no one to tell, so nothing is read or written beyond
    that one lookup. Deliveries are fanned out when an event is recorded, so a later
    subscriber would not have received it anyway."""
    endpoints = endpoints_subscribed(workspace=workspace_id, event=event)
    if not endpoints:
        return None
    action = (
        ActionRequest.objects.select_related("workspace", "key")
        .filter(pk=action_id, workspace_id=workspace_id)
        .first()
    )
    if action is None or action.key is None:
        return None
    data = {
        "action_id": str(action.pk),
        "tool": action.tool_name,
        "status": action.status,
        "key": {"id": str(action.key.pk), "prefix": action.key.prefix},
        "dry_run": action.dry_run,
    }
    return event_publish(  # its own transaction: the event and its deliveries
        workspace=action.workspace,
        event=event,
        event_key=f"{event}:{action.pk}",
        data=data,
        endpoints=endpoints,
    )


EMAILED_ACTIONS = 20


def notify_unreported_results(
    *, workspace: Workspace, key, items: list[dict], window_minutes: int
) -> NotificationEvent | None:
    """Remind the key's owner (and endpoints subscribed to `action.unreported`) of the
    allowed actions of one key that never reported a result. Call inside the
    transaction that opened their exception records: both commit or neither.

    `items`: {"id", "tool", "decided_at", "exception_id"} per action. Ids, tool names
    and times only: never parameters, outputs or secrets."""
    if not items:
        return None
    shown = [
        {
            "id": item["id"],
            "tool": content.clean_line(item["tool"], limit=120),
            "decided_at": item["decided_at"],
        }
        for item in items[:EMAILED_ACTIONS]
    ]
    rendered = content.render_email(
        "action_unreported",
        {
            "workspace_name": content.clean_line(workspace.name),
            "key_name": content.clean_line(key.name),
            "count": len(items),
            "window_minutes": window_minutes,
            "actions": shown,
            "more": max(len(items) - EMAILED_ACTIONS, 0),
            "link": content.admin_url(
                "/admin/audit/exceptionrecord/?kind__exact=unreported_result"
            ),
        },
        subject=f"{len(items)} unreported action result(s) of key {key.name}",
    )
    owner = key.owner
    emails = (
        [Email(recipient=owner.email, content=rendered)]
        if owner is not None and owner.is_active and owner.email
        else []
    )
    data = {
        "key": {"id": str(key.pk), "prefix": key.prefix},
        "window_minutes": window_minutes,
        "count": len(items),
        "actions": items[:100],
    }
    return event_publish(
        workspace=workspace,
        event=Event.ACTION_UNREPORTED,
        # The first exception record of the batch: one reminder per batch, once.
        event_key=f"{Event.ACTION_UNREPORTED}:{items[0]['exception_id']}",
        data=data,
        emails=emails,
    )


def exceptions_remind_unresolved(*, now: datetime | None = None) -> int:
    """Tell each workspace's admins about exception records left open longer than
    WARDEN_EXCEPTION_REMIND_DAYS (once per period), instead of letting them hold audit
    retention back unnoticed. Returns how many workspaces were reminded."""
    now = now or timezone.now()
    days = settings.WARDEN_EXCEPTION_REMIND_DAYS
    cutoff = now - timedelta(days=days)
    period = int(now.timestamp() // (days * 86400))
    reminded = 0
    stale = (
        ExceptionRecord.objects.filter(resolved_at__isnull=True, created_at__lte=cutoff)
        .select_related("workspace")
        .order_by("workspace_id", "created_at")
    )
    by_workspace: dict = {}
    for record in stale:
        by_workspace.setdefault(record.workspace_id, []).append(record)
    for records in by_workspace.values():
        workspace, oldest = records[0].workspace, records[0]
        rendered = content.render_email(
            "exception_unresolved",
            {
                "workspace_name": content.clean_line(workspace.name),
                "count": len(records),
                "days": days,
                "oldest_what": content.clean_line(oldest.what, limit=300),
                "oldest_kind": oldest.kind,
                "oldest_created": oldest.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                "link": content.admin_url("/admin/audit/exceptionrecord/?resolved=open"),
            },
            subject=f"{len(records)} open exception(s) in {workspace.name}",
        )
        admins = users_with_workspace_perm(workspace=workspace, perm="manage_workspace")
        data = {
            "open": len(records),
            "older_than_days": days,
            "exception_ids": [r.pk for r in records[:100]],
        }
        with transaction.atomic():
            published = event_publish(
                workspace=workspace,
                event=Event.EXCEPTION_UNRESOLVED,
                event_key=f"{Event.EXCEPTION_UNRESOLVED}:{workspace.pk}:{period}",
                data=data,
                emails=_emails_to(admins, rendered),
            )
            if published is not None:  # the evidence shows the reminder went out, and when
                event = EVENTS[AuditAction.EXCEPTION_REMINDED].event(
                    target_id=workspace.pk,
                    input=data,
                    rationale=f"{len(records)} exception(s) open longer than {days} days",
                    outcome="reminded",
                )
                audit_record(event, workspace=workspace, actor=SYSTEM)
        reminded += published is not None
    return reminded


def chain_verification_run(
    *, workspace: Workspace, actor: Actor | None = None, now: datetime | None = None
):
    """Verify and record (audit.verified; chain_broken exception when broken), then
    notify on failure. Nightly runs act as system:chain-verify; the admin button passes
    the person who pressed it."""
    result = audit_verify_and_record(
        workspace=workspace, actor=actor or Actor.system("chain-verify")
    )
    if not result.ok:
        day = (now or timezone.now()).date().isoformat()
        notify_chain_broken(workspace=workspace, result=result, day=day)
    return result
