"""Background-work state: notification outbox, webhook endpoints and their delivery
log, per-workspace automation settings, Slack approvals. Audit evidence itself stays in
audit/; export destinations and anomaly findings belong to oversight/."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from common import crypto
from tenants.models import Workspace


class Event(models.TextChoices):
    """What a webhook endpoint may subscribe to (and what we email about)."""

    CONFIRMATION_REQUESTED = "confirmation.requested"
    CONFIRMATION_REMINDED = "confirmation.reminded"
    CONFIRMATION_ESCALATED = "confirmation.escalated"
    CONFIRMATION_DIGEST = "confirmation.digest"
    ANOMALY_DETECTED = "anomaly.detected"
    AUDIT_CHAIN_BROKEN = "audit.chain_broken"
    EXCEPTION_UNRESOLVED = "exception.unresolved"
    ACTION_APPROVED = "action.approved"
    ACTION_DENIED = "action.denied"
    ACTION_EXPIRED = "action.expired"
    ACTION_EXECUTED = "action.executed"
    # An allowed action with no reported result (and no gateway execution) in time.
    ACTION_UNREPORTED = "action.unreported"


def token_fingerprint(sealed: str) -> str:
    """A keyed digest of a sealed credential's plaintext ("" when none is stored): what
    snapshots, audit rows and the door compare instead of the secret."""
    if not sealed:
        return ""
    try:
        plain = crypto.decrypt(sealed)
    except crypto.SecretUnreadable:
        return "unreadable"
    return salted_hmac("warden.notifications.slack-token", plain, algorithm="sha256").hexdigest()[
        :16
    ]


class WorkspaceAutomationSettings(models.Model):
    """Per-workspace knobs for background work, kept out of tenants' migrations.

    The webhook host allowlist is a platform-operator setting (superusers only in the
    admin): it is what stops a workspace from pointing Warden at internal addresses."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="automation"
    )
    webhook_host_allowlist = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Hosts webhooks and exports may reach: exact host, *.suffix, or an IP/CIDR "
            "(private and loopback addresses need an IP/CIDR entry). Empty: deny all."
        ),
    )
    anomaly_auto_suspend = models.BooleanField(
        default=False,
        help_text="Suspend a machine key (revocably) when anomaly detection flags it.",
    )
    email_notifications = models.BooleanField(
        default=True, help_text="Email approvers and admins about events."
    )
    # A pending request nobody decides is reminded, then escalated, then expires (the
    # workspace's confirmation TTL); each step once per request, each one audited.
    approval_remind_after_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=60,
        help_text="Remind the approvers of a request still pending after this many "
        "minutes. Empty: no reminder.",
    )
    approval_escalate_after_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=240,
        help_text="Escalate a request still pending after this many minutes to the backup "
        "approvers (or the owners). Empty: no escalation.",
    )
    approval_escalate_to = models.JSONField(
        default=list,
        blank=True,
        help_text="E-mail addresses of backup approvers (members who may approve). "
        "Empty: the workspace's owners.",
    )
    # Slack (docs "Slack"): where approver messages go and which Slack workspace's
    # presses count. All of it is policy-bearing (approvals.effective): changing it goes
    # through the door. The bot token is stored encrypted (common.crypto), write-only.
    slack_enabled = models.BooleanField(
        default=False, help_text="Post each confirmation request to Slack with Approve / Deny."
    )
    slack_team_id = models.CharField(
        max_length=32,
        blank=True,
        help_text="The Slack workspace (team id, T…) whose button presses are accepted.",
    )
    slack_channel = models.CharField(
        max_length=80, blank=True, help_text="Channel id (C…) to post requests to. Empty: none."
    )
    slack_dm_approvers = models.BooleanField(
        default=False,
        help_text="Also message each approver who linked their Slack account, directly.",
    )
    slack_bot_token_encrypted = models.TextField(blank=True, default="", editable=False)
    # Empty: one e-mail per request as it arrives. A number: each approver gets one
    # digest of the requests still pending every that many minutes instead (webhooks
    # still go out per request; reminders and escalations still go out on their own).
    approval_digest_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=None,
        help_text="Send approvers one digest of pending requests every this many minutes "
        "instead of one e-mail per request. Empty: one e-mail per request.",
    )
    # On the ask-only path the agent acts with its own credentials and reports what
    # happened (POST /actions/{id}/result): an allowed action with no result (and no
    # gateway execution) after this long opens an exception record and reminds the
    # key's owner (oversight.unreported). Longer, or empty (off), is governed.
    unreported_result_window_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=1440,
        help_text="Flag an allowed action whose result the agent has not reported after "
        "this many minutes (an exception record, and a reminder to the key's owner). "
        "Empty: never.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "automation settings"
        verbose_name_plural = "automation settings"

    def __str__(self) -> str:
        return f"automation settings of {self.workspace_id}"

    def snapshot(self) -> dict:
        return {
            "webhook_host_allowlist": list(self.webhook_host_allowlist),
            "anomaly_auto_suspend": self.anomaly_auto_suspend,
            "email_notifications": self.email_notifications,
            "approval_remind_after_minutes": self.approval_remind_after_minutes,
            "approval_escalate_after_minutes": self.approval_escalate_after_minutes,
            "approval_escalate_to": list(self.approval_escalate_to),
            "slack_enabled": self.slack_enabled,
            "slack_team_id": self.slack_team_id,
            "slack_channel": self.slack_channel,
            "slack_dm_approvers": self.slack_dm_approvers,
            # Never the token: a keyed digest that tells two tokens apart.
            "slack_bot_token_encrypted": token_fingerprint(self.slack_bot_token_encrypted),
            "approval_digest_minutes": self.approval_digest_minutes,
            "unreported_result_window_minutes": self.unreported_result_window_minutes,
        }


