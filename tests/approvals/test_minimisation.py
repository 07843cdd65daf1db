"""Data minimisation: plain copies of action parameters and outputs are kept for the
workspace's period, then replaced by their digest and size; every pruning is audited
and the chain still verifies."""

import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from approvals.minimisation import plain_copies_prune
from approvals.models import ActionRequest
from approvals.params import canonical_json
from approvals.tasks import prune_plain_copies
from audit.models import AuditEntry, VersionLog
from audit.verify import verify_chain
from common.actor import Actor
from oversight.replay import replay_action
from tenants.models import Role, Workspace

pytestmark = pytest.mark.django_db

RETENTION = Actor.system("retention")
PARAMS = {"customer_id": 7, "note": "call Ann at +44 20 7946 0958"}


@pytest.fixture
def lookup(make_tool, live_workspace):
    return make_tool(live_workspace, "crm.lookup", level="read")


def _sha(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _allowed_with_result(client, ask, params=PARAMS, output=None):
    response = ask(client, "crm.lookup", params)
    assert response.status_code == 200, response.json()
    action_id = response.json()["id"]
    reported = client.post(
        f"/api/v1/actions/{action_id}/result",
        {"status": "succeeded", "output": output or {"name": "Ann", "phone": "+44 20"}},
        format="json",
    )
    assert reported.status_code == 200, reported.json()
    return ActionRequest.objects.get(pk=action_id)


def _later(days: int):
    return timezone.now() + timedelta(days=days)


def test_new_workspaces_keep_plain_copies_for_thirty_days(workspace):
    assert workspace.plain_copy_retention_days == 30


def test_plain_copies_are_kept_within_the_period(lookup, agent, ask, live_workspace):
    _, client = agent
    action = _allowed_with_result(client, ask)
    result = plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(29))
    assert result.audit_entries == 0
    action.refresh_from_db()
    assert action.params == PARAMS and action.reported_output == {"name": "Ann", "phone": "+44 20"}
    assert action.plain_pruned_at is None


def test_after_the_period_copies_become_digests_and_the_pruning_is_audited(
    lookup, agent, ask, live_workspace
):
    _, client = agent
    output = {"name": "Ann", "phone": "+44 20"}
    action = _allowed_with_result(client, ask, output=output)
    result = plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(31))
    assert result.action_requests == 1 and result.audit_entries == 1
    action.refresh_from_db()
    assert action.params == {} and action.result_output is None
    assert action.plain_pruned_at is not None
    # Digests and sizes stay: the params digest is the one recorded at decision time.
    assert action.params_digest == _sha(PARAMS)
    assert action.params_bytes == len(canonical_json(PARAMS))
    assert action.result_output_sha256 == _sha(output)
    assert action.result_output_bytes == len(canonical_json(output))
    # ... and match the chain's own record of the output.
    reported = AuditEntry.objects.get(action="action.result_reported", target_id=str(action.pk))
    assert reported.input["output_sha256"] == action.result_output_sha256
    entry = AuditEntry.objects.get(workspace=live_workspace, action="data.plain_copies_pruned")
    assert entry.actor == "system:retention"
    assert entry.input["action_requests"] == [str(action.pk)]
    assert entry.input["retention_days"] == 30
    assert verify_chain(live_workspace).ok


def test_audit_entries_are_never_rewritten_by_pruning(lookup, agent, ask, live_workspace):
    _, client = agent
    _allowed_with_result(client, ask)
    before = list(AuditEntry.objects.filter(workspace=live_workspace).values("seq", "hash"))
    plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(31))
    after = list(AuditEntry.objects.filter(workspace=live_workspace).values("seq", "hash"))
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert verify_chain(live_workspace).ok


def test_running_twice_prunes_nothing_twice(lookup, agent, ask, live_workspace):
    _, client = agent
    _allowed_with_result(client, ask)
    plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(31))
    again = plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(32))
    assert again.audit_entries == 0
    assert AuditEntry.objects.filter(action="data.plain_copies_pruned").count() == 1


def test_a_request_waiting_for_a_human_keeps_its_params(make_tool, agent, ask, live_workspace):
    make_tool(live_workspace, "email.send", level="external", confirmation="always")
    _, client = agent
    response = ask(client, "email.send", {"to": "ann@example.com"})
    assert response.status_code == 202
    plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(31))
    action = ActionRequest.objects.get(pk=response.json()["id"])
    assert action.params == {"to": "ann@example.com"} and action.plain_pruned_at is None


def test_a_result_reported_after_pruning_is_pruned_on_the_next_run(
    lookup, agent, ask, live_workspace
):
    _, client = agent
    action_id = ask(client, "crm.lookup", PARAMS).json()["id"]
    plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(31))
    late = client.post(
        f"/api/v1/actions/{action_id}/result",
        {"status": "succeeded", "output": {"late": True}},
        format="json",
    )
    assert late.status_code == 200
    plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(32))
    action = ActionRequest.objects.get(pk=action_id)
    assert action.result_output is None
    assert action.result_output_sha256 == _sha({"late": True})
    assert verify_chain(live_workspace).ok


