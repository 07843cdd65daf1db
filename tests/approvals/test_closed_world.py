"""Closed world (DESIGN.md 12): a change to anything the gate, the gateway, the
notifications or the evidence read is governed unless it provably narrows.

Each regression below was open on main: the change applied at once."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from approvals import effective
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, Tool
from audit.models import ExceptionRecord
from notifications.models import (
    WebhookEndpoint,
    WorkspaceAutomationSettings,
)
from notifications.services import automation_settings_update
from oversight.models import AuditExportDestination
from tenants.models import Membership, Role, Workspace
from tests.conftest import SYSTEM

# Every policy-bearing model, by the target its rules are filed under.
POLICY_MODELS = {
    effective.TOOL: "approvals.Tool",
    effective.KEY: "keys.MachineKey",
    effective.WORKSPACE: "tenants.Workspace",
    effective.MEMBERSHIP: "tenants.Membership",
    effective.INVITATION: "tenants.Invitation",
    effective.WEBHOOK: "notifications.WebhookEndpoint",
    effective.EXPORT: "oversight.AuditExportDestination",
    effective.AUTOMATION: "notifications.WorkspaceAutomationSettings",
    effective.CONNECTOR: "gateway.Connector",
}


# --- the classification is closed --------------------------------------------------------


@pytest.mark.parametrize("target", sorted(POLICY_MODELS))
def test_every_field_of_every_policy_model_has_exactly_one_rule(target):
    model = apps.get_model(POLICY_MODELS[target])
    inert = set(effective.INERT[target])
    in_facets = [k for facet in effective.FACETS[target] for k in facet.fields]
    assert len(in_facets) == len(set(in_facets)), "a key in two facets"
    assert not inert & set(in_facets), "a key both inert and in a facet"
    for field in model._meta.concrete_fields:
        assert (field.name in inert) != (field.name in in_facets), (
            f"{model.__name__}.{field.name} has no rule in approvals/effective.py"
        )


def test_an_unclassified_snapshot_key_is_governed():
    before = {"name": "crm.lookup", "enabled": True, "brand_new_field": 1}
    after = {**before, "brand_new_field": 2}
    assert effective.widening(effective.TOOL, before, after) == ("brand_new_field",)


@pytest.mark.parametrize(
    ("field", "before", "after", "narrows"),
    [
        ("tool_allowlist", ["crm.*"], ["crm.lookup"], True),
        ("tool_allowlist", ["crm.lookup"], ["crm.*"], False),
        ("tool_allowlist", ["hr.*"], ["crm.payroll_export"], False),
        ("scopes", ["workspace:admin"], ["actions:read"], True),
        ("scopes", ["actions:read"], ["actions:read", "keys:write"], False),
        ("allowed_ips", [], ["10.0.0.0/8"], True),
        ("allowed_ips", ["10.0.0.0/8"], ["10.1.0.0/16"], True),
        ("allowed_ips", ["10.1.0.0/16"], ["10.0.0.0/8"], False),
        ("allowed_ips", ["10.0.0.0/8"], [], False),
        ("rate_limit_per_minute", 60, 30, True),
        ("rate_limit_per_minute", 30, 60, False),
        ("expires_at", None, "2030-01-01T00:00:00+00:00", True),
        ("expires_at", "2030-01-01T00:00:00+00:00", None, False),
        ("unattended_mode", True, False, True),
        ("unattended_mode", False, True, False),
    ],
)
def test_keys_are_judged_on_what_they_allow(field, before, after, narrows):
    grown = effective.widening(effective.KEY, {field: before}, {field: after})
    assert (grown == ()) is narrows


def test_the_documented_table_matches_the_code():
    from tests.docs import documentation_text

    assert effective.classification_markdown() in documentation_text()


# --- tools -------------------------------------------------------------------------------


@pytest.fixture
def owner(workspace):
    return Membership.objects.get(workspace=workspace, role=Role.OWNER).user


@pytest.fixture
def session(owner, workspace, user_client):
    return user_client(owner, workspace)


def _governed(response, *names):
    assert response.status_code == 202, response.json()
    assert set(names) <= set(response.json()["governed_operations"])
    return ActionRequest.objects.get(pk=response.json()["id"])


def test_renaming_a_tool_is_governed(workspace, session, make_tool):
    tool = make_tool(workspace, "hr.payroll_export", confirmation="always")
    response = session.patch(
        f"/api/v1/tools/{tool.pk}",
        {"reason": "test change", "name": "crm.payroll_export"},
        format="json",
    )
    _governed(response, "warden.tool.change_governed_fields")
    assert Tool.objects.get(pk=tool.pk).name == "hr.payroll_export"


def test_creating_a_conditional_tool_whose_condition_never_holds_is_governed(workspace, session):
    body = {"name": "ops.wipe", "level": "write", "confirmation": "conditional"}
    response = session.post(
        "/api/v1/tools", {"reason": "test change", **body, "condition": "false"}, format="json"
    )
    _governed(response, "warden.tool.create")
    assert not Tool.objects.filter(name="ops.wipe").exists()


def test_deleting_narrows_but_recreating_without_protection_is_governed(
    workspace, session, make_tool
):
    tool = make_tool(workspace, "ops.wipe", level="write", confirmation="always", irreversible=True)
    assert (
        session.delete(
            f"/api/v1/tools/{tool.pk}", {"reason": "test change"}, format="json"
        ).status_code
        == 204
    )
    response = session.post(
        "/api/v1/tools",
        {
            "reason": "test change",
            "name": "ops.wipe",
            "level": "write",
            "confirmation": "conditional",
            "condition": "1 == 2",
        },
        format="json",
    )
    _governed(response, "warden.tool.create")
    assert not Tool.objects.filter(name="ops.wipe").exists()


@pytest.mark.parametrize("field", ["summary_template", "description"])
def test_what_approvers_read_is_governed(workspace, session, make_tool, field):
    tool = make_tool(workspace, "billing.refund", confirmation="always")
    response = session.patch(
        f"/api/v1/tools/{tool.pk}",
        {"reason": "test change", field: "Routine, approve"},
        format="json",
    )
    request = _governed(response, "warden.tool.change_governed_fields")
    assert field in request.params["changes"]
    assert getattr(Tool.objects.get(pk=tool.pk), field) == ""


def test_renaming_a_tool_in_the_admin_is_governed(workspace, owner, make_tool):
    tool = make_tool(workspace, "hr.payroll_export", confirmation="always")
    client = Client()
    client.force_login(owner)
    data = {
        "reason": "test change",
        "name": "crm.payroll_export",
        "description": "",
        "level": "read",
        "data_classes": "[]",
        "confirmation": "always",
        "condition": "",
        "summary_template": "",
        "secret_params": "[]",
        "enabled": "on",
        "input_schema": "{}",
        "deny_condition": "",
        "deny_reason": "",
    }
    client.post(f"/admin/approvals/tool/{tool.pk}/change/", data)
    assert Tool.objects.get(pk=tool.pk).name == "hr.payroll_export"
    assert ActionRequest.objects.filter(status="pending", workspace=workspace).exists()


def test_narrowing_a_tool_still_applies_at_once(workspace, session, make_tool):
    tool = make_tool(workspace, "crm.update", level="write", confirmation="never")
    response = session.patch(
        f"/api/v1/tools/{tool.pk}",
        {
            "reason": "test change",
            "confirmation": "always",
            "level": "external",
            "data_classes": ["pii"],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert not ActionRequest.objects.exists()


# --- workspace -------------------------------------------------------------------------------


def test_a_longer_confirmation_ttl_is_governed_and_a_shorter_one_is_not(workspace, session):
    response = session.patch(
        "/api/v1/workspace",
        {"reason": "test change", "confirmation_ttl_seconds": 30 * 24 * 3600},
        format="json",
    )
    _governed(response, "warden.workspace.change_governed_fields")
    assert Workspace.objects.get(pk=workspace.pk).confirmation_ttl == timedelta(hours=24)
    shorter = session.patch(
        "/api/v1/workspace",
        {"reason": "test change", "confirmation_ttl_seconds": 600},
        format="json",
    )
    assert shorter.status_code == 200
    assert Workspace.objects.get(pk=workspace.pk).confirmation_ttl == timedelta(seconds=600)


def test_going_live_before_the_dry_run_ends_is_a_recorded_override(
    workspace, session, make_member, approve
):
    assert Workspace.objects.get(pk=workspace.pk).live_after > timezone.now()
    response = session.patch(
        "/api/v1/workspace", {"reason": "test change", "mode": "live"}, format="json"
    )
    request = _governed(response, "warden.workspace.go_live", "warden.workspace.go_live_early")
    assert "before its planned end" in request.confirmation.summary
    assert Workspace.objects.get(pk=workspace.pk).mode == "dry_run"
    second = make_member(workspace, Role.OWNER)
    assert approve(second, workspace, request.confirmation.pk).status_code == 200
    assert Workspace.objects.get(pk=workspace.pk).mode == "live"
    record = ExceptionRecord.objects.get(workspace=workspace, kind="override")
    assert record.evidence["early"] is True


# --- notifications and evidence ----------------------------------------------------------------


@pytest.fixture
def admin_session(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_switching_approver_email_off_is_governed_and_on_is_not(workspace, admin_session):
    automation_settings_update(
        reason="test set-up",
        workspace=workspace,
        actor=SYSTEM,
        changes={"email_notifications": True},
    )
    url = f"/admin/notifications/workspaceautomationsettings/{workspace.pk}/change/"
    admin_session.post(url, {"reason": "test change"})  # both boxes unticked
    saved = WorkspaceAutomationSettings.objects.get(workspace=workspace)
    assert saved.email_notifications is True
    request = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert "email_notifications" in request.params["changes"]
    with operator_seeding():
        automation_settings_update(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            changes={"email_notifications": False},
        )
    admin_session.post(url, {"reason": "test change", "email_notifications": "on"})
    assert WorkspaceAutomationSettings.objects.get(workspace=workspace).email_notifications


@pytest.fixture
def endpoint(workspace, allow_hosts):
    allow_hosts(workspace, ("127.0.0.0/8",))
    with operator_seeding():
        return WebhookEndpoint.objects.create(
            workspace=workspace,
            name="hooks",
            url="https://127.0.0.1/in",
            secret="s" * 32,
            events=["confirmation.requested"],
            created_by="test",
        )


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://127.0.0.2/in"},
        {"events": ["confirmation.requested", "action.approved"]},
        {"events": ["action.denied"]},
    ],
)
def test_repointing_the_webhook_is_governed(workspace, admin_session, endpoint, change):
    data = {"name": "hooks", "url": endpoint.url, "events": endpoint.events, "enabled": "on"}
    admin_session.post(
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/",
        {"reason": "test change", **data, **change},
    )
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (stored.url, stored.events) == (endpoint.url, endpoint.events)
    request = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert set(change) <= set(request.params["changes"])


def test_renaming_the_webhook_applies_at_once(workspace, admin_session, endpoint):
    data = {
        "reason": "test change",
        "name": "renamed",
        "url": endpoint.url,
        "events": endpoint.events,
        "enabled": "on",
    }
    admin_session.post(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/", data)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).name == "renamed"
    assert not ActionRequest.objects.filter(status="pending").exists()


def test_repointing_the_audit_export_is_governed(workspace, admin_session, allow_hosts):
    allow_hosts(workspace, ("hooks.example.test", "evil.example.test"))
    with operator_seeding():
        AuditExportDestination.objects.create(
            workspace=workspace, kind="webhook", url="https://hooks.example.test/in", secret="x"
        )
    url = f"/admin/oversight/auditexportdestination/{workspace.pk}/change/"
    response = admin_session.post(
        url,
        {
            "reason": "test change",
            "kind": "webhook",
            "url": "https://evil.example.test/in",
            "enabled": "on",
            "batch_size": "500",
        },
        follow=True,
    )
    assert "needs another person" in response.content.decode()
    stored = AuditExportDestination.objects.get(workspace=workspace)
    assert stored.url == "https://hooks.example.test/in"
    request = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert "url" in request.params["changes"]


# --- keys ------------------------------------------------------------------------------------


@pytest.fixture
def agent_key(workspace, make_key):
    key, _ = make_key(workspace, scopes=["actions:write"], tools=["crm.*"])
    return key


def test_switching_unattended_on_through_the_api_is_governed_and_off_is_not(
    workspace, session, agent_key, make_member, approve
):
    response = session.patch(
        f"/api/v1/keys/{agent_key.pk}",
        {"reason": "test change", "unattended_mode": True},
        format="json",
    )
    request = _governed(response, "warden.key.enable_unattended")
    agent_key.refresh_from_db()
    assert agent_key.unattended_mode is False
    second = make_member(workspace, Role.OWNER)
    assert approve(second, workspace, request.confirmation.pk).status_code == 200
    agent_key.refresh_from_db()
    assert agent_key.unattended_mode is True
    off = session.patch(
        f"/api/v1/keys/{agent_key.pk}",
        {"reason": "test change", "unattended_mode": False},
        format="json",
    )
    assert off.status_code == 200, off.json()
    agent_key.refresh_from_db()
    assert agent_key.unattended_mode is False


def test_a_machine_key_may_propose_unattended_mode_but_never_apply_it(
    workspace, make_key, key_client, agent_key, owner
):
    _, plaintext = make_key(workspace, scopes=["workspace:admin"], owner=owner)
    response = key_client(plaintext).patch(
        f"/api/v1/keys/{agent_key.pk}",
        {"reason": "test change", "unattended_mode": True},
        format="json",
    )
    _governed(response, "warden.key.enable_unattended")
    agent_key.refresh_from_db()
    assert agent_key.unattended_mode is False


def test_switching_unattended_on_in_the_admin_is_governed_and_off_is_not(
    workspace, admin_session, agent_key
):
    url = f"/admin/keys/machinekey/{agent_key.pk}/unattended/"
    assert admin_session.get(url).status_code == 200
    admin_session.post(url, {"reason": "nightly batch"})
    agent_key.refresh_from_db()
    assert agent_key.unattended_mode is False
    request = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert request.params["operations"] == ["warden.key.enable_unattended"]
    with operator_seeding():
        type(agent_key).objects.filter(pk=agent_key.pk).update(unattended_mode=True)
    admin_session.post(url, {"reason": "test change"})
    agent_key.refresh_from_db()
    assert agent_key.unattended_mode is False
