"""The retention schedule: which workspaces are pruned, and when. Pruning itself (the
signed checkpoint, the protected rows) belongs to the evidence core, audit.retention."""

from __future__ import annotations

from datetime import datetime

from audit.retention import PruneResult, audit_prune
from common.actor import Actor
from tenants.models import Workspace


def audit_prune_all(*, actor: Actor, now: datetime | None = None) -> list[PruneResult]:
    """Every workspace with a retention setting; one transaction per workspace."""
    workspaces = Workspace.objects.filter(audit_retention_days__isnull=False).order_by("slug")
    return [audit_prune(workspace=w, actor=actor, now=now) for w in workspaces]
