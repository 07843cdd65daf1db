"""Evidence: append-only, hash-chained audit entries, version logs and exception records."""

from django.db import models
from django.utils import timezone

from audit.chain import GENESIS_HASH
from audit.columns import EntryColumns
from common.text import reveal_invisible


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove evidence."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only")

    # Only the retention and quarantine services may remove rows, through this explicit
    # door: one DELETE statement, no collector (the service deletes dependent rows
    # first). On PostgreSQL they go through SECURITY DEFINER functions instead, the only
    # path the append-only trigger lets through (migration 0006).
    def _prune(self) -> int:
        return self._raw_delete(self.db)


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only")


class AuditAction(models.TextChoices):
    WORKSPACE_CREATED = "workspace.created"
    WORKSPACE_SETTINGS_CHANGED = "workspace.settings_changed"
    WORKSPACE_DELETED = "workspace.deleted"
    MEMBER_ADDED = "member.added"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    MEMBER_INVITED = "member.invited"
    MEMBER_INVITATION_DECLINED = "member.invitation_declined"
    KEY_CREATED = "key.created"
    KEY_UPDATED = "key.updated"
    KEY_ROTATED = "key.rotated"
    KEY_REVOKED = "key.revoked"
    KEY_SUSPENDED = "key.suspended"
    KEY_UNSUSPENDED = "key.unsuspended"
    TOOL_CREATED = "tool.created"
    TOOL_UPDATED = "tool.updated"
    TOOL_DELETED = "tool.deleted"
    ACTION_DECIDED = "action.decided"
    ACTION_RESULT_REPORTED = "action.result_reported"
    ACTION_RESULT_MISSING = "action.result_missing"
    CONFIRMATION_APPROVED = "confirmation.approved"
    CONFIRMATION_DENIED = "confirmation.denied"
    CONFIRMATION_EXPIRED = "confirmation.expired"
    CONFIRMATION_USED = "confirmation.used"
    CONFIRMATION_REMINDED = "confirmation.reminded"
    CONFIRMATION_ESCALATED = "confirmation.escalated"
    CONFIRMATION_DIGEST_SENT = "confirmation.digest_sent"
    AUDIT_VERIFIED = "audit.verified"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_PRUNED = "audit.pruned"
    EXCEPTION_RESOLVED = "exception.resolved"
    PRIVACY_SUMMARY_DOWNLOADED = "privacy_summary.downloaded"
    ANOMALY_DETECTED = "anomaly.detected"
    POLICY_ERROR = "policy.error"
    DENIAL_RECORDED = "denial.recorded"
    GOVERNANCE_BREAK_GLASS = "governance.break_glass"
    GOVERNANCE_OVERRIDE = "governance.override"
    EXCEPTION_REMINDED = "exception.reminded"
    WEBHOOK_DISABLED = "webhook.disabled"
    WEBHOOK_CHANGED = "webhook.changed"
    SECURITY_LOGIN_THROTTLED = "security.login_throttled"
    SECURITY_KEY_GUESSING_THROTTLED = "security.key_guessing_throttled"
    CONNECTOR_CREATED = "connector.created"
    CONNECTOR_UPDATED = "connector.updated"
    CONNECTOR_DELETED = "connector.deleted"
    CONNECTOR_SYNCED = "connector.synced"
    EXECUTION_RECORDED = "execution.recorded"
    PLAIN_COPIES_PRUNED = "data.plain_copies_pruned"
    PERSONAL_DATA_ERASED = "data.personal_data_erased"
    PERSONAL_DATA_SEALED = "data.personal_data_sealed"
    CREDENTIAL_IN_PARAMS = "params.credential_digested"
    ATTACHMENT_ADDED = "evidence.attachment_added"


class AuditChainHead(models.Model):
    """The tip of one workspace's chain. Writers lock this row, so appends to a chain
    are serialized and the chain cannot fork (DESIGN.md 7)."""

    workspace = models.OneToOneField(
        "tenants.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="audit_head"
    )
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"{self.workspace_id} head #{self.seq}"


