"""Scheduled evidence work: nightly chain verification, signed checkpoints and their
delivery, scheduled export, anomaly detection, unreported results. Fan-out tasks
enqueue one task per workspace; each per-workspace task is a thin, idempotent wrapper
over a service and is acknowledged late."""

from datetime import datetime

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from audit.checkpoints import workspaces_due
from audit.services import audit_seal_all_pending, checkpoint_create
from common.actor import Actor
from notifications.services import chain_verification_run
from oversight.anomaly import anomalies_detect, workspaces_with_activity
from oversight.retention import audit_prune_all
from oversight.scheduled_export import (
    checkpoints_deliver,
    checkpoints_pending_workspaces,
    export_run,
)
from oversight.selectors import export_destinations_enabled
from oversight.unreported import unreported_results_flag, workspaces_with_unreported
from tenants.models import Workspace

TRANSIENT = (OperationalError, InterfaceError)
RETRY_OPTIONS = {
    "acks_late": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


class ExportRetry(Exception):
    """The destination did not accept a batch; the cursor did not move."""


def _active(workspace_id):
    return Workspace.objects.active().filter(pk=workspace_id).first()


@shared_task(name="audit.verify_all_chains", acks_late=True)
def verify_all_chains() -> int:
    ids = list(Workspace.objects.active().values_list("pk", flat=True))
    for pk in ids:
        verify_chain_task.delay(str(pk))
    return len(ids)


@shared_task(name="audit.verify_chain", **RETRY_OPTIONS)
def verify_chain_task(workspace_id: str, actor_label: str | None = None) -> dict:
    """`actor_label` names who asked (e.g. "user:<email>" from the admin button)."""
    workspace = _active(workspace_id)
    if workspace is None:
        return {"skipped": True}
    actor = Actor(actor_label) if actor_label else None
    result = chain_verification_run(workspace=workspace, actor=actor)
    return {"ok": result.ok, "entries_checked": result.entries_checked}


@shared_task(name="audit.prune_all", **RETRY_OPTIONS)
def prune_all() -> int:
    """Daily retention: prune each workspace with a retention setting (checkpointed)."""
    results = audit_prune_all(actor=Actor.system("retention"))
    return sum(r.pruned_entries for r in results)


@shared_task(name="audit.export_all", acks_late=True)
def export_all() -> int:
    ids = list(export_destinations_enabled().values_list("workspace_id", flat=True))
    for pk in ids:
        export_workspace_task.delay(str(pk))
    return len(ids)


@shared_task(
    name="audit.export_workspace",
    acks_late=True,
    autoretry_for=(ExportRetry, *TRANSIENT),
    retry_backoff=60,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=3,
)
def export_workspace_task(workspace_id: str) -> dict:
    workspace = _active(workspace_id)
    if workspace is None:
        return {"skipped": True}
    run = export_run(workspace=workspace)
    if run.error:
        raise ExportRetry(run.error)
    return {"batches": run.batches, "entries": run.entries, "cursor": run.last_exported_seq}


@shared_task(name="audit.detect_anomalies_all", acks_late=True)
def detect_anomalies_all() -> int:
    now = timezone.now()
    ids = workspaces_with_activity(now=now)
    for pk in ids:
        detect_anomalies_task.delay(str(pk), now.isoformat())
    return len(ids)


@shared_task(name="audit.detect_anomalies", **RETRY_OPTIONS)
def detect_anomalies_task(workspace_id: str, now: str | None = None) -> int:
    """`now` pins the window, so a late or repeated run checks the same hour (deduped)."""
    workspace = _active(workspace_id)
    if workspace is None:
        return 0
    moment = datetime.fromisoformat(now) if now else None
    return len(anomalies_detect(workspace=workspace, now=moment))


@shared_task(name="oversight.flag_unreported_results_all", acks_late=True)
def flag_unreported_results_all() -> int:
    """Every few minutes: one task per workspace holding allowed actions that may have
    outlived their window without a reported result."""
    ids = workspaces_with_unreported()
    for pk in ids:
        flag_unreported_results_task.delay(str(pk))
    return len(ids)


@shared_task(name="oversight.flag_unreported_results", **RETRY_OPTIONS)
def flag_unreported_results_task(workspace_id: str) -> int:
    """Idempotent: an action already flagged is never flagged again."""
    workspace = _active(workspace_id)
    if workspace is None:
        return 0
    return unreported_results_flag(workspace=workspace).flagged


@shared_task(name="audit.checkpoint_all", acks_late=True)
def checkpoint_all() -> int:
    """Every WARDEN_AUDIT_CHECKPOINT_SECONDS: sign the head of every chain that moved
    since its last checkpoint, then deliver pending checkpoints."""
    audit_seal_all_pending()  # entries a stopped process left queued (group commit)
    signed = 0
    for workspace in Workspace.objects.filter(pk__in=workspaces_due()):
        signed += checkpoint_create(workspace=workspace) is not None
    deliver_all_checkpoints()
    return signed


def deliver_all_checkpoints() -> None:
    for pk in checkpoints_pending_workspaces():
        deliver_checkpoints_task.delay(str(pk))


@shared_task(name="audit.deliver_checkpoints", **RETRY_OPTIONS)
def deliver_checkpoints_task(workspace_id: str) -> int:
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return 0
    return checkpoints_deliver(workspace=workspace)


def on_checkpoint_signed(sender, workspace_id, **kwargs) -> None:
    """Receiver of audit.signals.checkpoint_signed: ship it to the customer's copy."""
    deliver_checkpoints_task.delay(str(workspace_id))
