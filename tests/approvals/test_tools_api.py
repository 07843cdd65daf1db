"""Tool catalog through /api/v1/tools: default-deny listing, audited versioned writes."""

from approvals.models import Tool
from audit.models import VersionLog
from tenants.models import Role, Workspace


def code(response):
    return response.json()["error"]["code"]


def test_key_lists_only_callable_tools(live_workspace, make_key, key_client, make_tool):
    make_tool(live_workspace, "crm.lookup")
    make_tool(live_workspace, "crm.update_stage", level="write")
    make_tool(live_workspace, "crm.off", enabled=False)
    make_tool(live_workspace, "hr.lookup")
    make_tool(live_workspace, "crm.mail", level="external")
    _, plaintext = make_key(
        live_workspace, scopes=["actions:read", "actions:external"], tools=["crm.*"]
    )
    response = key_client(plaintext).get("/api/v1/tools")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert set(rows) == {"crm.lookup", "crm.mail"}
    assert rows["crm.lookup"]["confirmation"] == "never"
    assert rows["crm.mail"]["confirmation"] == "always"  # outbound gate
    assert "condition" not in rows["crm.lookup"]


def test_key_cannot_read_a_tool_it_may_not_call(live_workspace, make_key, key_client, make_tool):
    hidden = make_tool(live_workspace, "hr.lookup")
    _, plaintext = make_key(live_workspace, tools=["crm.*"])
    assert key_client(plaintext).get(f"/api/v1/tools/{hidden.pk}").status_code == 404


def test_create_needs_tools_write(live_workspace, make_key, key_client):
    _, plaintext = make_key(live_workspace, scopes=["actions:read"])
    response = key_client(plaintext).post(
        "/api/v1/tools", {"reason": "test change", "name": "crm.x"}, format="json"
    )
    assert (response.status_code, code(response)) == (403, "forbidden_by_scope")