class AuditEntry(AppendOnlyModel, EntryColumns):
    # No index of its own: audit_unique_seq (workspace, seq) leads with it.
    workspace = models.ForeignKey(
        "tenants.Workspace", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    # actor ... outcome: audit.columns.EntryColumns (declared once, shared with the queue)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # HMAC of `hash` under the server's signing key (audit/signing.py): proves the entry
    # was written by the application. Empty on entries older than the column.
    mac = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["workspace", "seq"]
        verbose_name_plural = "audit entries"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "seq"], name="audit_unique_seq"),
        ]
        indexes = [
            models.Index(fields=["workspace", "actor_type", "-seq"], name="audit_actor_type"),
            models.Index(fields=["workspace", "actor", "-seq"], name="audit_actor"),
            models.Index(fields=["workspace", "action", "-seq"], name="audit_action"),
            models.Index(fields=["workspace", "tool", "-seq"], name="audit_tool"),
            models.Index(fields=["workspace", "created_at"], name="audit_created"),
            models.Index(fields=["request_id"], name="audit_request_id"),
        ]

    def __str__(self) -> str:
        # The tool may be an agent's text: hidden characters shown as markers (titles too).
        return f"#{self.seq} {self.action}" + (
            f" — {reveal_invisible(self.tool)}" if self.tool else ""
        )


