"""Reads of oversight's own rows (export destinations)."""

from __future__ import annotations

from django.db.models import QuerySet

from oversight.models import AuditExportDestination


def export_destinations_enabled() -> QuerySet[AuditExportDestination]:
    return AuditExportDestination.objects.filter(
        enabled=True, workspace__deleted_at__isnull=True
    ).order_by("workspace_id")


def export_prune_limit(workspace) -> int | None:
    """Retention never prunes what the customer's export has not received yet (a
    paused destination holds pruning back too); no destination: no limit."""
    return (
        AuditExportDestination.objects.filter(workspace=workspace)
        .values_list("last_exported_seq", flat=True)
        .first()
    )
