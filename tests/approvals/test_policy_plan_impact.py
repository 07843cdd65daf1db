"""`plan` shows the impact of the proposed document on recorded history (API, command,
and the review page of the pending `warden.policy.apply` request): a seeded history with
known counts (issue 24)."""

import copy
import json
import re

import pytest
from django.core.management import call_command
from django.test import Client

from approvals.asking import action_submit
from approvals.models import ConfirmationRequest
from approvals.policy.document import export_document
from tenants.models import Membership, Role
from tests.conftest import SYSTEM

AMOUNTS = (50, 150, 250, 80, 500)  # condition amount > 100: 3 need a human, 2 allowed
HEADLINE = "would have let 1 of last month's 5 billing.refund requests through without a human"


@pytest.fixture
def history(live_workspace, make_tool, make_key):
    make_tool(
        live_workspace,
        name="billing.refund",
        level="write",
        confirmation="conditional",
        condition="params.amount > 100",
    )
    key, _ = make_key(live_workspace, scopes=["actions:read", "actions:write"], name="refunder")
    outcomes = [
        action_submit(key=key, tool_name="billing.refund", params={"amount": a}, actor=SYSTEM)
        for a in AMOUNTS
    ]
    assert [o.allowed for o in outcomes] == [True, False, False, True, False]
    return live_workspace


@pytest.fixture
def owner(live_workspace):
    return Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user


def nonzero(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if v}


def loosened(workspace, condition="params.amount > 200") -> dict:
    workspace.refresh_from_db()
    doc = copy.deepcopy(export_document(workspace))
    (entry,) = [t for t in doc["tools"] if t["name"] == "billing.refund"]
    entry["condition"] = condition
    return doc


def test_plan_api_reports_the_impact_of_the_proposed_document(history, owner, user_client):
    response = user_client(owner, history).post(
        "/api/v1/policy/plan", {"document": loosened(history)}, format="json"
    )
    assert response.status_code == 200, response.json()
    impact = response.json()["impact"]
    assert (impact["scanned"], impact["changed"], impact["days"]) == (5, 1, 30)
    assert impact["headline"] == HEADLINE
    assert nonzero(impact["summary"]) == {"now_allowed_without_human": 1}
    assert impact["transitions"] == [{"from": "needs a human", "to": "allowed", "count": 1}]
    assert impact["tools"] == [{"tool": "billing.refund", "changed": 1, "requests": 5}]


def test_a_narrowing_plan_reports_the_requests_it_would_send_to_a_human(
    history, owner, user_client
):
    doc = loosened(history, "params.amount > 100")  # the condition as it is
    (entry,) = doc["tools"]
    entry["confirmation"] = "always"
    response = user_client(owner, history).post(
        "/api/v1/policy/plan", {"document": doc}, format="json"
    )
    body = response.json()
    assert body["narrows"] is True
    assert nonzero(body["impact"]["summary"]) == {"now_needs_human": 2}  # the 50 and 80


def test_settings_in_the_document_are_replayed_and_the_others_ignored(history, owner, user_client):
    doc = loosened(history, "params.amount > 100")  # the tool as it is
    doc["settings"]["writes_enabled"] = False
    doc["settings"]["confirmation_ttl"] = 60  # not read by the gate: no error
    body = (
        user_client(owner, history)
        .post("/api/v1/policy/plan", {"document": doc}, format="json")
        .json()
    )
    assert nonzero(body["impact"]["summary"]) == {"now_denied": 5}


def test_an_unchanged_document_has_no_impact(history, owner, user_client):
    body = (
        user_client(owner, history)
        .post("/api/v1/policy/plan", {"document": export_document(history)}, format="json")
        .json()
    )
    assert body["changes"] == [] and body["impact"] is None


def test_plan_command_prints_the_headline(history, tmp_path, capsys):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(loosened(history)))
    call_command("policy", "plan", str(path))
    out = capsys.readouterr().out
    assert f"impact on the last 30 days: {HEADLINE} (1 of 5 decisions change)" in out
    assert "needs a human -> allowed: 1" in out


def test_the_review_page_of_a_policy_request_shows_its_impact(
    history, owner, user_client, make_member
):
    response = user_client(owner, history).post(
        "/api/v1/policy/apply",
        {"reason": "test change", "document": loosened(history)},
        format="json",
    )
    assert response.status_code == 202, response.json()
    confirmation = ConfirmationRequest.objects.get(
        workspace=history, action_request__tool_name="warden.policy.apply"
    )
    client = Client()
    client.force_login(make_member(history, Role.ADMIN))
    html = client.get(f"/admin/approvals/confirmationrequest/{confirmation.pk}/").content.decode()
    headline = re.search(r'<p id="impact-headline">(.*?)</p>', html, flags=re.S).group(1)
    assert "would have let 1 of last month&#x27;s 5 billing.refund requests" in headline
