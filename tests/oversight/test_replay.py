"""audit_replay: the recorded action decided again under the policy of its time
(rebuilt from version logs) and under today's, side by side."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from approvals.asking import action_submit
from approvals.catalog import tool_create, tool_delete, tool_update
from approvals.guard import operator_seeding
from approvals.models import ActionRequest
from oversight.replay import replay_action, tool_snapshot_as_of
from tenants.services import workspace_update
from tests.conftest import SYSTEM

pytestmark = pytest.mark.usefixtures("operator_seeded")


@pytest.fixture
def live(workspace):
    """Writes on and live, through the audited service (so version logs know it)."""
    return workspace_update(
        reason="test set-up",
        workspace=workspace,
        actor=SYSTEM,
        changes={"writes_enabled": True, "mode": "live"},
    )


@pytest.fixture
def agent_key(live, make_key):
    key, _ = make_key(live, scopes=["actions:read", "actions:write"], tools=["crm.*"])
    return key


@pytest.fixture
def recorded(live, agent_key):
    """An action allowed under policy v2 (crm.update, write, no confirmation)."""
    with operator_seeding():
        tool_create(
            reason="test set-up", workspace=live, actor=SYSTEM, name="crm.update", level="write"
        )
    outcome = action_submit(key=agent_key, tool_name="crm.update", params={"deal": 7}, actor=SYSTEM)
    assert outcome.allowed
    return outcome.action


def test_unchanged_policy_replays_to_the_same_decision(recorded):
    report = replay_action(recorded.pk)
    assert report.then.outcome == report.now.outcome == "allowed"
    assert report.matches_record and not report.changed
    assert "version log" in report.then.sources["tool"]


def test_tightened_tool_shows_then_allowed_now_confirmation(recorded, live):
    tool = recorded.tool
    tool_update(tool=tool, actor=SYSTEM, changes={"confirmation": "always"}, reason="risky")
    report = replay_action(recorded.pk)
    assert report.then.outcome == "allowed"
    assert report.then.policy_version == recorded.policy_version
    assert report.then.tool["confirmation"] == "never"
    assert report.now.outcome == "requires_confirmation"
    assert report.now.policy_version > recorded.policy_version
    assert report.changed and report.matches_record


def test_deleted_tool_is_denied_today_but_rebuilt_for_then(recorded):
    tool_delete(tool=recorded.tool, actor=SYSTEM, reason="retired")
    report = replay_action(recorded.pk)
    assert report.then.outcome == "allowed"
    assert (report.now.outcome, report.now.code) == ("denied", "tool_not_allowed")
    assert report.now.tool is None


def test_workspace_settings_are_rebuilt_as_of_the_action(recorded, live):
    workspace_update(
        reason="test set-up", workspace=live, actor=SYSTEM, changes={"writes_enabled": False}
    )
    report = replay_action(recorded.pk)
    assert report.then.outcome == "allowed"
    assert (report.now.outcome, report.now.code) == ("denied", "writes_disabled")


def test_denial_under_old_policy_is_replayed_as_a_denial(live, agent_key):
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=live,
            actor=SYSTEM,
            name="crm.export",
            level="read",
            enabled=False,
        )
    outcome = action_submit(key=agent_key, tool_name="crm.export", params={}, actor=SYSTEM)
    assert (outcome.denied, outcome.code) == (True, "tool_not_allowed")
    action = ActionRequest.objects.get(workspace=live, tool_name="crm.export")
    tool_update(reason="test set-up", tool=action.tool, actor=SYSTEM, changes={"enabled": True})
    report = replay_action(action.pk)
    assert (report.then.outcome, report.then.code) == ("denied", "tool_not_allowed")
    assert report.now.outcome == "allowed"
    assert report.matches_record


def test_tool_history_is_looked_up_by_policy_version(live):
    with operator_seeding():
        tool = tool_create(
            reason="test set-up", workspace=live, actor=SYSTEM, name="crm.x", level="read"
        )
    v_created = live.__class__.objects.get(pk=live.pk).policy_version
    tool_update(reason="test set-up", tool=tool, actor=SYSTEM, changes={"level": "write"})
    then, _ = tool_snapshot_as_of(live, "crm.x", v_created)
    now, _ = tool_snapshot_as_of(live, "crm.x", v_created + 1)
    assert (then["level"], now["level"]) == ("read", "write")
    assert tool_snapshot_as_of(live, "crm.x", v_created - 1)[0] is None


def test_command_prints_both_decisions_side_by_side(recorded):
    tool_update(
        reason="test set-up", tool=recorded.tool, actor=SYSTEM, changes={"confirmation": "always"}
    )
    out = io.StringIO()
    call_command("audit_replay", str(recorded.pk), stdout=out)
    text = out.getvalue()
    assert f"then (policy v{recorded.policy_version})" in text
    assert "now (policy v" in text
    decision_line = next(line for line in text.splitlines() if "decision" in line[:16])
    assert "allowed" in decision_line and "requires_confirmation" in decision_line
    assert decision_line.startswith("*")  # marked as changed
    assert "decision changed since" in text


def test_command_json_output(recorded):
    out = io.StringIO()
    call_command("audit_replay", str(recorded.pk), "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["then"]["outcome"] == data["now"]["outcome"] == "allowed"
    assert data["changed"] is False and data["matches_record"] is True


@pytest.mark.parametrize("bad", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_command_unknown_action_fails(db, bad):
    with pytest.raises(CommandError, match="No action request"):
        call_command("audit_replay", bad, stdout=io.StringIO())