def test_no_period_keeps_plain_copies_forever(lookup, agent, ask, live_workspace):
    Workspace.objects.filter(pk=live_workspace.pk).update(plain_copy_retention_days=None)
    live_workspace.refresh_from_db()
    _, client = agent
    action = _allowed_with_result(client, ask)
    result = plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(3650))
    assert result.audit_entries == 0
    action.refresh_from_db()
    assert action.params == PARAMS


def test_pruning_one_workspace_leaves_another_alone(
    make_tool, make_workspace, make_key, key_client, ask, lookup, agent, live_workspace
):
    other = make_workspace(writes_enabled=True, mode="live")
    make_tool(other, "crm.lookup", level="read")
    _, plaintext = make_key(other, scopes=["actions:read"])
    theirs = _allowed_with_result(key_client(plaintext), ask)
    plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(31))
    theirs.refresh_from_db()
    assert theirs.params == PARAMS and theirs.plain_pruned_at is None
    assert not AuditEntry.objects.filter(workspace=other, action="data.plain_copies_pruned")


def test_the_management_command_prunes_and_reports(lookup, agent, ask, live_workspace):
    _, client = agent
    action = _allowed_with_result(client, ask)
    ActionRequest.objects.filter(pk=action.pk).update(created_at=_later(-40))
    call_command("prune_plain_copies", live_workspace.slug)
    action.refresh_from_db()
    assert action.params == {} and action.plain_pruned_at is not None
    entry = AuditEntry.objects.get(workspace=live_workspace, action="data.plain_copies_pruned")
    assert entry.actor == "system:prune_plain_copies"


def test_the_daily_beat_task_prunes_every_workspace(lookup, agent, ask, live_workspace):
    schedule = settings.CELERY_BEAT_SCHEDULE["prune-plain-copies"]
    assert schedule["task"] == prune_plain_copies.name
    _, client = agent
    action = _allowed_with_result(client, ask)
    ActionRequest.objects.filter(pk=action.pk).update(created_at=_later(-40))
    assert prune_plain_copies.delay().get() == 1
    action.refresh_from_db()
    assert action.params == {}


def test_replaying_a_pruned_action_says_its_params_are_gone(lookup, agent, ask, live_workspace):
    _, client = agent
    action = _allowed_with_result(client, ask)
    plain_copies_prune(workspace=live_workspace, actor=RETENTION, now=_later(31))
    report = replay_action(action.pk)
    assert any("pruned" in note for note in report.notes)


# --- the setting ----------------------------------------------------------------------


def test_owner_changes_the_period_through_the_api_and_it_is_audited(workspace, user_client):
    owner = workspace.memberships.get(role=Role.OWNER).user
    client = user_client(owner, workspace)
    response = client.patch(
        "/api/v1/workspace",
        {"reason": "test change", "plain_copy_retention_days": 90},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert client.get("/api/v1/workspace").json()["plain_copy_retention_days"] == 90
    log = VersionLog.objects.filter(workspace=workspace, target_type="workspace").first()
    assert log.before["plain_copy_retention_days"] == 30
    assert log.after["plain_copy_retention_days"] == 90
    assert log.audit_entry.action == "workspace.settings_changed"


@pytest.mark.parametrize("value", [-1, 36501, "thirty", 1.5])
def test_a_bad_period_is_refused_and_changes_nothing(workspace, user_client, api_error, value):
    owner = workspace.memberships.get(role=Role.OWNER).user
    response = user_client(owner, workspace).patch(
        "/api/v1/workspace",
        {"reason": "test change", "plain_copy_retention_days": value},
        format="json",
    )
    api_error(response, 400, "validation_error")
    workspace.refresh_from_db()
    assert workspace.plain_copy_retention_days == 30


def test_an_approver_may_not_change_the_period(workspace, make_member, user_client, api_error):
    approver = make_member(workspace, Role.APPROVER)
    response = user_client(approver, workspace).patch(
        "/api/v1/workspace",
        {"reason": "test change", "plain_copy_retention_days": 1},
        format="json",
    )
    api_error(response, 403, "forbidden_by_scope")
    workspace.refresh_from_db()
    assert workspace.plain_copy_retention_days == 30


def test_a_key_of_another_workspace_changes_only_its_own(
    workspace, other_workspace, make_key, key_client
):
    _, plaintext = make_key(other_workspace, scopes=["workspace:admin"])
    response = key_client(plaintext).patch(
        "/api/v1/workspace",
        {"reason": "test change", "plain_copy_retention_days": 5},
        format="json",
    )
    assert response.status_code in (200, 202), response.json()
    workspace.refresh_from_db()
    assert workspace.plain_copy_retention_days == 30
