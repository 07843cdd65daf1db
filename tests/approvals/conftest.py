"""Gate fixtures: tools built through the services, and helpers to ask and approve."""

import pytest
from django.db import connection

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from common.actor import Actor
from tenants.models import Role

SYSTEM = Actor.system("tests")


def postgres_only():
    """Skip unless the test database is PostgreSQL (row locks are no-ops on SQLite)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: select_for_update is a no-op on SQLite")


@pytest.fixture
def make_tool():
    def make(workspace, name="crm.lookup", **fields):
        with operator_seeding():
            return tool_create(workspace=workspace, actor=SYSTEM, name=name, **fields)

    return make


@pytest.fixture
def live_workspace(make_workspace):
    """Writes on, outbound off, live mode: the strictest realistic setup."""
    return make_workspace(writes_enabled=True, mode="live")


@pytest.fixture
def agent(live_workspace, make_key, key_client):
    """(key, client) with every action scope and a `*` allowlist."""
    key, plaintext = make_key(
        live_workspace, scopes=["actions:read", "actions:write", "actions:external"]
    )
    return key, key_client(plaintext)


@pytest.fixture
def approver(live_workspace, make_member):
    return make_member(live_workspace, Role.APPROVER)


@pytest.fixture
def ask():
    def call(client, tool, params=None, **extra):
        body = {"tool": tool, "params": params or {}, **extra}
        return client.post("/api/v1/actions", body, format="json")

    return call


@pytest.fixture
def approve(user_client):
    def call(user, workspace, confirmation_id, verdict="approve", reason="looks right"):
        client = user_client(user, workspace)
        return client.post(
            f"/api/v1/approvals/{confirmation_id}/{verdict}", {"reason": reason}, format="json"
        )

    return call