class VersionLog(AppendOnlyModel):
    """Before/after of every change to a key, tool, membership or workspace setting."""

    workspace = models.ForeignKey("tenants.Workspace", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=254)
    target_type = models.CharField(max_length=48)
    target_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    audit_entry = models.OneToOneField(
        AuditEntry, on_delete=models.PROTECT, related_name="version_log"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "target_type", "target_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.target_type}:{self.target_id} by {self.actor}"


class ExceptionRecord(models.Model):
    """A denial that matters, a policy error, an anomaly or an override.

    Mutable only in its resolution fields; the record itself is also in the chain."""

    class Kind(models.TextChoices):
        DENIAL = "denial"
        POLICY_ERROR = "policy_error"
        ANOMALY = "anomaly"
        OVERRIDE = "override"
        DELIVERY_FAILURE = "delivery_failure"
        CHAIN_BROKEN = "chain_broken"
        # A parameter not declared secret looked like a credential: stored as a digest.
        CREDENTIAL_IN_PARAMS = "credential_in_params"
        # A group-commit queue row without a valid queue MAC (or a replay): quarantined.
        QUEUE_FORGED = "queue_forged"
        # An allowed action whose result was never reported (nor executed by the
        # gateway) within the workspace's window: one per action (oversight.unreported).
        UNREPORTED_RESULT = "unreported_result"

    class Severity(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"
        CRITICAL = "critical"

    workspace = models.ForeignKey("tenants.Workspace", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    severity = models.CharField(max_length=12, choices=Severity.choices)
    what = models.CharField(max_length=300)
    why = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    mitigation = models.TextField(blank=True)
    subject = models.CharField(max_length=254, blank=True)  # e.g. "key:<id>"
    resolved_by = models.CharField(max_length=254, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    audit_entry = models.OneToOneField(
        AuditEntry, on_delete=models.PROTECT, related_name="exception_record"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "kind", "created_at"])]
        constraints = [
            # Never twice for the same action, whatever runs concurrently.
            models.UniqueConstraint(
                fields=["workspace", "subject"],
                condition=models.Q(kind="unreported_result"),
                name="one_unreported_result_per_action",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}"


class KeptQuerySet(models.QuerySet):
    """Rows that are never removed, though some fields may change (delivery state)."""

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are kept")


class AuditCheckpoint(models.Model):
    """A signed statement "entry #seq of this workspace's chain has this hash, as of
    signed_at" (Ed25519, audit/checkpoints.py). Kept here and sent to the workspace's
    export destination, so a later rewrite, truncation or rewind of the chain contradicts
    a signature the database cannot make. Only the delivery fields ever change."""

    workspace = models.ForeignKey("tenants.Workspace", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=100)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_to = models.CharField(max_length=500, blank=True)

    objects = KeptQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "seq"], name="audit_checkpoint_seq"),
        ]
        indexes = [
            models.Index(
                fields=["workspace"],
                condition=models.Q(delivered_at__isnull=True),
                name="audit_checkpoint_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} checkpoint #{self.seq}"

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("AuditCheckpoint rows are kept")


class AuditQuarantine(AppendOnlyModel):
    """A row written behind the application's back, kept whole as evidence and out of
    the chain so audited writes are not blocked: either found squatting beyond the chain
    head (source beyond_head; an ExceptionRecord(kind=chain_broken) points at it), or a
    group-commit queue row whose queue MAC failed (source pending, no seq; reason
    mac_missing / mac_mismatch / replayed; an ExceptionRecord(kind=queue_forged) names
    it)."""

    class Source(models.TextChoices):
        BEYOND_HEAD = "beyond_head"
        PENDING = "pending"

    workspace = models.ForeignKey("tenants.Workspace", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    found_at = models.DateTimeField(default=timezone.now)
    row = models.JSONField(default=dict)
    # Database defaults: the SECURITY DEFINER functions insert without naming them.
    source = models.CharField(
        max_length=16, choices=Source.choices, default=Source.BEYOND_HEAD, db_default="beyond_head"
    )
    reason = models.CharField(max_length=32, blank=True, default="", db_default="")

    class Meta:
        ordering = ["workspace", "seq"]
        verbose_name_plural = "audit quarantine"

    def __str__(self) -> str:
        if self.seq is None:
            return f"{self.workspace_id} quarantined queue row ({self.reason})"
        return f"{self.workspace_id} quarantined #{self.seq}"


class EvidenceAttachment(AppendOnlyModel):
    """A link to a document kept elsewhere (a ticket, a signed change request, a
    screenshot), pinned by its SHA-256 so that a later change of the document shows.
    Attached to an approval record, an exception record or a version log of the same
    workspace (audit.attachments); never changed or removed, and recorded in the chain."""

    class Target(models.TextChoices):
        APPROVAL_RECORD = "approval_record"
        EXCEPTION_RECORD = "exception_record"
        VERSION_LOG = "version_log"

    workspace = models.ForeignKey("tenants.Workspace", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    target_type = models.CharField(max_length=24, choices=Target.choices)
    target_id = models.CharField(max_length=64)
    url = models.URLField(max_length=2000)
    sha256 = models.CharField(max_length=64)
    title = models.CharField(max_length=200, blank=True)
    added_by = models.CharField(max_length=254)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["workspace", "target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.target_type}:{self.target_id} -> {self.url}"


class AuditPending(EntryColumns):
    """An audit entry committed together with its change while the workspace's chain
    head was busy, waiting to be sealed into the chain (group commit, docs
    "Contention"). The writer seals it right after its commit, before it answers; any
    later append to the chain, or the checkpoint beat, seals what a crash left behind.
    Rows leave this queue only by becoming chain entries, or, when their queue MAC does
    not verify (not written by the application), by quarantine."""

    workspace = models.ForeignKey("tenants.Workspace", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    # actor ... outcome: audit.columns.EntryColumns, the same columns as the chain entry
    # HMAC of the row's whole content (audit.chain.pending_message) under a key derived
    # from the signing key, which the database never holds: written in the same INSERT,
    # checked by the sealer before the row may join the chain.
    mac = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["workspace", "id"]
        verbose_name_plural = "audit entries pending sealing"

    def __str__(self) -> str:
        return f"{self.workspace_id} pending {self.action}"
