"""Unreported results are findings (issue 27, item 1): an allowed action with no reported
result and no gateway execution past the workspace's window opens one exception record
and reminds the key's owner; never twice; the privacy summary and posture count them."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from approvals import door
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ConfirmationRequest
from audit.models import AuditEntry, ExceptionRecord
from audit.services import exception_record
from audit.verify import verify_chain
from common.actor import Actor
from gateway.models import Execution
from notifications.governance import automation_update
from notifications.models import NotificationEvent, WorkspaceAutomationSettings
from notifications.services import automation_settings_update
from oversight.tasks import flag_unreported_results_all, flag_unreported_results_task
from oversight.unreported import unreported_results_flag
from tenants.models import Membership, Role
from tests.entry_points import entry_point
from tests.notifications.conftest import SYSTEM

PERSONAL = "jane.doe@customer.example"  # a parameter value that must never travel


def set_window(workspace, minutes):
    with operator_seeding():
        automation_settings_update(
            reason="test change",
            workspace=workspace,
            actor=SYSTEM,
            changes={"unreported_result_window_minutes": minutes},
        )


def age(action_id, **delta):
    ActionRequest.objects.filter(pk=action_id).update(
        created_at=timezone.now() - timedelta(**delta)
    )


@pytest.fixture
def asked(live_workspace, agent, make_tool, ask):
    """Two allowed actions decided two hours ago: one reported, one not."""
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    make_tool(live_workspace, "crm.update", level="write")
    silent = ask(client, "crm.update", {"email": PERSONAL}).json()["id"]
    reported = ask(client, "crm.lookup", {"email": PERSONAL}).json()["id"]
    client.post(
        f"/api/v1/actions/{reported}/result", {"status": "succeeded", "output": {}}, format="json"
    )
    for action_id in (silent, reported):
        age(action_id, hours=2)
    set_window(live_workspace, 60)
    return silent, reported


def flagged(workspace):
    return list(
        ExceptionRecord.objects.filter(workspace=workspace, kind="unreported_result").order_by(
            "created_at"
        )
    )


@entry_point("task:oversight.flag_unreported_results_all", "task:oversight.flag_unreported_results")
def test_the_periodic_task_flags_an_unreported_action_once_and_reminds_the_owner(
    live_workspace, agent, asked
):
    key, client = agent
    secret = client._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    silent, _reported = asked
    mail.outbox.clear()
    assert flag_unreported_results_all.apply().get() == 1  # one workspace fanned out
    records = flagged(live_workspace)
    assert [r.subject for r in records] == [f"action:{silent}"]
    record = records[0]
    assert record.severity == "medium" and record.resolved_at is None
    assert record.evidence["action_id"] == silent and record.evidence["window_minutes"] == 60
    entry = AuditEntry.objects.get(workspace=live_workspace, action="action.result_missing")
    assert record.audit_entry_id == entry.pk and entry.input["kind"] == "unreported_result"
    # The owner is reminded, with ids and the tool, never the parameters.
    reminders = [m for m in mail.outbox if key.owner.email in m.to]
    assert len(reminders) == 1 and silent in reminders[0].body
    event = NotificationEvent.objects.get(event="action.unreported")
    assert event.payload["data"]["actions"][0]["id"] == silent
    for text in (reminders[0].body, json.dumps(event.payload), json.dumps(record.evidence)):
        assert PERSONAL not in text and secret not in text
    # Again, and again directly: nothing twice.
    assert flag_unreported_results_all.apply().get() == 1
    assert flag_unreported_results_task.apply(args=[str(live_workspace.pk)]).get() == 0
    assert len(flagged(live_workspace)) == 1
    assert NotificationEvent.objects.filter(event="action.unreported").count() == 1
    assert verify_chain(live_workspace).ok


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_record_for_the_same_action(live_workspace):
    def open_one():
        with transaction.atomic():
            exception_record(
                workspace=live_workspace,
                actor=SYSTEM,
                kind="unreported_result",
                severity="medium",
                what="No result",
                why="never reported",
                subject="action:1",
            )

    open_one()
    with pytest.raises(IntegrityError):
        open_one()


def test_within_the_window_or_with_the_check_off_nothing_is_flagged(live_workspace, asked):
    silent, _ = asked
    age(silent, minutes=30)
    assert unreported_results_flag(workspace=live_workspace).flagged == 0
    age(silent, hours=2)
    set_window(live_workspace, None)
    assert unreported_results_flag(workspace=live_workspace).flagged == 0
    set_window(live_workspace, 60)
    assert unreported_results_flag(workspace=live_workspace).flagged == 1


def test_history_beyond_the_lookback_is_not_flagged(live_workspace, asked):
    silent, _ = asked
    age(silent, days=9)
    assert unreported_results_flag(workspace=live_workspace).flagged == 0


def test_gateway_executions_dry_runs_and_reported_results_are_not_findings(
    live_workspace, agent, make_tool, ask, asked
):
    _, client = agent
    silent, _ = asked
    executed = ActionRequest.objects.get(pk=silent)
    Execution.objects.create(
        workspace=live_workspace, action_request=executed, upstream_tool="update"
    )
    with operator_seeding():
        make_tool(live_workspace, "crm.preview", dry_run=True)
    rehearsed = ask(client, "crm.preview").json()
    assert rehearsed["dry_run"] is True
    age(rehearsed["id"], hours=2)
    assert unreported_results_flag(workspace=live_workspace).flagged == 0


def test_a_late_result_is_still_accepted_and_the_finding_is_listed_by_the_api(
    live_workspace, agent, asked, make_key, key_client
):
    _, client = agent
    silent, _ = asked
    unreported_results_flag(workspace=live_workspace)
    _, reader = make_key(live_workspace, scopes=["audit:read"])
    listed = key_client(reader).get("/api/v1/audit/exceptions?kind=unreported_result").json()
    assert [row["subject"] for row in listed["results"]] == [f"action:{silent}"]
    assert PERSONAL not in json.dumps(listed)
    late = client.post(
        f"/api/v1/actions/{silent}/result", {"status": "succeeded", "output": {}}, format="json"
    )
    assert late.status_code == 200 and late.json()["status"] == "executed"


def test_the_privacy_summary_and_posture_count_them(live_workspace, asked, make_key, key_client):
    unreported_results_flag(workspace=live_workspace)
    _, reader = make_key(live_workspace, scopes=["audit:read"])
    client = key_client(reader)
    summary = client.get("/api/v1/privacy-summary").json()
    assert summary["stored"]["unreported_results"] == {
        "window_minutes": 60,
        "flagged": 1,
        "open": 1,
    }
    section = next(s for s in summary["sections"] if s["title"] == "What agents did not report")
    assert "within 60 minutes" in section["paragraphs"][0]
    assert "1 allowed action had no reported result (1 still open)" in section["paragraphs"][0]
    posture = client.get("/api/v1/posture").json()
    assert posture["unreported_results"] == {"window_minutes": 60, "flagged": 1, "open": 1}


def test_lengthening_or_switching_off_the_window_is_governed_shortening_is_not(
    live_workspace,
):
    set_window(live_workspace, 60)
    owner = Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user
    actor = Actor.for_user(owner)

    def propose(minutes):
        return door.governed_change(
            reason="test change",
            proposal=automation_update(
                live_workspace, {"unreported_result_window_minutes": minutes}, operator=False
            ),
            actor=actor,
            workspace=live_workspace,
        )

    assert not propose(600).applied
    assert not propose(None).applied
    assert propose(15).applied
    stored = WorkspaceAutomationSettings.objects.get(workspace=live_workspace)
    assert stored.unreported_result_window_minutes == 15


def test_the_window_is_validated(live_workspace):
    with pytest.raises(Exception, match="unreported_result_window_minutes"):
        set_window(live_workspace, 0)


def test_the_window_runs_from_the_approval_when_a_human_took_longer(
    live_workspace, agent, approver, make_tool, ask, approve
):
    _, client = agent
    set_window(live_workspace, 60)
    make_tool(live_workspace, "crm.delete", level="write", confirmation="always")
    pending = ask(client, "crm.delete", {"id": 7}).json()
    confirmation = ConfirmationRequest.objects.get(action_request_id=pending["id"])
    assert approve(approver, live_workspace, confirmation.pk).status_code == 200
    used = ask(
        client,
        "crm.delete",
        {"id": 7},
        confirmed=True,
        confirmation_token=pending["confirmation_token"],
    )
    assert used.json()["decision"] == "allowed"
    age(pending["id"], hours=3)  # asked long ago, approved and used just now
    assert unreported_results_flag(workspace=live_workspace).flagged == 0
    ConfirmationRequest.objects.filter(action_request_id=pending["id"]).update(
        used_at=timezone.now() - timedelta(hours=2)
    )
    assert unreported_results_flag(workspace=live_workspace).flagged == 1


def test_nothing_older_than_the_audit_retention_is_flagged(live_workspace, asked):
    silent, _ = asked
    age(silent, days=3)
    live_workspace.audit_retention_days = 2
    assert unreported_results_flag(workspace=live_workspace).flagged == 0
    live_workspace.audit_retention_days = 5
    assert unreported_results_flag(workspace=live_workspace).flagged == 1


def test_the_admin_files_a_longer_window_for_a_second_person_and_applies_a_shorter_one(
    live_workspace,
):
    set_window(live_workspace, 60)
    owner = Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user
    browser = Client()
    browser.force_login(owner)
    url = f"/admin/notifications/workspaceautomationsettings/{live_workspace.pk}/change/"
    assert 'name="unreported_result_window_minutes"' in browser.get(url).content.decode()
    kept = {"email_notifications": "on"}
    browser.post(url, {"reason": "test change", **kept, "unreported_result_window_minutes": "600"})
    stored = WorkspaceAutomationSettings.objects.get(workspace=live_workspace)
    assert stored.unreported_result_window_minutes == 60
    pending = ActionRequest.objects.get(workspace=live_workspace, status="pending")
    assert "unreported_result_window_minutes" in pending.params["changes"]
    browser.post(url, {"reason": "test change", **kept, "unreported_result_window_minutes": "30"})
    stored.refresh_from_db()
    assert stored.unreported_result_window_minutes == 30
