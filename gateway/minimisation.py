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


def executions_erase_outputs(workspace: Workspace, action_ids: list[str]) -> int:
    """Erasure (approvals.erasure): the requests' data keys are destroyed, which already
    makes their sealed output copies unreadable; empty those and any plain copy from
    before sealing too."""
    return (
        Execution.objects.filter(workspace=workspace, action_request_id__in=action_ids)
        .exclude(output__isnull=True, sealed_output="")
        .update(output=None, sealed_output="")
    )


def executions_seal_outputs(workspace: Workspace) -> int:
    """Plain output copies from before sealing, sealed under their request's data key."""
    rows = (
        Execution.objects.select_for_update()
        .select_related("action_request")
        .filter(workspace=workspace, output__isnull=False, sealed_output="")
    )
    sealed = 0
    for execution in rows:
        action = execution.action_request
        if action.is_erased:
            execution.output = None
        else:
            execution.sealed_output = action.seal_value(execution.output)
            execution.output = None
            action.save(update_fields=["data_key"])
        execution.save(update_fields=["output", "sealed_output"])
        sealed += 1
    return sealed
