"""Shadow rules (decided beside the live rule, recorded, never enforced) and a single
tool's dry run (allowed calls answer dry_run: true; leaving it is governed)."""

import pytest

from approvals.models import ActionRequest, ConfirmationRequest, Tool
from audit.models import AuditEntry
from tenants.models import Role

SHADOW_REPORT = "/api/v1/policy/shadow-report"


@pytest.fixture
def refund(live_workspace, make_tool):
    """Live rule: never confirmed. Shadow rule: a human above 100."""
    return make_tool(
        live_workspace,
        name="billing.refund",
        level="write",
        shadow_confirmation="conditional",
        shadow_condition="params.amount > 100",
    )


@pytest.fixture
def admin_client(live_workspace, make_key, key_client):
    _, plaintext = make_key(
        live_workspace, scopes=["tools:write", "actions:read", "actions:write", "audit:read"]
    )
    return key_client(plaintext)


def test_shadow_rule_records_its_would_be_decision_and_never_changes_the_live_one(
    refund, agent, ask
):
    _, client = agent
    small = ask(client, "billing.refund", {"amount": 50})
    large = ask(client, "billing.refund", {"amount": 150})
    assert small.status_code == large.status_code == 200  # live: never confirmed
    assert large.json()["decision"] == "allowed"
    agreed = ActionRequest.objects.get(pk=small.json()["id"])
    disagreed = ActionRequest.objects.get(pk=large.json()["id"])
    assert agreed.shadow["agrees"] is True and agreed.shadow["outcome"] == "allowed"
    assert disagreed.shadow == {
        "outcome": "requires_confirmation",
        "code": "",
        "rule": "confirmation",
        "rule_checked": "conditional: params.amount > 100",
        "agrees": False,
    }
    assert not ConfirmationRequest.objects.filter(action_request=disagreed).exists()
    entry = AuditEntry.objects.get(action="action.decided", target_id=str(disagreed.pk))
    assert entry.input["shadow"]["outcome"] == "requires_confirmation"


def test_a_tool_without_shadow_rule_records_no_shadow(live_workspace, make_tool, agent, ask):
    make_tool(live_workspace, name="crm.lookup")
    response = ask(agent[1], "crm.lookup", {})
    assert ActionRequest.objects.get(pk=response.json()["id"]).shadow is None
    entry = AuditEntry.objects.get(action="action.decided", target_id=response.json()["id"])
    assert "shadow" not in entry.input


def test_shadow_report_lists_the_disagreements(refund, agent, ask, admin_client):
    _, client = agent
    for amount in (10, 150, 300, 20):
        ask(client, "billing.refund", {"amount": amount})
    body = admin_client.get(SHADOW_REPORT).json()
    assert (body["shadowed"], body["disagreements"]) == (4, 2)
    (tool,) = body["tools"]
    assert tool["tool"] == "billing.refund" and tool["shadow_rule"].endswith("> 100")
    assert tool["transitions"] == [{"live": "allowed", "shadow": "needs a human", "count": 2}]
    assert len(tool["examples"]) == 2


def test_shadow_report_needs_audit_read_and_a_valid_window(
    refund, live_workspace, make_key, key_client, api_error
):
    _, plaintext = make_key(live_workspace, scopes=["actions:read"])
    api_error(key_client(plaintext).get(SHADOW_REPORT), 403, "forbidden_by_scope")
    _, plaintext = make_key(live_workspace, scopes=["audit:read"])
    api_error(key_client(plaintext).get(SHADOW_REPORT, {"days": "0"}), 400, "validation_error")
    api_error(key_client(plaintext).get(SHADOW_REPORT, {"colour": "1"}), 400, "validation_error")


def test_shadow_report_of_another_workspace_shows_nothing_of_this_one(
    refund, agent, ask, make_workspace, make_key, key_client
):
    ask(agent[1], "billing.refund", {"amount": 150})
    other = make_workspace()
    _, plaintext = make_key(other, scopes=["audit:read"])
    body = key_client(plaintext).get(SHADOW_REPORT).json()
    assert body["shadowed"] == 0 and body["tools"] == []


