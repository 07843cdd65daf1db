"""Data minimisation: plain copies of action parameters and outputs are kept for the
workspace's `plain_copy_retention_days`, then replaced by their fingerprints.

What stays forever on the request: `params_digest` (SHA-256 of the canonical stored
params), `params_bytes`, `result_output_sha256` and `result_output_bytes`; the
`action.result_reported` audit entry already holds the output's digest and size only.
What goes: `ActionRequest.params`, `ActionRequest.result_output` and, through the
pruners other apps register (the gateway's executions), their copies of outputs.

Never pruned: requests still waiting for a human (pending) or for their confirmed
re-call (approved), and platform requests (`warden.*`): their params are the governed
configuration change itself, kept like version logs. Audit entries are never changed
(the chain must verify); what they hold is set at write time and follows the audit
retention (docs "Data minimisation").

Each batch is one transaction that empties the copies and appends one
`data.plain_copies_pruned` audit entry naming every row it pruned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.models import PLATFORM_TOOL_PREFIX, ActionRequest
from approvals.params import canonical_json
from approvals.results import MAX_RESULT_OUTPUT_BYTES
from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import audit_record
from common.actor import Actor
from tenants.models import Workspace

BATCH_SIZE = 500
# Outputs larger than this are recorded by digest and size only, never copied.
MAX_OUTPUT_COPY_BYTES = MAX_RESULT_OUTPUT_BYTES
_WAITING = (ActionRequest.Status.PENDING, ActionRequest.Status.APPROVED)


def fingerprint(value: Any) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a JSON value in the canonical encoding the audit
    entries use, so a digest here matches the one in the chain."""
    encoded = canonical_json(value)
    return hashlib.sha256(encoded).hexdigest(), len(encoded)


def keeps_plain_copies(workspace: Workspace) -> bool:
    """False when the workspace keeps no plain copies at all (retention 0 days)."""
    return workspace.plain_copy_retention_days != 0


def output_copy(workspace: Workspace, value: Any, size: int) -> Any:
    """The copy of an observed output to store, or None (too large, or not kept)."""
    if value is None or size > MAX_OUTPUT_COPY_BYTES or not keeps_plain_copies(workspace):
        return None
    return value


# Other apps holding copies of outputs (gateway executions) register a pruner:
# (workspace, cutoff, now, limit) -> ids of the rows it emptied (at most `limit`).
Pruner = Callable[[Workspace, datetime, datetime, int], list[str]]
PRUNERS: dict[str, Pruner] = {}


def register_pruner(name: str, pruner: Pruner) -> None:
    PRUNERS[name] = pruner


@dataclass
class PlainCopyPruneResult:
    workspace: str
    retention_days: int | None
    action_requests: int = 0
    pruned: dict[str, int] = field(default_factory=dict)
    audit_entries: int = 0


def _due_requests(workspace: Workspace, cutoff: datetime):
    """Requests whose copies are due: past the cutoff and not waiting for anyone, plus
    pruned ones whose result was reported after their pruning."""
    base = ActionRequest.objects.filter(workspace=workspace, created_at__lt=cutoff).exclude(
        tool_name__startswith=PLATFORM_TOOL_PREFIX
    )
    never = Q(plain_pruned_at__isnull=True) & ~Q(status__in=_WAITING)
    late_result = Q(plain_pruned_at__isnull=False) & (
        Q(result_output__isnull=False) | ~Q(sealed_output="")
    )
    return base.filter(never | late_result)


def _prune_requests(workspace: Workspace, cutoff: datetime, now: datetime) -> list[str]:
    rows = list(
        _due_requests(workspace, cutoff)
        .order_by("created_at")
        .only(
            "pk",
            "tool_name",
            "plain_params",
            "sealed_params",
            "data_key",
            "erased_at",
            "params_bytes",
            "result_output",
            "sealed_output",
            "result_output_sha256",
            "result_reported_at",
        )[:BATCH_SIZE]
    )
    for row in rows:
        if row.params_bytes is None:
            row.params_bytes = fingerprint(row.params)[1]
        if row.result_reported_at is not None and row.result_output is not None:
            row.result_output_sha256, row.result_output_bytes = fingerprint(row.result_output)
        row.params = {}
        row.result_output = None
        row.sealed_output = ""
        row.plain_pruned_at = now
    ActionRequest.objects.bulk_update(
        rows,
        [
            "plain_params",
            "sealed_params",
            "sealed_output",
            "params_bytes",
            "result_output",
            "result_output_sha256",
            "result_output_bytes",
            "plain_pruned_at",
        ],
    )
    return [str(row.pk) for row in rows]


def plain_copies_prune(
    *, workspace: Workspace, actor: Actor, now: datetime | None = None
) -> PlainCopyPruneResult:
    """Replace the plain copies older than the workspace's period by their digests,
    batch by batch; each batch is audited in its own transaction."""
    days = workspace.plain_copy_retention_days
    result = PlainCopyPruneResult(workspace.slug, days)
    if days is None:
        return result
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    while True:
        with transaction.atomic():
            pruned = {"action_requests": _prune_requests(workspace, cutoff, now)}
            for name, pruner in PRUNERS.items():
                pruned[name] = pruner(workspace, cutoff, now, BATCH_SIZE)
            if not any(pruned.values()):
                return result
            event = EVENTS[AuditAction.PLAIN_COPIES_PRUNED].event(
                target_id=workspace.pk,
                input={
                    "retention_days": days,
                    "cutoff": cutoff.isoformat(),
                    "kept": "sha256 digest and size of every pruned value",
                    **pruned,
                },
                rationale=f"plain copies kept {days} days; digests kept",
                outcome="pruned",
            )
            audit_record(event, workspace=workspace, actor=actor)
        result.audit_entries += 1
        for name, ids in pruned.items():
            result.pruned[name] = result.pruned.get(name, 0) + len(ids)
        result.action_requests = result.pruned.get("action_requests", 0)


def plain_copies_prune_all(
    *, actor: Actor, now: datetime | None = None
) -> list[PlainCopyPruneResult]:
    """Every active workspace with a plain-copy period."""
    workspaces = (
        Workspace.objects.active().filter(plain_copy_retention_days__isnull=False).order_by("slug")
    )
    return [plain_copies_prune(workspace=w, actor=actor, now=now) for w in workspaces]
