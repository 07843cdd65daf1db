"""The workspace's automation and notification settings in the policy document (issue 24
item 1: "the workspace's safety settings"): exported, planned with the door's judgement,
applied through the door (narrowing at once, loosening for a second human), versioned."""

from __future__ import annotations

import copy

import pytest

from approvals.models import ActionRequest, ConfirmationRequest, PolicyVersion
from approvals.policy.document import dump, export_document, parse_document
from approvals.policy.planning import plan
from audit.models import AuditEntry
from notifications.models import WorkspaceAutomationSettings
from notifications.selectors import automation_settings_for
from tenants.models import Membership, Role

APPLY = "/api/v1/policy/apply"


@pytest.fixture
def owner(live_workspace):
    return Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user


def exported(workspace) -> dict:
    workspace.refresh_from_db()
    return export_document(workspace)


def with_automation(doc: dict, **values) -> dict:
    doc = copy.deepcopy(doc)
    doc["automation"].update(values)
    return doc


def test_export_holds_the_automation_settings_and_never_the_bot_token(live_workspace):
    automation = exported(live_workspace)["automation"]
    assert automation == {
        "webhook_host_allowlist": [],
        "anomaly_auto_suspend": False,
        "email_notifications": True,
        "approval_remind_after_minutes": 60,
        "approval_escalate_after_minutes": 240,
        "approval_escalate_to": [],
        "approval_digest_minutes": None,
        "slack_enabled": False,
        "slack_team_id": "",
        "slack_channel": "",
        "slack_dm_approvers": False,
        "unreported_result_window_minutes": 1440,
    }
    assert list(exported(live_workspace)) == [
        "apiVersion",
        "workspace",
        "settings",
        "automation",
        "tools",
    ]


def test_round_trip_with_automation_settings_is_byte_identical(live_workspace, owner, user_client):
    doc = with_automation(
        exported(live_workspace), anomaly_auto_suspend=True, approval_remind_after_minutes=15
    )
    assert (
        user_client(owner, live_workspace)
        .post(APPLY, {"reason": "test change", "document": doc}, format="json")
        .status_code
        == 200
    )
    first = dump(exported(live_workspace))
    response = user_client(owner, live_workspace).post(
        APPLY, {"reason": "test change", "document": first}, format="json"
    )
    assert response.status_code == 200 and response.json()["applied"] == []
    assert dump(exported(live_workspace)) == first


def test_plan_judges_automation_fields_with_the_doors_rules(live_workspace):
    doc = with_automation(
        exported(live_workspace),
        anomaly_auto_suspend=True,  # narrows
        approval_escalate_after_minutes=30,  # sooner: narrows
        email_notifications=False,  # approvers hear less: governed
        webhook_host_allowlist=["hooks.example.com"],  # a new host: governed
    )
    (change,) = plan(live_workspace, parse_document(doc), impact=False).changes
    assert (change.target, change.label) == (
        "automation_settings",
        f"automation_settings {live_workspace.slug}",
    )
    assert change.immediate == ("anomaly_auto_suspend", "approval_escalate_after_minutes")
    assert change.governed == ("email_notifications", "webhook_host_allowlist")
    assert "warden.workspace.widen_outbound_hosts" in change.operations
    assert change.permission == "manage_workspace"