def test_adding_a_shadow_rule_applies_at_once(live_workspace, make_tool, admin_client):
    tool = make_tool(live_workspace, name="crm.update", level="write", confirmation="always")
    response = admin_client.patch(
        f"/api/v1/tools/{tool.pk}",
        {
            "reason": "test change",
            "shadow_confirmation": "conditional",
            "shadow_condition": "params.n > 1",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    tool.refresh_from_db()
    assert (tool.shadow_confirmation, tool.confirmation) == ("conditional", "always")


def test_promoting_a_looser_shadow_rule_is_filed_for_a_second_human(
    live_workspace, make_tool, admin_client
):
    tool = make_tool(
        live_workspace,
        name="crm.update",
        level="write",
        confirmation="always",
        shadow_confirmation="conditional",
        shadow_condition="params.n > 1",
    )
    response = admin_client.patch(
        f"/api/v1/tools/{tool.pk}",
        {"reason": "test change", "confirmation": "conditional", "condition": "params.n > 1"},
        format="json",
    )
    assert response.status_code == 202
    assert "warden.tool.lower_confirmation" in response.json()["governed_operations"]
    tool.refresh_from_db()
    assert tool.confirmation == "always"


def test_a_bad_shadow_condition_is_refused(live_workspace, admin_client, api_error):
    response = admin_client.post(
        "/api/v1/tools",
        {
            "reason": "test change",
            "name": "crm.x",
            "shadow_confirmation": "conditional",
            "shadow_condition": "1 +",
        },
        format="json",
    )
    body = api_error(response, 400, "validation_error")
    assert "shadow_condition" in body["error"]["detail"]


# --- shadow deny rules ----------------------------------------------------------------------


@pytest.fixture
def update_stage(live_workspace, make_tool):
    """Live: no deny rule. Shadow: refuse moving a deal to `deleted`."""
    return make_tool(
        live_workspace,
        name="crm.update_stage",
        level="write",
        shadow_deny_condition="params.stage == 'deleted'",
        shadow_deny_reason="deals are never deleted by agents",
    )


def test_a_shadow_deny_rule_records_its_refusal_and_never_refuses(update_stage, agent, ask):
    _, client = agent
    kept = ask(client, "crm.update_stage", {"stage": "won"})
    deleted = ask(client, "crm.update_stage", {"stage": "deleted"})
    assert kept.status_code == deleted.status_code == 200  # live: no deny rule
    assert deleted.json()["decision"] == "allowed"
    agreed = ActionRequest.objects.get(pk=kept.json()["id"])
    refused = ActionRequest.objects.get(pk=deleted.json()["id"])
    assert agreed.shadow["agrees"] is True
    assert refused.shadow == {
        "outcome": "denied",
        "code": "denied_by_policy",
        "rule": "deny_condition",
        "rule_checked": "deny: params.stage == 'deleted'",
        "agrees": False,
    }
    assert refused.decision == "allowed" and refused.denial_code == ""


def test_a_shadow_deny_rule_stands_in_for_the_live_one_only(live_workspace, make_tool, agent, ask):
    """Shadowing the deny rule keeps the live confirmation rule; a looser shadow deny
    rule records the allow it would have given, the live refusal stands."""
    make_tool(
        live_workspace,
        name="crm.update_stage",
        level="write",
        confirmation="always",
        deny_condition="params.stage != 'won'",
        shadow_deny_condition="params.stage == 'deleted'",
    )
    lost = ask(agent[1], "crm.update_stage", {"stage": "lost"})
    assert lost.status_code == 403 and lost.json()["error"]["code"] == "denied_by_policy"
    shadow = ActionRequest.objects.get(tool_name="crm.update_stage").shadow
    assert (shadow["outcome"], shadow["agrees"]) == ("requires_confirmation", False)


def test_the_shadow_report_lists_what_a_shadow_deny_rule_would_have_refused(
    update_stage, agent, ask, admin_client
):
    for stage in ("won", "deleted", "deleted", "lost"):
        ask(agent[1], "crm.update_stage", {"stage": stage})
    (tool,) = admin_client.get(SHADOW_REPORT).json()["tools"]
    assert tool["shadow_rule"] == "deny: params.stage == 'deleted'"
    assert (tool["shadowed"], tool["disagreements"]) == (4, 2)
    assert tool["transitions"] == [
        {"live": "allowed", "shadow": "denied (denied_by_policy)", "count": 2}
    ]


def test_adding_a_shadow_deny_rule_applies_at_once_and_a_bad_one_is_refused(
    live_workspace, make_tool, admin_client, api_error
):
    tool = make_tool(live_workspace, name="crm.update", level="write")
    response = admin_client.patch(
        f"/api/v1/tools/{tool.pk}",
        {
            "reason": "test change",
            "shadow_deny_condition": "params.n > 1",
            "shadow_deny_reason": "too many",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    tool.refresh_from_db()
    assert (tool.shadow_deny_condition, tool.deny_condition) == ("params.n > 1", "")
    body = api_error(
        admin_client.patch(
            f"/api/v1/tools/{tool.pk}",
            {"reason": "test change", "shadow_deny_condition": "1 +"},
            format="json",
        ),
        400,
        "validation_error",
    )
    assert "shadow_deny_condition" in body["error"]["detail"]


def test_removing_a_shadow_deny_rule_applies_at_once(live_workspace, make_tool, admin_client):
    tool = make_tool(live_workspace, name="crm.update", level="write", shadow_deny_condition="true")
    response = admin_client.patch(
        f"/api/v1/tools/{tool.pk}",
        {"reason": "test change", "shadow_deny_condition": ""},
        format="json",
    )
    assert response.status_code == 200, response.json()


# --- per-tool dry run -----------------------------------------------------------------------


def test_a_tool_in_dry_run_answers_dry_run_for_that_tool_only(
    live_workspace, make_tool, agent, ask
):
    make_tool(live_workspace, name="crm.update", level="write", dry_run=True)
    make_tool(live_workspace, name="crm.lookup")
    _, client = agent
    trial = ask(client, "crm.update", {"deal": 1})
    real = ask(client, "crm.lookup", {})
    assert trial.status_code == real.status_code == 200
    assert trial.json()["dry_run"] is True
    assert real.json()["dry_run"] is False
    assert ActionRequest.objects.get(pk=trial.json()["id"]).dry_run is True


def test_a_tool_in_dry_run_still_gates_like_a_live_one(live_workspace, make_tool, agent, ask):
    make_tool(live_workspace, name="crm.update", level="write", confirmation="always", dry_run=True)
    response = ask(agent[1], "crm.update", {"deal": 1})
    assert response.status_code == 202


def test_putting_a_tool_into_dry_run_applies_at_once(live_workspace, make_tool, admin_client):
    tool = make_tool(live_workspace, name="crm.update", level="write")
    response = admin_client.patch(
        f"/api/v1/tools/{tool.pk}", {"reason": "test change", "dry_run": True}, format="json"
    )
    assert response.status_code == 200
    tool.refresh_from_db()
    assert tool.dry_run is True


def test_taking_a_tool_out_of_dry_run_is_filed_for_a_second_human(
    live_workspace, make_tool, admin_client, make_member, approve
):
    tool = make_tool(live_workspace, name="crm.update", level="write", dry_run=True)
    response = admin_client.patch(
        f"/api/v1/tools/{tool.pk}", {"reason": "test change", "dry_run": False}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["governed_operations"]
    tool.refresh_from_db()
    assert tool.dry_run is True
    # A second human approves: the tool leaves its dry run.
    confirmation = ConfirmationRequest.objects.get(action_request_id=response.json()["id"])
    owner = make_member(live_workspace, Role.OWNER)
    assert approve(owner, live_workspace, confirmation.pk).status_code == 200
    assert Tool.objects.get(pk=tool.pk).dry_run is False


def test_approval_given_in_a_tools_dry_run_is_void_once_it_leaves_it(
    live_workspace, make_tool, agent, ask, make_member, approve, api_error
):
    from approvals.catalog import tool_update
    from approvals.guard import operator_seeding
    from tests.conftest import SYSTEM

    tool = make_tool(
        live_workspace, name="crm.update", level="write", confirmation="always", dry_run=True
    )
    _, client = agent
    pending = ask(client, "crm.update", {"deal": 1}).json()
    approver = make_member(live_workspace, Role.APPROVER)
    confirmation = ConfirmationRequest.objects.get(action_request_id=pending["id"])
    assert approve(approver, live_workspace, confirmation.pk).status_code == 200
    with operator_seeding():
        tool_update(reason="test set-up", tool=tool, actor=SYSTEM, changes={"dry_run": False})
    used = ask(
        client,
        "crm.update",
        {"deal": 1},
        confirmed=True,
        confirmation_token=pending["confirmation_token"],
    )
    body = api_error(used, 410, "confirmation_expired")
    assert body["error"]["detail"]["reason"] == "approved_in_dry_run"
