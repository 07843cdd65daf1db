"""The gateway's share of data minimisation: the copy of each upstream output an
execution keeps is emptied once the workspace's plain-copy period is over (the digest
and size stay). Registered with approvals.minimisation, which audits each batch."""

from __future__ import annotations

from datetime import datetime

from gateway.models import Execution
from tenants.models import Workspace


def executions_prune_outputs(
    workspace: Workspace, cutoff: datetime, now: datetime, limit: int
) -> list[str]:
    """Empty the output copies of finished executions started before `cutoff`."""
    ids = list(
        Execution.objects.filter(
            workspace=workspace, started_at__lt=cutoff, output_pruned_at__isnull=True
        )
        .exclude(status=Execution.Status.STARTED)
        .order_by("started_at")
        .values_list("pk", flat=True)[:limit]
    )
    Execution.objects.filter(pk__in=ids).update(output=None, sealed_output="", output_pruned_at=now)
    return [str(pk) for pk in ids]
