"""SQL statements of the hot paths, pinned (issue 10: roles as guardian group
permissions, one Principal per request). A regression that copies permissions per
member again, or asks guardian once per check, fails here. The README's architecture
section quotes these numbers; `-s` prints them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from common.actor import Actor
from keys.services import key_create
from tenants.models import Role
from tenants.services import membership_add, user_get_or_create, workspace_create

SYSTEM = Actor.system("tests")
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}

# Statements (transaction control excluded), the most either database needs.
LIMITS = {
    "workspace_create": 26,
    "membership_add[approver]": 13,
    "membership_add[admin]": 13,
    "key_create": 6,
    "decision_allowed": 5,
    "members_list_by_owner": 6,
}


def _statements(ctx: CaptureQueriesContext) -> int:
    return sum(
        1 for q in ctx.captured_queries if q["sql"].split()[0].upper() not in TRANSACTION_CONTROL
    )


def _pin(name: str, ctx: CaptureQueriesContext) -> None:
    count = _statements(ctx)
    total = len(ctx.captured_queries)
    print(f"\n{connection.vendor} {name}: {count} statements ({total} with transaction control)")
    assert count <= LIMITS[name], [q["sql"] for q in ctx.captured_queries]


@pytest.fixture
def owner(db):
    return user_get_or_create(email="owner@count.test")


@pytest.fixture
def counted_workspace(owner):
    return workspace_create(
        reason="test set-up", slug="count", name="Count", owner=owner, actor=SYSTEM
    )


@pytest.mark.django_db
def test_workspace_create_statements(owner):
    with CaptureQueriesContext(connection) as ctx:
        workspace_create(
            reason="test set-up", slug="fresh", name="Fresh", owner=owner, actor=SYSTEM
        )
    _pin("workspace_create", ctx)


@pytest.mark.parametrize("role", [Role.APPROVER, Role.ADMIN])
def test_membership_add_statements(counted_workspace, role):
    user = user_get_or_create(email="ann@count.test")
    with operator_seeding(), CaptureQueriesContext(connection) as ctx:
        membership_add(
            reason="test set-up", workspace=counted_workspace, user=user, role=role, actor=SYSTEM
        )
    _pin(f"membership_add[{role}]", ctx)


def test_key_create_statements(counted_workspace, owner):
    with operator_seeding(), CaptureQueriesContext(connection) as ctx:
        key_create(
            reason="test set-up",
            workspace=counted_workspace,
            name="agent",
            owner=owner,
            scopes=["actions:read"],
            tool_allowlist=["crm.*"],
            actor=SYSTEM,
        )
    _pin("key_create", ctx)


def test_allowed_decision_statements(counted_workspace, owner, key_client):
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=counted_workspace,
            actor=SYSTEM,
            name="crm.lookup",
            level="read",
        )
        issued = key_create(
            reason="test set-up",
            workspace=counted_workspace,
            name="agent",
            owner=owner,
            scopes=["actions:read"],
            tool_allowlist=["crm.*"],
            actor=SYSTEM,
        )
    client = key_client(issued.plaintext)
    body = {"tool": "crm.lookup", "params": {"id": 1}}
    client.post("/api/v1/actions", body, format="json")  # warm: key_touch, caches
    with CaptureQueriesContext(connection) as ctx:
        response = client.post("/api/v1/actions", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["decision"] == "allowed"
    _pin("decision_allowed", ctx)


def test_human_members_list_statements(counted_workspace, owner, user_client):
    client = user_client(owner, counted_workspace)
    client.get("/api/v1/members")  # warm
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/v1/members")
    assert response.status_code == 200, response.content
    _pin("members_list_by_owner", ctx)
