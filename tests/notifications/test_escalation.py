"""Reminders and escalation of requests nobody decides (issue 23): remind the approvers
after N minutes, escalate to the backup approvers (or the owners) after M, once each,
each an audit entry; the request still expires at its TTL."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from approvals.confirmations import confirmations_expire_due
from approvals.guard import operator_seeding
from audit.models import AuditEntry
from notifications.models import WorkspaceAutomationSettings
from notifications.services import confirmations_remind_due
from notifications.tasks import remind_pending_confirmations
from tenants.models import Role
from tests.entry_points import entry_point

T0 = timezone.now().replace(microsecond=0)


def _settings(workspace, **fields):
    with operator_seeding():  # test set-up, as an operator at a shell
        WorkspaceAutomationSettings.objects.update_or_create(workspace=workspace, defaults=fields)


def _recipients() -> list[str]:
    return sorted(to for message in mail.outbox for to in message.to)


@pytest.fixture
def remind(django_capture_on_commit_callbacks):
    """The periodic pass, with its after-commit sends run as a real commit would."""

    def run() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return confirmations_remind_due()

    return run


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


def test_remind_then_escalate_then_expire_each_once_and_audited(
    live_workspace, agent, make_member, ask_pending, remind
):
    key, _ = agent
    approver = make_member(live_workspace, Role.APPROVER)
    backup = make_member(live_workspace, Role.APPROVER)
    owner = live_workspace.memberships.get(role=Role.OWNER).user
    _settings(
        live_workspace,
        approval_remind_after_minutes=30,
        approval_escalate_after_minutes=90,
        approval_escalate_to=[backup.email.upper()],
    )
    with time_machine.travel(T0, tick=False):
        confirmation = ask_pending(params={"deal": 7})
    mail.outbox.clear()

    with time_machine.travel(T0 + timedelta(minutes=29), tick=False):
        assert remind() == 0
    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        assert remind() == 1
        assert remind() == 0  # once per request
    assert _recipients() == sorted([approver.email, backup.email, owner.email])
    assert key.owner.email not in _recipients()  # four eyes: never asked to decide it
    assert all(
        m.subject.startswith("[Warden] Still waiting: crm.update_stage") for m in mail.outbox
    )
    assert "Reminded: this request has been waiting 31 minutes." in mail.outbox[0].body
    [reminded] = _entries("confirmation.reminded")
    assert reminded.target_id == str(confirmation.pk)
    assert reminded.input["waited_minutes"] == 31
    assert sorted(reminded.input["notified"]) == _recipients()
    mail.outbox.clear()

    with time_machine.travel(T0 + timedelta(minutes=91), tick=False):
        assert remind() == 1
        assert remind() == 0
    assert _recipients() == [backup.email]
    assert mail.outbox[0].subject.startswith("[Warden] Escalated: crm.update_stage")
    [escalated] = _entries("confirmation.escalated")
    assert escalated.input["notified"] == [backup.email]
    assert escalated.rationale == "escalated: no one has decided this request in 91 minutes"
    mail.outbox.clear()

    with time_machine.travel(T0 + timedelta(hours=24, minutes=1), tick=False):
        assert confirmations_expire_due() == 1
        assert remind() == 0  # expired requests are left alone
    assert mail.outbox == []
    assert len(_entries("confirmation.expired")) == 1
    assert len(_entries("confirmation.reminded")) == len(_entries("confirmation.escalated")) == 1


def test_escalation_goes_to_the_owners_when_no_backup_is_named(
    live_workspace, agent, make_member, ask_pending, remind
):
    make_member(live_workspace, Role.APPROVER)
    owner = live_workspace.memberships.get(role=Role.OWNER).user
    _settings(
        live_workspace, approval_remind_after_minutes=None, approval_escalate_after_minutes=10
    )
    with time_machine.travel(T0, tick=False):
        ask_pending()
    mail.outbox.clear()
    with time_machine.travel(T0 + timedelta(minutes=11), tick=False):
        assert remind() == 1
    assert _recipients() == [owner.email]
    assert _entries("confirmation.reminded") == []


def test_a_decided_request_is_neither_reminded_nor_escalated(
    live_workspace, agent, approver, ask_pending, approve, remind
):
    _settings(live_workspace, approval_remind_after_minutes=1, approval_escalate_after_minutes=2)
    with time_machine.travel(T0, tick=False):
        confirmation = ask_pending()
        assert approve(approver, live_workspace, confirmation.pk).status_code == 200
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        assert remind() == 0
    assert _entries("confirmation.reminded") == _entries("confirmation.escalated") == []


@entry_point("task:notifications.remind_pending_confirmations")
def test_the_periodic_task_reminds_outside_any_test_transaction(
    live_workspace, agent, make_member, ask_pending
):
    make_member(live_workspace, Role.APPROVER)
    _settings(live_workspace, approval_remind_after_minutes=5, approval_escalate_after_minutes=None)
    with time_machine.travel(T0, tick=False):
        ask_pending()
    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):
        assert remind_pending_confirmations.apply().get() == 1
    assert len(_entries("confirmation.reminded")) == 1
