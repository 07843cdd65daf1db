"""Oversight's own rows: where the audit trail is exported and how far it has gone,
and anomaly findings. They moved here from notifications (their owner is this layer's
services); the tables kept their names (migration oversight.0001_initial)."""

import uuid

from django.db import models
from django.utils import timezone

from keys.models import MachineKey
from tenants.models import Workspace


class AuditExportDestination(models.Model):
    """Where a workspace's audit trail goes on schedule, and how far it has gone.

    `last_exported_seq` advances only in the transaction that records a batch as sent,
    after the destination accepted it."""

    class Kind(models.TextChoices):
        DIRECTORY = "directory", "Directory (JSONL files)"
        WEBHOOK = "webhook", "HTTPS webhook (signed JSONL batches)"

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="audit_export"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    directory = models.CharField(
        max_length=500, blank=True, help_text="Inside one of WARDEN_EXPORT_DIRECTORY_ROOTS."
    )
    url = models.URLField(max_length=500, blank=True)
    secret = models.CharField(max_length=128, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    batch_size = models.PositiveIntegerField(default=500)
    # How each entry is written (audit/siem.py): Warden's JSONL, OCSF 1.2.0 or RFC 5424
    # syslog. Every format carries the chained row unchanged, so the copy verifies.
    format = models.CharField(
        max_length=8,
        choices=[
            ("jsonl", "JSONL (Warden's own)"),
            ("ocsf", "OCSF 1.2.0 (API Activity)"),
            ("syslog", "Syslog (RFC 5424)"),
        ],
        default="jsonl",
    )
    last_exported_seq = models.PositiveBigIntegerField(default=0, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "notifications_auditexportdestination"  # kept from notifications
        verbose_name = "audit export destination"

    def __str__(self) -> str:
        return f"{self.kind} export of {self.workspace_id}"

    def __repr__(self) -> str:
        return f"<AuditExportDestination {self.workspace_id} {self.kind}>"

    def snapshot(self) -> dict:
        return {
            "kind": self.kind,
            "directory": self.directory,
            "url": self.url,
            "enabled": self.enabled,
            "batch_size": self.batch_size,
            "format": self.format,
        }


class AuditExportBatch(models.Model):
    """A batch the destination accepted: the record that makes the cursor move."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)
    first_seq = models.PositiveBigIntegerField()
    last_seq = models.PositiveBigIntegerField()
    entries = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    target = models.CharField(max_length=500)  # file name or URL
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "notifications_auditexportbatch"  # kept from notifications
        ordering = ["workspace", "first_seq"]
        verbose_name_plural = "audit export batches"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "first_seq"], name="export_batch_once")
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} #{self.first_seq}-{self.last_seq}"


class AnomalyFinding(models.Model):
    """Dedupe for anomaly detection: one finding per key, kind and window."""

    class Kind(models.TextChoices):
        VOLUME = "volume"
        NEW_TOOL = "new_tool"
        NEW_LEVEL = "new_level"
        NEW_HOUR = "new_hour"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.ForeignKey(MachineKey, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    evidence = models.JSONField(default=dict)
    # Goes with its exception record when retention prunes it (a PROTECT here would
    # stop pruning for good at the first anomaly ever flagged).
    exception_record = models.OneToOneField(
        "audit.ExceptionRecord", on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "notifications_anomalyfinding"  # kept from notifications
        ordering = ["-window_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "kind", "window_start"], name="one_finding_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} on key {self.key_id} at {self.window_start:%Y-%m-%d %H:%M}"