def test_narrowing_automation_applies_at_once_with_its_audit_entry_and_a_version(
    live_workspace, owner, user_client
):
    doc = with_automation(exported(live_workspace), anomaly_auto_suspend=True)
    response = user_client(owner, live_workspace).post(
        APPLY, {"document": doc, "reason": "suspend on anomalies"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert automation_settings_for(live_workspace).anomaly_auto_suspend is True
    entry = AuditEntry.objects.filter(
        workspace=live_workspace, action="workspace.settings_changed"
    ).latest("seq")
    assert entry.target_type == "automation_settings"
    version = PolicyVersion.objects.get(workspace=live_workspace, number=response.json()["version"])
    assert version.diff == {"automation: anomaly_auto_suspend": {"before": False, "after": True}}


def test_loosening_automation_is_one_request_for_a_second_human_with_manage_workspace(
    live_workspace, owner, user_client, make_member, approve
):
    doc = with_automation(
        exported(live_workspace),
        anomaly_auto_suspend=True,
        email_notifications=False,
        webhook_host_allowlist=["hooks.example.com"],
    )
    response = user_client(owner, live_workspace).post(
        APPLY, {"reason": "test change", "document": doc}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["applied"] == response.json()["pending"]  # one object, split
    settings_row = automation_settings_for(live_workspace)
    assert settings_row.anomaly_auto_suspend is True  # the narrowing part, at once
    assert (settings_row.email_notifications, settings_row.webhook_host_allowlist) == (True, [])
    action = ActionRequest.objects.get(workspace=live_workspace, tool_name="warden.policy.apply")
    assert action.params["approve_permission"] == "manage_workspace"
    assert set(action.params["changes"]) == {
        f"automation_settings {live_workspace.slug}: email_notifications",
        f"automation_settings {live_workspace.slug}: webhook_host_allowlist",
    }
    confirmation = ConfirmationRequest.objects.get(action_request=action)
    # An admin (no manage_workspace) may not approve it; another owner may.
    admin = make_member(live_workspace, Role.ADMIN)
    assert approve(admin, live_workspace, confirmation.pk).status_code == 403
    other_owner = make_member(live_workspace, Role.OWNER)
    assert approve(other_owner, live_workspace, confirmation.pk).status_code == 200
    settings_row = automation_settings_for(live_workspace)
    assert settings_row.email_notifications is False
    assert settings_row.webhook_host_allowlist == ["hooks.example.com"]
    version = PolicyVersion.objects.filter(workspace=live_workspace).latest("number")
    assert version.source == "approved" and version.approvers == [f"user:{other_owner.email}"]
    assert set(version.diff) == {
        "automation: email_notifications",
        "automation: webhook_host_allowlist",
    }


def test_a_workspace_admin_cannot_change_automation_settings(
    live_workspace, make_member, user_client, api_error
):
    admin = make_member(live_workspace, Role.ADMIN)
    doc = with_automation(exported(live_workspace), anomaly_auto_suspend=True)
    body = api_error(
        user_client(admin, live_workspace).post(
            APPLY, {"reason": "test change", "document": doc}, format="json"
        ),
        403,
        "forbidden_by_scope",
    )
    assert body["error"]["detail"]["objects"] == [f"automation_settings {live_workspace.slug}"]
    assert not WorkspaceAutomationSettings.objects.filter(
        workspace=live_workspace, anomaly_auto_suspend=True
    ).exists()


def test_an_unknown_or_wrongly_typed_automation_field_is_refused_with_its_path(
    live_workspace, owner, user_client, api_error
):
    doc = with_automation(exported(live_workspace), slack_bot_token_encrypted="x")
    body = api_error(
        user_client(owner, live_workspace).post(
            APPLY, {"reason": "test change", "document": doc}, format="json"
        ),
        400,
        "policy_invalid",
    )
    assert body["error"]["detail"]["errors"][0]["path"] == "$.automation.slack_bot_token_encrypted"
    doc = with_automation(exported(live_workspace), approval_remind_after_minutes="soon")
    body = api_error(
        user_client(owner, live_workspace).post(
            APPLY, {"reason": "test change", "document": doc}, format="json"
        ),
        400,
        "policy_invalid",
    )
    assert (
        body["error"]["detail"]["errors"][0]["path"] == "$.automation.approval_remind_after_minutes"
    )


def test_a_single_automation_change_in_the_admin_or_api_is_a_version(live_workspace, owner):
    from notifications.services import automation_settings_update
    from tests.conftest import SYSTEM

    automation_settings_update(
        reason="test change",
        workspace=live_workspace,
        actor=SYSTEM,
        changes={"anomaly_auto_suspend": True},
    )
    version = PolicyVersion.objects.filter(workspace=live_workspace).latest("number")
    assert version.diff == {"automation: anomaly_auto_suspend": {"before": False, "after": True}}
    assert version.document["automation"]["anomaly_auto_suspend"] is True
