"""Verification queued from the admin is recorded as the person who asked."""

from audit.models import AuditAction, AuditEntry
from oversight.tasks import verify_chain_task


def test_queued_verification_records_who_asked(workspace):
    verify_chain_task(str(workspace.pk), "user:auditor@example.test")
    entry = AuditEntry.objects.filter(workspace=workspace, action=AuditAction.AUDIT_VERIFIED).get()
    assert entry.actor == "user:auditor@example.test"


def test_nightly_verification_is_recorded_as_the_system(workspace):
    verify_chain_task(str(workspace.pk))
    entry = AuditEntry.objects.filter(workspace=workspace, action=AuditAction.AUDIT_VERIFIED).get()
    assert entry.actor == "system:chain-verify"


def test_daily_retention_task_prunes_and_checkpoints(make_workspace):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from audit.verify import verify_chain
    from oversight.tasks import prune_all

    with time_machine.travel(timezone.now() - timedelta(days=40)):
        workspace = make_workspace(audit_retention_days=30)
    assert prune_all() > 0
    checkpoint = AuditEntry.objects.get(workspace=workspace, action=AuditAction.AUDIT_PRUNED)
    assert checkpoint.actor == "system:retention"
    assert verify_chain(workspace).ok
