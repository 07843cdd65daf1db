"""Cross-tenant matrix for the gate: a key or session of workspace B pointed at
workspace A's actions, tools, confirmations and tokens gets exactly the answer it gets
for something that does not exist, and nothing in A changes."""

import uuid

import pytest
from rest_framework.test import APIClient

from approvals.asking import action_submit
from approvals.catalog import tool_create
from approvals.confirmations import confirmation_approve
from approvals.models import ConfirmationRequest
from audit.models import AuditEntry
from common.actor import Actor
from tenants.models import Membership, Role

SYSTEM = Actor.system("tests")


@pytest.fixture
def tenant_a(make_workspace, make_key, make_member):
    workspace = make_workspace(writes_enabled=True, mode="live")
    tool = tool_create(
        workspace=workspace,
        actor=SYSTEM,
        name="crm.update_stage",
        level="write",
        confirmation="always",
    )
    key, _ = make_key(workspace, scopes=["actions:write", "tools:write"])
    allowed = action_submit(
        key=key, tool_name="crm.update_stage", params={"deal": 1}, actor=Actor.for_key(key)
    )
    confirmation = ConfirmationRequest.objects.get(workspace=workspace)
    confirmation_approve(
        confirmation=confirmation,
        reason="ok",
        actor=Actor.for_user(make_member(workspace, Role.APPROVER)),
    )
    return {
        "workspace": workspace,
        "tool": tool,
        "action": allowed.action_id,
        "token": allowed.confirmation_token,
        "confirmation": confirmation,
    }


@pytest.fixture
def workspace_b(make_workspace):
    return make_workspace(writes_enabled=True, mode="live")


@pytest.fixture
def intruder_key(workspace_b, make_key, key_client):
    tool_create(
        workspace=workspace_b,
        actor=SYSTEM,
        name="crm.update_stage",
        level="write",
        confirmation="always",
    )
    _, plaintext = make_key(workspace_b, scopes=["workspace:admin"])
    return key_client(plaintext)


@pytest.fixture
def intruder_session(workspace_b):
    owner = Membership.objects.get(workspace=workspace_b, role=Role.OWNER).user
    client = APIClient()
    client.force_login(owner)
    return client


def same_as_missing(client, method, template, ids, body=None):
    call = getattr(client, method)
    foreign = call(template.format(**ids), body, format="json")
    missing = call(template.format(**{k: uuid.uuid4() for k in ids}), body, format="json")
    assert (foreign.status_code, foreign.json()) == (missing.status_code, missing.json())
    return foreign


KEY_CALLS = [
    ("get", "/api/v1/actions/{action}", None),
    ("post", "/api/v1/actions/{action}/result", {"status": "succeeded", "output": {}}),
    ("get", "/api/v1/tools/{tool}", None),
    ("patch", "/api/v1/tools/{tool}", {"enabled": False}),
    ("delete", "/api/v1/tools/{tool}", None),
]

SESSION_CALLS = [
    ("post", "/api/v1/approvals/{confirmation}/approve", {"reason": "cross-tenant"}),
    ("post", "/api/v1/approvals/{confirmation}/deny", {"reason": "cross-tenant"}),
    ("get", "/api/v1/tools/{tool}", None),
    ("patch", "/api/v1/tools/{tool}", {"enabled": False}),
]


@pytest.mark.parametrize(("method", "template", "body"), KEY_CALLS)
def test_key_of_b_cannot_reach_a(tenant_a, intruder_key, method, template, body):
    before = AuditEntry.objects.filter(workspace=tenant_a["workspace"]).count()
    ids = {"action": tenant_a["action"], "tool": tenant_a["tool"].pk}
    ids = {k: v for k, v in ids.items() if "{" + k + "}" in template}
    response = same_as_missing(intruder_key, method, template, ids, body)
    assert response.status_code == 404
    assert AuditEntry.objects.filter(workspace=tenant_a["workspace"]).count() == before


@pytest.mark.parametrize(("method", "template", "body"), SESSION_CALLS)
def test_session_of_b_cannot_reach_a(tenant_a, intruder_session, method, template, body):
    before = AuditEntry.objects.filter(workspace=tenant_a["workspace"]).count()
    ids = {"confirmation": tenant_a["confirmation"].pk, "tool": tenant_a["tool"].pk}
    ids = {k: v for k, v in ids.items() if "{" + k + "}" in template}
    response = same_as_missing(intruder_session, method, template, ids, body)
    assert response.status_code == 404
    assert AuditEntry.objects.filter(workspace=tenant_a["workspace"]).count() == before


def test_token_of_a_is_invalid_in_b(tenant_a, intruder_key):
    def use(token):
        return intruder_key.post(
            "/api/v1/actions",
            {
                "tool": "crm.update_stage",
                "params": {"deal": 1},
                "confirmed": True,
                "confirmation_token": token,
            },
            format="json",
        )

    foreign, unknown = use(tenant_a["token"]), use("ct_" + "Z" * 43)
    assert (foreign.status_code, foreign.json()) == (unknown.status_code, unknown.json())
    assert foreign.json()["error"]["code"] == "confirmation_mismatch"
    tenant_a["confirmation"].refresh_from_db()
    assert tenant_a["confirmation"].status == "approved"


def test_lists_in_b_never_show_a(tenant_a, intruder_key, intruder_session):
    assert intruder_session.get("/api/v1/approvals").json()["results"] == []
    names = [t["id"] for t in intruder_session.get("/api/v1/tools").json()["results"]]
    assert str(tenant_a["tool"].pk) not in names
    names = [t["id"] for t in intruder_key.get("/api/v1/tools").json()["results"]]
    assert str(tenant_a["tool"].pk) not in names


def test_client_cannot_redirect_an_action_to_a(tenant_a, intruder_key):
    response = intruder_key.post(
        "/api/v1/actions",
        {"tool": "crm.update_stage", "workspace_id": str(tenant_a["workspace"].pk)},
        format="json",
    )
    assert response.json()["error"]["code"] == "workspace_mismatch"
