"""An exception left open for N days reaches the workspace's owners, once per period."""

from datetime import timedelta

from django.core import mail
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEntry, ExceptionRecord
from audit.services import exception_record, exception_resolve
from audit.verify import verify_chain
from notifications.models import NotificationEvent
from notifications.services import exceptions_remind_unresolved
from tests.notifications.conftest import SYSTEM


def _open(workspace):
    with transaction.atomic():
        return exception_record(
            workspace=workspace,
            actor=SYSTEM,
            kind=ExceptionRecord.Kind.POLICY_ERROR,
            severity=ExceptionRecord.Severity.MEDIUM,
            what="Condition of crm.x failed",
            why="TypeError",
        )


def test_owners_hear_of_exceptions_left_open(
    live_workspace, settings, django_capture_on_commit_callbacks
):
    settings.WARDEN_EXCEPTION_REMIND_DAYS = 7
    record = _open(live_workspace)
    now = timezone.now()
    assert exceptions_remind_unresolved(now=now) == 0  # fresh: nothing to say
    later = now + timedelta(days=8)
    with django_capture_on_commit_callbacks(execute=True):
        assert exceptions_remind_unresolved(now=later) == 1
    assert exceptions_remind_unresolved(now=later + timedelta(hours=1)) == 0  # once a period
    event = NotificationEvent.objects.get(event="exception.unresolved")
    assert event.payload["data"]["exception_ids"] == [record.pk]
    assert any("open for more than 7 days" in m.body for m in mail.outbox)
    # The chain shows the reminder went out, once for the period.
    reminded = AuditEntry.objects.get(workspace=live_workspace, action="exception.reminded")
    assert reminded.input == {"open": 1, "older_than_days": 7, "exception_ids": [record.pk]}
    assert verify_chain(live_workspace).ok
    exception_resolve(record=record, actor=SYSTEM, reason="fixed")
    assert exceptions_remind_unresolved(now=later + timedelta(days=8)) == 0
