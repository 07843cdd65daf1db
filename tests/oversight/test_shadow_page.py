"""The admin's shadow-rules page (/admin/posture/<slug>/shadow/): view_audit only, the
workspace's own disagreements, tool names inert."""

import pytest
from django.test import Client

from approvals.asking import action_submit
from tenants.models import Role
from tests.conftest import SYSTEM


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def shadowed(live_workspace, make_tool, make_key):
    make_tool(
        live_workspace,
        name="billing.refund",
        level="write",
        shadow_confirmation="conditional",
        shadow_condition="params.amount > 100",
    )
    key, _ = make_key(live_workspace, scopes=["actions:read", "actions:write"])
    ids = [
        action_submit(key=key, tool_name="billing.refund", params={"amount": a}, actor=SYSTEM)
        for a in (10, 150)
    ]
    return live_workspace, ids


def page(workspace) -> str:
    return f"/admin/posture/{workspace.slug}/shadow/"


def test_an_auditor_sees_the_disagreements(shadowed, make_member):
    workspace, ids = shadowed
    auditor = make_member(workspace, Role.AUDITOR)
    response = _client(auditor).get(page(workspace))
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 requests decided beside a shadow rule, 1 where it disagreed" in html
    assert "<td>allowed</td><td>needs a human</td><td>1</td>" in html
    assert ids[1].action_id[:8] in html and ids[0].action_id[:8] not in html
    posture = _client(auditor).get(f"/admin/posture/{workspace.slug}/").content.decode()
    assert page(workspace) in posture


def test_a_member_without_view_audit_is_refused(shadowed, make_member):
    workspace, _ = shadowed
    approver = make_member(workspace, Role.APPROVER)
    assert _client(approver).get(page(workspace)).status_code == 403


def test_another_workspaces_auditor_gets_not_found(shadowed, make_workspace, make_member):
    workspace, _ = shadowed
    other = make_workspace()
    stranger = make_member(other, Role.AUDITOR)
    assert _client(stranger).get(page(workspace)).status_code == 404


def test_without_shadow_rules_the_page_says_so(live_workspace, make_member):
    auditor = make_member(live_workspace, Role.AUDITOR)
    html = _client(auditor).get(page(live_workspace)).content.decode()
    assert 'id="shadow-none"' in html