class WebhookEndpoint(models.Model):
    """An outgoing webhook. The signing secret is stored as-is: HMAC signing needs the
    raw secret, so it cannot be hashed like a machine key (docs: "Webhook secrets")."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128, editable=False)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    enabled = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    created_by = models.CharField(max_length=254, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["workspace", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"

    def __repr__(self) -> str:  # never let the secret reach a log or traceback
        return f"<WebhookEndpoint {self.pk} {self.url}>"

    @property
    def is_active(self) -> bool:
        return self.enabled and self.disabled_at is None

    def snapshot(self) -> dict:
        """Secret-free description for version logs and audit rows."""
        return {
            "name": self.name,
            "url": self.url,
            "events": sorted(self.events),
            "enabled": self.enabled,
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


class NotificationEvent(models.Model):
    """The outbox: one row per thing that happened, fanned out to deliveries in the
    same transaction. `event_key` makes fan-out idempotent (signal sent twice, sweeper
    backfill racing the signal)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=48, choices=Event.choices)
    event_key = models.CharField(max_length=200, unique=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "event", "created_at"])]

    def __str__(self) -> str:
        return self.event_key


class DigestedConfirmation(models.Model):
    """A request listed in one approver's digest: a digest never lists it to them again
    (a reminder or an escalation is its own message)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    confirmation = models.ForeignKey(
        "approvals.ConfirmationRequest", on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(NotificationEvent, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["confirmation", "user"], name="digest_once_per_approver"
            )
        ]

    def __str__(self) -> str:
        return f"{self.confirmation_id} in a digest to {self.user_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up: refused URL or too many attempts


class OutboxItem(models.Model):
    """What the outbox and its sweeper need of every delivery, webhook or email."""

    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True


class WebhookDelivery(OutboxItem):
    """One event to one endpoint. Its id is the X-Warden-Delivery header, stable across
    retries, so a receiver can drop duplicates."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(
        NotificationEvent, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="one_delivery_per_endpoint")
        ]
        indexes = [models.Index(fields=["status", "last_attempt_at"], name="webhook_sweep")]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id}: {self.status}"


class WebhookAttempt(models.Model):
    """Each HTTP attempt of a delivery: what came back and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"


class EmailDelivery(OutboxItem):
    """One email to one recipient, through the same outbox and sweeper as webhooks."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(
        NotificationEvent, on_delete=models.CASCADE, related_name="email_deliveries"
    )
    recipient = models.EmailField()
    subject = models.CharField(max_length=200)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "email deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "recipient"], name="one_email_per_recipient")
        ]
        indexes = [models.Index(fields=["status", "last_attempt_at"], name="email_sweep")]

    def __str__(self) -> str:
        return f"{self.subject} -> {self.recipient}: {self.status}"


class SlackIdentity(models.Model):
    """A Slack user linked to a Warden user, by that user in their own admin session
    (docs "Slack"). Only a linked Slack user's presses decide anything, and they decide
    as the Warden user: the same permissions, four eyes and custody as in the admin."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_identities"
    )
    team_id = models.CharField(max_length=32)
    slack_user_id = models.CharField(max_length=32)
    linked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "Slack identities"
        constraints = [
            models.UniqueConstraint(
                fields=["team_id", "slack_user_id"], name="one_warden_user_per_slack_user"
            ),
            models.UniqueConstraint(fields=["team_id", "user"], name="one_slack_user_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.slack_user_id}@{self.team_id} -> {self.user_id}"


class SlackMessage(models.Model):
    """One confirmation request posted to one Slack conversation. Its row makes posting
    idempotent (a retried or duplicated task posts nothing twice once `ts` is known) and
    says which message to update after a decision."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    confirmation = models.ForeignKey(
        "approvals.ConfirmationRequest", on_delete=models.CASCADE, related_name="+"
    )
    channel = models.CharField(max_length=80)  # channel id, or a user id for a DM
    conversation = models.CharField(max_length=80, blank=True)  # where Slack posted it
    ts = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["confirmation", "channel"], name="one_slack_message_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.confirmation_id} -> {self.channel}: {self.ts or 'unposted'}"
