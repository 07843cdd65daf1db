"""The sensitivity floor, pinned through the public API (DESIGN.md 10 and 14).

Each rule of the floor has a test that fails when that rule alone is deleted from
approvals/gate.py: the tools here are built so that nothing but the rule under test
sends the call to a human (a `read` tool with confirmation `never`, outbound allowed,
an unattended key), and a control with the floor switched off proves it is the floor
that decided. Found by mutation testing (docs/mutation.md): before this file, deleting
the irreversible rule or the secrets/regulated read rule left every gate test green.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.guard import operator_seeding
from tenants.models import Role

pytestmark = pytest.mark.django_db

SENSITIVE_WRITE = ("pii", "secrets", "regulated", "financial")
SENSITIVE_READ = ("secrets", "regulated")


@pytest.fixture
def open_workspace(make_workspace):
    """As permissive as a workspace gets without lowering the floor: writes on, outbound
    allowed, live. Only the floor can stand between an agent and its action here."""
    return make_workspace(writes_enabled=True, mode="live", outbound_allowed=True)


@pytest.fixture
def unattended_agent(open_workspace, make_key, key_client):
    """An unattended key with every action scope: it skips every tool's own rule."""
    key, plaintext = make_key(
        open_workspace,
        scopes=["actions:read", "actions:write", "actions:external"],
        unattended_mode=True,
        expires_at=timezone.now() + timedelta(days=30),
    )
    return key, key_client(plaintext)


@pytest.fixture
def attended_agent(open_workspace, make_key, key_client):
    key, plaintext = make_key(
        open_workspace, scopes=["actions:read", "actions:write", "actions:external"]
    )
    return key, key_client(plaintext)


def lower_floor(workspace):
    """Set-up only: in production switching the floor off is governed (two approvals)."""
    workspace.sensitivity_floor = False
    with operator_seeding():
        workspace.save()


def audit_of(workspace, make_member, user_client, action_id):
    """The decision's audit row, read as a compliance user reads it."""
    auditor = make_member(workspace, Role.ADMIN)
    rows = user_client(auditor, workspace).get("/api/v1/audit", {"page_size": 500}).json()
    matches = [
        row
        for row in rows["results"]
        if row["target_id"] == str(action_id) and row["action"].startswith("action.")
    ]
    assert matches, rows
    return matches[-1]


def effective(client, name):
    tools = {t["name"]: t for t in client.get("/api/v1/tools").json()["results"]}
    return tools[name]["confirmation"]


# --- irreversible ---------------------------------------------------------------------


@pytest.mark.parametrize("agent_fixture", ["unattended_agent", "attended_agent"])
def test_an_irreversible_action_always_reaches_a_human(
    request, open_workspace, make_tool, ask, agent_fixture
):
    _, client = request.getfixturevalue(agent_fixture)
    make_tool(open_workspace, "db.archive", level="read", confirmation="never", irreversible=True)
    answer = ask(client, "db.archive", {"table": "orders"})
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert body["decision"] == "requires_confirmation" and body["irreversible"] is True
    assert body["confirmation_token"].startswith("ct_")
    assert effective(client, "db.archive") == "always"


def test_without_the_floor_the_same_irreversible_call_follows_the_tool(
    open_workspace, unattended_agent, make_tool, ask
):
    _, client = unattended_agent
    make_tool(open_workspace, "db.archive", level="read", confirmation="never", irreversible=True)
    lower_floor(open_workspace)
    assert ask(client, "db.archive", {"table": "orders"}).status_code == 200
    assert effective(client, "db.archive") == "never"


def test_the_floor_is_named_as_the_reason_in_the_audit_log(
    open_workspace, unattended_agent, make_tool, ask, make_member, user_client
):
    _, client = unattended_agent
    make_tool(open_workspace, "db.archive", level="read", confirmation="never", irreversible=True)
    body = ask(client, "db.archive", {}).json()
    row = audit_of(open_workspace, make_member, user_client, body["id"])
    assert row["rationale"] == "floor: sensitivity floor: irreversible actions always reach a human"


# --- reading secrets and regulated data -------------------------------------------------