def test_create_bumps_policy_version_and_logs_snapshot(live_workspace, make_key, key_client):
    before = Workspace.objects.get(pk=live_workspace.pk).policy_version
    _, plaintext = make_key(live_workspace, scopes=["tools:write"])
    response = key_client(plaintext).post(
        "/api/v1/tools",
        {
            "reason": "test change",
            "name": "billing.refund",
            "level": "write",
            "confirmation": "conditional",
            "condition": "params.amount > 1000",
            "summary_template": "Refund {params.amount}",
            "data_classes": ["financial"],
            "enabled": False,  # narrows: added at once (an enabled tool is governed)
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    version = Workspace.objects.get(pk=live_workspace.pk).policy_version
    assert version == before + 1
    log = VersionLog.objects.get(target_type="tool", target_id=response.json()["id"])
    assert log.before is None
    assert log.after == Tool.objects.get(name="billing.refund").snapshot()
    assert log.policy_version == version


def test_update_and_delete_are_versioned(live_workspace, make_key, key_client, make_tool):
    tool = make_tool(live_workspace, "crm.lookup")
    _, plaintext = make_key(live_workspace, scopes=["tools:write"])
    client = key_client(plaintext)
    response = client.patch(
        f"/api/v1/tools/{tool.pk}", {"reason": "test change", "enabled": False}, format="json"
    )
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert (
        client.delete(
            f"/api/v1/tools/{tool.pk}", {"reason": "test change"}, format="json"
        ).status_code
        == 204
    )
    logs = list(VersionLog.objects.filter(target_type="tool").order_by("policy_version"))
    assert [(bool(log.before), bool(log.after)) for log in logs] == [
        (False, True),
        (True, True),
        (True, False),
    ]
    assert logs[1].before["enabled"] is True and logs[1].after["enabled"] is False
    versions = [log.policy_version for log in logs]
    assert versions == sorted(set(versions))


def test_bad_condition_is_a_validation_error_naming_the_position(
    live_workspace, make_key, key_client
):
    _, plaintext = make_key(live_workspace, scopes=["tools:write"])
    response = key_client(plaintext).post(
        "/api/v1/tools",
        {
            "reason": "test change",
            "name": "billing.refund",
            "confirmation": "conditional",
            "condition": "params.amount >",
        },
        format="json",
    )
    assert (response.status_code, code(response)) == (400, "validation_error")
    assert "line 1, column 16" in response.json()["error"]["detail"]["condition"][0]


def test_reserved_and_duplicate_names(live_workspace, make_key, key_client, make_tool):
    make_tool(live_workspace, "crm.lookup")
    _, plaintext = make_key(live_workspace, scopes=["tools:write"])
    client = key_client(plaintext)
    reserved = client.post(
        "/api/v1/tools", {"reason": "test change", "name": "warden.key.create_admin"}, format="json"
    )
    assert code(reserved) == "validation_error"
    duplicate = client.post(
        "/api/v1/tools", {"reason": "test change", "name": "crm.lookup"}, format="json"
    )
    assert (duplicate.status_code, code(duplicate)) == (409, "conflict")


def test_human_with_manage_tools_sees_the_whole_catalog(
    live_workspace, make_member, user_client, make_tool
):
    make_tool(live_workspace, "crm.lookup")
    make_tool(live_workspace, "crm.off", enabled=False, condition="")
    admin = make_member(live_workspace, Role.ADMIN)
    response = user_client(admin, live_workspace).get("/api/v1/tools")
    assert {row["name"] for row in response.json()["results"]} == {"crm.lookup", "crm.off"}


def test_human_without_manage_tools_is_refused(live_workspace, make_member, user_client):
    auditor = make_member(live_workspace, Role.AUDITOR)
    response = user_client(auditor, live_workspace).get("/api/v1/tools")
    assert code(response) == "forbidden_by_scope"


def test_tool_of_another_workspace_is_not_found(
    live_workspace, other_workspace, make_key, key_client, make_tool
):
    foreign = make_tool(other_workspace, "crm.lookup")
    _, plaintext = make_key(live_workspace, scopes=["tools:write"])
    client = key_client(plaintext)
    assert (
        client.patch(
            f"/api/v1/tools/{foreign.pk}",
            {"reason": "test change", "enabled": False},
            format="json",
        ).status_code
        == 404
    )
    assert (
        client.delete(
            f"/api/v1/tools/{foreign.pk}", {"reason": "test change"}, format="json"
        ).status_code
        == 404
    )


def test_demo_tools_are_idempotent(live_workspace, operator_seeded):
    from approvals.demo import load_demo_tools
    from tests.approvals.conftest import SYSTEM

    created = load_demo_tools(workspace=live_workspace, actor=SYSTEM)
    assert {t.name for t in created} == {
        "crm.lookup",
        "crm.update_stage",
        "email.send",
        "billing.set_plan",
        "billing.refund",
    }
    assert load_demo_tools(workspace=live_workspace, actor=SYSTEM) == []


def test_demo_conditions_decide_as_documented(live_workspace, agent, ask, operator_seeded):
    from approvals.demo import load_demo_tools
    from tests.approvals.conftest import SYSTEM

    _, client = agent
    load_demo_tools(workspace=live_workspace, actor=SYSTEM)
    live_workspace.plan_rank = 3
    live_workspace.save()
    # The sensitivity floor (on by default): financial writes and irreversible actions
    # always reach a human, whatever the tool's own condition says.
    assert ask(client, "billing.refund", {"amount": 50, "customer_id": "c1"}).status_code == 202
    assert (
        ask(
            client, "billing.set_plan", {"new_plan_rank": 5, "new_plan": "pro", "customer_id": "c1"}
        ).status_code
        == 202
    )
    # With the floor switched off (a governed change), the tools' conditions decide.
    live_workspace.sensitivity_floor = False
    live_workspace.save()
    assert ask(client, "billing.refund", {"amount": 50, "customer_id": "c1"}).status_code == 200
    assert ask(client, "billing.refund", {"amount": 5000, "customer_id": "c1"}).status_code == 202
    downgrade = ask(
        client, "billing.set_plan", {"new_plan_rank": 1, "new_plan": "basic", "customer_id": "c1"}
    )
    assert downgrade.status_code == 202 and downgrade.json()["irreversible"] is True
    assert (
        ask(
            client, "billing.set_plan", {"new_plan_rank": 5, "new_plan": "pro", "customer_id": "c1"}
        ).status_code
        == 200
    )
    email = ask(client, "email.send", {"to": "a@b.c", "subject": "Hi"}).json()
    assert email["summary"] == 'Email a@b.c with subject "Hi"'


def test_demo_tools_name_a_missing_or_mistyped_parameter(
    live_workspace, agent, ask, operator_seeded
):
    """Issue 23: the demo's billing tools answered an opaque policy_error (a condition on
    a missing amount) or the summary "customer ?"."""
    from approvals.demo import load_demo_tools
    from tests.approvals.conftest import SYSTEM

    _, client = agent
    load_demo_tools(workspace=live_workspace, actor=SYSTEM)
    missing = ask(client, "billing.refund", {"amount": 50})
    assert code(missing) == "invalid_params"
    assert "customer_id" in missing.json()["error"]["message"] + str(
        missing.json()["error"].get("detail")
    )
    mistyped = ask(client, "billing.refund", {"amount": "lots", "customer_id": "c1"})
    assert code(mistyped) == "invalid_params"
    plan = ask(client, "billing.set_plan", {"new_plan_rank": 1, "new_plan": "basic"})
    assert code(plan) == "invalid_params"
