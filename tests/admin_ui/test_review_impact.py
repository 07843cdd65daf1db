"""The review page of a pending policy change shows its impact on recorded requests:
the headline, the transitions and examples, and says when the replay was capped."""

import re

import pytest

from approvals.asking import action_submit
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from tenants.models import Role
from tests.admin_ui.test_approval_queue import review_url
from tests.conftest import SYSTEM


@pytest.fixture
def proposed(workspace, role_users, make_tool, make_key, key_client):
    """Three refunds recorded under `amount > 100`, then a key proposes `> 200`."""
    workspace.writes_enabled, workspace.mode = True, "live"
    with operator_seeding():
        workspace.save()
    tool = make_tool(
        workspace,
        name="billing.refund",
        confirmation="conditional",
        condition="params.amount > 100",
        data_classes=[],
    )
    agent, _ = make_key(workspace, scopes=["actions:read", "actions:write"])
    recorded = {
        amount: action_submit(
            key=agent, tool_name=tool.name, params={"amount": amount}, actor=SYSTEM
        ).action_id
        for amount in (50, 150, 250)
    }
    _, plaintext = make_key(workspace, scopes=["tools:write"])
    response = key_client(plaintext).patch(
        f"/api/v1/tools/{tool.pk}",
        {"reason": "test change", "condition": "params.amount > 200"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    confirmation = ConfirmationRequest.objects.get(action_request_id=response.json()["id"])
    return confirmation, recorded


def test_review_of_a_loosened_condition_shows_what_it_would_have_let_through(
    proposed, role_users, admin_client_for
):
    confirmation, recorded = proposed
    html = admin_client_for(role_users[Role.OWNER]).get(review_url(confirmation)).content.decode()
    assert (
        "This change would have let 1 of last month&#x27;s 3 billing.refund requests through "
        "without a human." in html
    )
    table = re.search(r'<table id="impact-transitions">(.*?)</table>', html, flags=re.S).group(1)
    assert re.search(r"<td>needs a human</td>.*?<td>allowed</td><td>1</td>", table, flags=re.S)
    examples = re.search(r'<ul id="impact-examples">(.*?)</ul>', html, flags=re.S).group(1)
    assert str(recorded[150])[:8] in examples
    assert str(recorded[50])[:8] not in examples
    assert "Capped" not in html


def test_review_says_when_the_replay_was_capped(
    proposed, role_users, admin_client_for, monkeypatch
):
    monkeypatch.setattr("approvals.admin_views.REVIEW_LIMIT", 2)
    confirmation, _ = proposed
    html = admin_client_for(role_users[Role.OWNER]).get(review_url(confirmation)).content.decode()
    assert "Capped: only the newest 2 requests of the window were replayed." in html


def test_an_agents_request_shows_no_impact(
    workspace, make_pending, make_key, role_users, admin_client_for
):
    key = make_key(workspace, scopes=["actions:write"])[0]
    [pending] = make_pending(workspace, key)
    html = admin_client_for(role_users[Role.APPROVER]).get(review_url(pending)).content.decode()
    assert 'id="policy-impact"' not in html