@pytest.mark.parametrize("data_class", SENSITIVE_READ)
@pytest.mark.parametrize("agent_fixture", ["unattended_agent", "attended_agent"])
def test_reading_secrets_or_regulated_data_reaches_a_human(
    request, open_workspace, make_tool, ask, make_member, user_client, data_class, agent_fixture
):
    _, client = request.getfixturevalue(agent_fixture)
    make_tool(open_workspace, "vault.read", level="read", data_classes=[data_class])
    answer = ask(client, "vault.read", {"path": "db/password"})
    assert answer.status_code == 202, answer.json()
    assert answer.json()["irreversible"] is False
    assert effective(client, "vault.read") == "always"
    row = audit_of(open_workspace, make_member, user_client, answer.json()["id"])
    assert row["rationale"] == f"floor: sensitivity floor: reading {data_class} reaches a human"


def test_a_read_names_every_sensitive_class_it_touches(
    open_workspace, attended_agent, make_tool, ask, make_member, user_client
):
    _, client = attended_agent
    make_tool(
        open_workspace, "vault.read", level="read", data_classes=["secrets", "regulated", "pii"]
    )
    body = ask(client, "vault.read", {}).json()
    row = audit_of(open_workspace, make_member, user_client, body["id"])
    assert (
        row["rationale"] == "floor: sensitivity floor: reading regulated, secrets reaches a human"
    )


@pytest.mark.parametrize("data_class", ["financial", "pii"])
def test_reading_other_classes_is_not_held(
    open_workspace, unattended_agent, make_tool, ask, data_class
):
    """The floor does not over-reach: a read of financial or personal data is allowed."""
    _, client = unattended_agent
    make_tool(open_workspace, "crm.lookup", level="read", data_classes=[data_class])
    assert ask(client, "crm.lookup", {}).status_code == 200
    assert effective(client, "crm.lookup") == "never"


# --- writes and external effects on sensitive classes ---------------------------------


@pytest.mark.parametrize("level", ["write", "external"])
@pytest.mark.parametrize("data_class", SENSITIVE_WRITE)
def test_a_write_or_external_effect_on_sensitive_data_reaches_a_human(
    open_workspace, unattended_agent, make_tool, ask, make_member, user_client, level, data_class
):
    _, client = unattended_agent
    make_tool(
        open_workspace, "hr.update", level=level, confirmation="never", data_classes=[data_class]
    )
    answer = ask(client, "hr.update", {"employee": 7})
    assert answer.status_code == 202, answer.json()
    assert effective(client, "hr.update") == "always"
    row = audit_of(open_workspace, make_member, user_client, answer.json()["id"])
    assert row["rationale"] == (
        f"floor: sensitivity floor: {level} touching {data_class} reaches a human"
    )


@pytest.mark.parametrize("level", ["write", "external"])
def test_a_write_without_sensitive_classes_follows_the_tool(
    open_workspace, unattended_agent, make_tool, ask, level
):
    _, client = unattended_agent
    make_tool(open_workspace, "crm.note", level=level, confirmation="always")
    assert ask(client, "crm.note", {}).status_code == 200


def test_a_lowered_floor_lets_a_sensitive_write_follow_the_tool(
    open_workspace, unattended_agent, make_tool, ask
):
    _, client = unattended_agent
    make_tool(open_workspace, "hr.update", level="write", data_classes=["pii", "secrets"])
    lower_floor(open_workspace)
    assert ask(client, "hr.update", {}).status_code == 200


# --- personal data read: allowed, and recorded as such ------------------------------


def test_reading_personal_data_is_allowed_and_recorded_as_such(
    open_workspace, attended_agent, make_tool, ask, make_member, user_client
):
    _, client = attended_agent
    make_tool(open_workspace, "crm.contact", level="read", data_classes=["pii"])
    answer = ask(client, "crm.contact", {"customer_id": "c1"})
    assert answer.status_code == 200
    row = audit_of(open_workspace, make_member, user_client, answer.json()["id"])
    assert row["decision"] == "allowed"
    assert row["rationale"] == (
        "confirmation: the tool needs no confirmation; "
        "reads personal data (pii): allowed and recorded"
    )


def test_a_read_without_personal_data_is_not_recorded_as_one(
    open_workspace, attended_agent, make_tool, ask, make_member, user_client
):
    _, client = attended_agent
    make_tool(open_workspace, "crm.stats", level="read", data_classes=["financial"])
    answer = ask(client, "crm.stats", {})
    row = audit_of(open_workspace, make_member, user_client, answer.json()["id"])
    assert row["rationale"] == "confirmation: the tool needs no confirmation"
