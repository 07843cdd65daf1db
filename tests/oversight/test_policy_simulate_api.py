"""POST /api/v1/policy/simulate: audit:read, the credential's workspace only, clear
errors for a bad proposal, nothing written."""

import pytest

from approvals.asking import action_submit
from approvals.models import ActionRequest, Tool
from audit.models import AuditEntry
from common.actor import Actor
from keys.services import key_revoke
from oversight.api.serializers import ImpactReportSerializer
from tenants.models import Role
from tests.conftest import SYSTEM

URL = "/api/v1/policy/simulate"


@pytest.fixture
def history(live_workspace, make_tool, make_key):
    make_tool(
        live_workspace,
        name="billing.refund",
        level="write",
        confirmation="conditional",
        condition="params.amount > 100",
    )
    key, _ = make_key(live_workspace, scopes=["actions:read", "actions:write"])
    for amount in (50, 150, 250):
        action_submit(key=key, tool_name="billing.refund", params={"amount": amount}, actor=SYSTEM)
    return live_workspace


@pytest.fixture
def reader(history, make_key, key_client):
    _, plaintext = make_key(history, scopes=["audit:read"])
    return key_client(plaintext)


def proposal(workspace, condition):
    tools = [t.snapshot() for t in Tool.objects.filter(workspace=workspace)]
    tools[0]["condition"] = condition
    return {"tools": tools}


def test_a_loosening_is_reported_with_its_headline(history, reader):
    response = reader.post(URL, proposal(history, "params.amount > 200"), format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["scanned"] == 3 and body["changed"] == 1
    assert body["headline"] == (
        "would have let 1 of last month's 3 billing.refund requests through without a human"
    )
    assert ImpactReportSerializer(data=body).is_valid()


def test_simulating_writes_nothing(history, reader):
    counts = ActionRequest.objects.count(), AuditEntry.objects.count()
    reader.post(URL, proposal(history, "params.amount > 200"), format="json")
    assert (ActionRequest.objects.count(), AuditEntry.objects.count()) == counts
    assert Tool.objects.get(workspace=history).condition == "params.amount > 100"


def test_omitted_tools_replay_todays_catalog(history, reader):
    body = reader.post(URL, {"days": 7}, format="json").json()
    assert (body["scanned"], body["changed"], body["days"]) == (3, 0, 7)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tools": [{"name": "billing.refund", "colour": "red"}]}, "tools[0].colour"),
        (
            {"tools": [{"name": "b.r", "confirmation": "conditional", "condition": "1 +"}]},
            "tools[0].condition",
        ),
        ({"settings": {"mode": "later"}}, "settings.mode"),
        ({"days": 0}, "days"),
        ({"days": 400}, "days"),
        ({"extra": 1}, "extra"),
        ({"tools": "all"}, "tools"),
    ],
)
def test_a_bad_proposal_is_a_validation_error_naming_the_field(
    history, reader, api_error, body, field
):
    error = api_error(reader.post(URL, body, format="json"), 400, "validation_error")
    assert field in error["error"]["detail"]


def test_another_workspaces_key_replays_only_its_own_history(
    history, make_workspace, make_key, key_client
):
    other = make_workspace(writes_enabled=True, mode="live")
    _, plaintext = make_key(other, scopes=["audit:read"])
    body = key_client(plaintext).post(URL, {}, format="json").json()
    assert body["scanned"] == 0 and body["examples"] == []
    assert "billing.refund" not in str(body)


def test_a_key_without_audit_read_is_refused(history, make_key, key_client, api_error):
    _, plaintext = make_key(history, scopes=["actions:read", "tools:write"])
    body = api_error(key_client(plaintext).post(URL, {}, format="json"), 403, "forbidden_by_scope")
    assert body["error"]["detail"]["required_scope"] == "audit:read"


def test_a_revoked_key_is_refused(history, make_key, key_client, api_error):
    key, plaintext = make_key(history, scopes=["audit:read"])
    key_revoke(key=key, actor=Actor.system("tests"), reason="leaked")
    api_error(key_client(plaintext).post(URL, {}, format="json"), 401, "key_revoked")


def test_an_auditor_may_simulate_a_member_may_not(history, make_member, user_client, api_error):
    auditor = make_member(history, Role.AUDITOR)
    assert user_client(auditor, history).post(URL, {}, format="json").status_code == 200
    member = make_member(history, Role.MEMBER)
    api_error(user_client(member, history).post(URL, {}, format="json"), 403, "forbidden_by_scope")
