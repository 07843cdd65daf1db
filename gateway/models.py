"""Connectors (a workspace's upstream tool providers) and the executions Warden performs
through them. Credentials are stored only encrypted (gateway.crypto); nothing here ever
renders them."""

import re
import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from approvals import personal_data
from approvals.models import ActionRequest
from common.guarded import GuardedQuerySet
from tenants.models import Workspace

# Lowercase, no dots: a connector's name prefixes its tools (`crm.lookup`).
CONNECTOR_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?")


class Connector(models.Model):
    class Kind(models.TextChoices):
        MCP = "mcp", "MCP server (Streamable HTTP)"
        HTTP = "http", "HTTP endpoint (JSON)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=63)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MCP)
    url = models.CharField(max_length=2000)
    # Fernet token of {"Header-Name": "value or env:NAME"}; names kept apart in clear so
    # reads, the admin and the audit trail never need (or show) the values.
    headers_encrypted = models.TextField(blank=True, default="", editable=False)
    header_names = models.JSONField(default=list, blank=True, editable=False)
    # kind http only: the tools the endpoint offers, declared by a human
    # ([{"name", "description", "input_schema"}]); mcp connectors list theirs upstream.
    declared_tools = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)

    # A bulk update of the URL or the credentials meets the same guard as save().
    objects = GuardedQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="unique_connector_name")
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Connector {self.name} ({self.kind})>"

    def snapshot(self) -> dict:
        """What the audit trail keeps of a connector: header names, never values."""
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "header_names": list(self.header_names),
            "declared_tools": [t.get("name") for t in self.declared_tools or []],
            "enabled": self.enabled,
        }


class Execution(models.Model):
    """One upstream call for one allowed action request. Written before the call
    (`started`) and after it: the one-to-one link makes a second attempt for the same
    request impossible, so a retry after a crash never executes twice."""

    class Status(models.TextChoices):
        STARTED = "started"
        SUCCEEDED = "succeeded"
        TOOL_ERROR = "tool_error"  # the upstream ran the tool and reported an error
        FAILED = "failed"  # network, protocol, timeout: outcome unknown or not reached
        DRY_RUN = "dry_run"  # nothing was called

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    action_request = models.OneToOneField(
        ActionRequest, on_delete=models.CASCADE, related_name="execution"
    )
    connector = models.ForeignKey(
        Connector, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    upstream_tool = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED)
    error = models.TextField(blank=True)
    output_sha256 = models.CharField(max_length=64, blank=True)
    output_bytes = models.PositiveIntegerField(default=0)
    # The upstream's result as observed, kept for the workspace's plain-copy period
    # (approvals.minimisation) when at most MAX_OUTPUT_COPY_BYTES; the digest and size
    # above are kept forever.
    # Sealed under the action request's data key (approvals.personal_data): erasing the
    # request makes it unreadable. `output` (plain) is kept only for rows from before.
    output = models.JSONField(null=True, blank=True, editable=False)
    sealed_output = models.TextField(blank=True, editable=False)
    output_pruned_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What the tool's output projection withheld from the agent (approvals.projection):
    # {"count", "entries": [{"path", "digest", "bytes"}]}, keyed digests only, never a
    # value; null when the tool has no projection. The stored copy above is what the
    # agent received; output_sha256 is the digest of what the upstream returned.
    withheld = models.JSONField(null=True, blank=True, editable=False)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.upstream_tool}: {self.status}"

    @property
    def observed_output(self) -> Any:
        """The output copy: opened from its sealed form (None once erased or pruned)."""
        if not self.sealed_output:
            return self.output
        try:
            return self.action_request.open_value(self.sealed_output)
        except personal_data.Erased:
            return None
