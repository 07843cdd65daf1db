"""The export side of the governed operations (approvals.governance): disabling a
workspace's only audit export destination. Registered with the guard and the door from
OversightConfig.ready()."""

from __future__ import annotations

from approvals import door, guard
from approvals.door import Proposal
from approvals.governance import Target
from oversight import scheduled_export
from oversight.models import AuditExportDestination


def export_snapshot(destination: AuditExportDestination) -> dict:
    # One destination per workspace: it is always the only one.
    return {**destination.snapshot(), "active": destination.enabled, "other_active": 0}


def export_disable(destination: AuditExportDestination) -> Proposal:
    before = export_snapshot(destination)
    return Proposal(
        Target.EXPORT,
        "disable",
        f"audit export of {destination.workspace}",
        before,
        {**before, "enabled": False, "active": False},
        str(destination.pk),
        {},
    )


def export_configure(destination: AuditExportDestination, changes: dict) -> Proposal:
    """Re-pointing where the signed checkpoints go (kind, directory, url), changing the
    format the customer's copy is written in, or switching the export on or off:
    governed (approvals.effective); the batch size is not."""
    before = guard.snapshot(destination)
    after = {**before, **changes}
    after["active"] = bool(after.get("enabled"))
    return Proposal(
        Target.EXPORT,
        "configure",
        f"audit export of {destination.workspace}",
        before,
        after,
        str(destination.pk),
        dict(changes),
    )


def _export_configure(*, workspace, actor, values, reason, **_):
    destination = AuditExportDestination.objects.get(workspace=workspace)
    fields = {
        "kind": destination.kind,
        "directory": destination.directory,
        "url": destination.url,
        "enabled": destination.enabled,
        "batch_size": destination.batch_size,
        "format": destination.format,
        **values,
    }
    return scheduled_export.destination_configure(
        workspace=workspace,
        actor=actor,
        # The directory was checked against the operator's roots when it was proposed.
        operator=True,
        reason=reason,
        **fields,
    ).destination


def _export_disable(*, workspace, actor, reason, **_):
    destination = AuditExportDestination.objects.get(workspace=workspace)
    return scheduled_export.destination_configure(
        workspace=workspace,
        kind=destination.kind,
        directory=destination.directory,
        url=destination.url,
        enabled=False,
        batch_size=destination.batch_size,
        format=destination.format,
        actor=actor,
        operator=True,  # the directory is the one an operator set; it does not change
        reason=reason,
    ).destination


def register() -> None:
    guard.register(AuditExportDestination, Target.EXPORT, export_snapshot)
    door.register_applier(Target.EXPORT, "disable", _export_disable)
    door.register_applier(Target.EXPORT, "configure", _export_configure)
