"""Digest instead of one e-mail per request (issue 23, item 3): per workspace, every N
minutes each approver gets one e-mail listing the pending requests they may decide; a
request is listed to an approver once; each digest sent is an audit entry; reminders
still go out on their own. Turning digests on (or lengthening them) is governed."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from approvals import door
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from audit.models import AuditEntry
from common.actor import Actor
from notifications.governance import automation_update
from notifications.models import WorkspaceAutomationSettings
from notifications.services import confirmations_digest_due, confirmations_remind_due
from notifications.tasks import send_approval_digests
from tenants.models import Role
from tests.entry_points import entry_point

T0 = timezone.now().replace(microsecond=0)
PUBLIC = "https://warden.example.com"


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.WARDEN_PUBLIC_URL = PUBLIC


def _settings(workspace, **fields):
    with operator_seeding():  # test set-up, as an operator at a shell
        WorkspaceAutomationSettings.objects.update_or_create(workspace=workspace, defaults=fields)


@pytest.fixture
def digest(django_capture_on_commit_callbacks):
    def run() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return confirmations_digest_due()

    return run


def _to(user) -> list:
    return [m for m in mail.outbox if user.email in m.to]


def _entries():
    return list(AuditEntry.objects.filter(action="confirmation.digest_sent").order_by("seq"))


def test_without_a_digest_each_request_is_its_own_email(live_workspace, approver, ask_pending):
    ask_pending(params={"deal": 1})
    ask_pending(params={"deal": 2})
    assert len(_to(approver)) == 2
    assert confirmations_digest_due() == 0


def test_a_digest_lists_pending_requests_once_per_approver_per_interval(
    live_workspace, agent, approver, make_member, ask_pending, digest
):
    key, _ = agent
    second = make_member(live_workspace, Role.APPROVER)
    owner = live_workspace.memberships.get(role=Role.OWNER).user  # may approve too
    _settings(live_workspace, approval_digest_minutes=30, approval_remind_after_minutes=None)
    with time_machine.travel(T0, tick=False):
        first = ask_pending(params={"deal": 101})
        other = ask_pending(params={"deal": 202})
    assert _to(approver) == [] and _to(second) == []  # no per-request e-mail
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        assert digest() == 3  # one per approver
        assert digest() == 0
    [message] = _to(approver)
    assert message.subject == "[Warden] 2 requests waiting in " + live_workspace.name
    assert "deal=101" in message.body and "deal=202" in message.body
    for confirmation in (first, other):
        assert f"/confirmationrequest/{confirmation.pk}/email/approve/?link=" in message.body
    assert not _to(key.owner)  # four eyes: never asked about its own key's requests
    entries = _entries()
    assert len(entries) == 3
    assert {e.input["recipient"] for e in entries} == {approver.email, second.email, owner.email}
    assert sorted(entries[0].input["confirmations"]) == sorted([str(first.pk), str(other.pk)])
    assert entries[0].actor == "system:notifications"

    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        third = ask_pending(params={"deal": 303})
        assert digest() == 0  # the interval has not passed
    with time_machine.travel(T0 + timedelta(minutes=32), tick=False):
        assert digest() == 3
    latest = _to(approver)[-1]
    assert "deal=303" in latest.body and "deal=101" not in latest.body  # never twice
    assert str(third.pk) in latest.body
    with time_machine.travel(T0 + timedelta(minutes=70), tick=False):
        assert digest() == 0  # nothing new: no empty digest
    assert len(_entries()) == 6


def test_a_reminder_still_goes_out_on_its_own(
    live_workspace, approver, ask_pending, digest, django_capture_on_commit_callbacks
):
    _settings(live_workspace, approval_digest_minutes=15, approval_remind_after_minutes=60)
    with time_machine.travel(T0, tick=False):
        ask_pending()
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        assert digest() == 2  # the approver and the owner
    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert confirmations_remind_due() == 1
        assert digest() == 0
    subjects = [m.subject for m in _to(approver)]
    assert len(subjects) == 2 and subjects[1].startswith("[Warden] Still waiting")


def test_decided_and_expired_requests_are_not_listed(
    live_workspace, approver, make_member, ask_pending, approve, digest
):
    _settings(live_workspace, approval_digest_minutes=5, approval_remind_after_minutes=None)
    with time_machine.travel(T0, tick=False):
        decided = ask_pending(params={"deal": 1})
        assert approve(approver, live_workspace, decided.pk).status_code == 200
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        ask_pending(params={"deal": 2})
    with time_machine.travel(T0 + timedelta(days=2, minutes=1), tick=False):
        assert digest() == 2  # the approver and the owner
    [message] = _to(approver)
    assert "deal=2" in message.body and "deal=1" not in message.body


def test_the_digest_button_opens_the_confirmation_page(
    live_workspace, approver, ask_pending, digest
):
    _settings(live_workspace, approval_digest_minutes=5)
    confirmation = ask_pending(params={"deal": 55})
    digest()
    path = re.search(rf"{PUBLIC}(/admin/\S+/email/deny/\S+)", _to(approver)[0].body)[1]
    client = Client()
    client.force_login(approver)
    page = client.get(path)
    assert page.status_code == 200 and "Deny this request?" in page.content.decode()
    client.post(
        f"/admin/approvals/confirmationrequest/{confirmation.pk}/decide/",
        {"verdict": "deny", "reason": "not this deal"},
    )
    confirmation.refresh_from_db()
    assert confirmation.status == ConfirmationRequest.Status.DENIED


def test_switching_to_a_digest_is_governed_and_back_narrows(live_workspace):
    owner = live_workspace.memberships.get(role=Role.OWNER).user
    actor = Actor.for_user(owner)
    outcome = door.governed_change(
        reason="test set-up",
        proposal=automation_update(live_workspace, {"approval_digest_minutes": 60}, operator=False),
        actor=actor,
        workspace=live_workspace,
    )
    assert not outcome.applied  # filed for a second person
    settings_row = WorkspaceAutomationSettings.objects.filter(workspace=live_workspace).first()
    assert settings_row is None or settings_row.approval_digest_minutes is None
    _settings(live_workspace, approval_digest_minutes=60)
    shorter = door.governed_change(
        reason="test set-up",
        proposal=automation_update(live_workspace, {"approval_digest_minutes": 10}, operator=False),
        actor=actor,
        workspace=live_workspace,
    )
    assert shorter.applied
    back = door.governed_change(
        reason="test set-up",
        proposal=automation_update(
            live_workspace, {"approval_digest_minutes": None}, operator=False
        ),
        actor=actor,
        workspace=live_workspace,
    )
    assert back.applied
    saved = WorkspaceAutomationSettings.objects.get(workspace=live_workspace)
    assert saved.approval_digest_minutes is None


@entry_point("task:notifications.send_approval_digests")
def test_the_periodic_task_sends_digests_outside_any_test_transaction(
    live_workspace, agent, approver, ask_pending
):
    _settings(live_workspace, approval_digest_minutes=5)
    ask_pending()
    assert send_approval_digests.apply().get() == 2  # the approver and the owner
    assert len(_entries()) == 2
    assert send_approval_digests.apply().get() == 0


def test_digests_run_on_beat_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["send-approval-digests"]
    assert entry["task"] == "notifications.send_approval_digests"
    assert entry["schedule"] == 60.0
