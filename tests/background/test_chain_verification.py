"""Nightly chain verification: an intact chain is recorded as verified; a broken one is
an exception record and a notification."""

from django.conf import settings
from django.core import mail

from audit.models import AuditEntry, ExceptionRecord
from notifications.models import NotificationEvent
from oversight.tasks import verify_all_chains, verify_chain_task
from tenants.models import Role
from tests.audit.helpers import append, db_id, tamper


def test_nightly_schedule_runs_every_workspace():
    entry = settings.CELERY_BEAT_SCHEDULE["verify-audit-chains"]
    assert entry["task"] == verify_all_chains.name


def test_intact_chain_is_recorded_as_verified(live_workspace):
    assert verify_chain_task.delay(str(live_workspace.pk)).get()["ok"] is True
    entry = AuditEntry.objects.filter(workspace=live_workspace, action="audit.verified").get()
    assert entry.outcome == "ok"
    assert not ExceptionRecord.objects.filter(kind="chain_broken").exists()
    assert not NotificationEvent.objects.exists()


def test_broken_chain_is_an_exception_and_a_notification(
    live_workspace, make_member, make_endpoint, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(live_workspace, events=["audit.chain_broken"])
    auditor = make_member(live_workspace, Role.AUDITOR)
    approver = make_member(live_workspace, Role.APPROVER)
    append(live_workspace, 3)
    tamper(
        "UPDATE audit_auditentry SET rationale = 'rewritten' WHERE workspace_id = %s AND seq = 2",
        [db_id(live_workspace)],
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = verify_chain_task.delay(str(live_workspace.pk)).get()
    assert result["ok"] is False
    record = ExceptionRecord.objects.get(workspace=live_workspace, kind="chain_broken")
    assert record.evidence["first_bad_seq"] == 2
    event = NotificationEvent.objects.get(event="audit.chain_broken")
    assert event.payload["data"]["first_bad_seq"] == 2
    assert receiver.processed and receiver.received[0].valid
    recipients = {to for message in mail.outbox for to in message.to}
    assert auditor.email in recipients and approver.email not in recipients


def test_fan_out_covers_active_workspaces(live_workspace, make_workspace):
    make_workspace()
    assert verify_all_chains.delay().get() == 2
    assert AuditEntry.objects.filter(action="audit.verified").count() == 2
