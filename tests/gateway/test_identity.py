"""Identity is never a name: an imported tool is bound to its connector and its upstream
tool at import; renaming the catalog entry changes only what its name matches, never
what runs upstream."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from approvals.catalog import tool_delete, tool_update
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, Tool, ToolBindingImmutable
from gateway.services import connector_sync
from tenants.models import Role
from tests.gateway.conftest import SYSTEM, seeded_tool_update
from tests.gateway.upstream import LOOKUP_SCHEMA

pytestmark = pytest.mark.django_db
DELETE_ALL = {"name": "delete_all", "description": "Delete every record", "inputSchema": {}}


@pytest.fixture
def crm(gw_workspace, make_connector, upstream):
    """crm.lookup reviewed (read, never confirmed) and enabled; crm.delete_all imported,
    disabled, never reviewed."""
    upstream.tools = [
        {"name": "lookup", "description": "Find a customer", "inputSchema": LOOKUP_SCHEMA},
        {**DELETE_ALL, "inputSchema": {"type": "object"}},
    ]
    connector = make_connector(gw_workspace)
    connector_sync(connector=connector, actor=SYSTEM)
    seeded_tool_update(
        reason="test set-up",
        tool=Tool.objects.get(name="crm.lookup"),
        actor=SYSTEM,
        changes={"enabled": True, "level": "read", "confirmation": "never"},
    )
    return connector


@pytest.fixture
def applied(gw_workspace, make_member, approve):
    """The API's answer to a catalog change, approved by a second human if governed."""
    approver = make_member(gw_workspace, Role.ADMIN)

    def apply(response):
        if response.status_code == 202:
            action = ActionRequest.objects.get(pk=response.json()["id"])
            assert approve(approver, gw_workspace, action.confirmation.pk).status_code == 200
        else:
            assert response.status_code in (200, 204), response.content

    return apply


def test_renaming_onto_a_deleted_name_still_runs_the_reviewed_tool(
    crm, gw_workspace, make_key, key_client, upstream, applied
):
    _, editor = make_key(gw_workspace, scopes=["tools:write"])
    editor = key_client(editor)
    delete_all = Tool.objects.get(name="crm.delete_all")
    applied(
        editor.delete(f"/api/v1/tools/{delete_all.pk}", {"reason": "test change"}, format="json")
    )
    lookup = Tool.objects.get(name="crm.lookup")
    applied(
        editor.patch(
            f"/api/v1/tools/{lookup.pk}",
            {"reason": "test change", "name": "crm.delete_all"},
            format="json",
        )
    )
    assert Tool.objects.get(pk=lookup.pk).name == "crm.delete_all"

    _, agent = make_key(gw_workspace, scopes=["actions:read"], tools=["crm.*"])
    agent = key_client(agent)
    body = {"tool": "crm.delete_all", "params": {"customer_id": 7}, "execute": True}
    response = agent.post("/api/v1/actions", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["execution"]["upstream_tool"] == "lookup"
    mcp = agent.post(
        "/mcp",
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "crm-delete_all", "arguments": {"customer_id": 8}},
        },
        format="json",
    )
    assert mcp.json()["result"]["isError"] is False, mcp.json()
    assert upstream.tool_calls() == [("lookup", {"customer_id": 7}), ("lookup", {"customer_id": 8})]


def test_a_resync_after_a_rename_keeps_the_binding(crm, gw_workspace, upstream):
    tool_delete(reason="test set-up", tool=Tool.objects.get(name="crm.delete_all"), actor=SYSTEM)
    lookup = Tool.objects.get(name="crm.lookup")
    with operator_seeding():  # a rename is governed: here, as if a second human approved
        tool_update(
            reason="test set-up", tool=lookup, actor=SYSTEM, changes={"name": "crm.delete_all"}
        )
    report = connector_sync(connector=crm, actor=SYSTEM)
    renamed = Tool.objects.get(pk=lookup.pk)
    # The renamed entry is still lookup, reviewed and enabled; delete_all comes back
    # under another name, disabled, bound to itself.
    assert renamed.upstream_name == "lookup" and renamed.enabled
    assert renamed.description == "Find a customer"
    assert report["changed"] == [] and report["removed"] == []
    (created,) = report["created"]
    assert created.startswith("crm.delete_all_")
    imported = Tool.objects.get(name=created)
    assert imported.upstream_name == "delete_all" and not imported.enabled


def test_the_binding_cannot_be_repointed(crm, gw_workspace, make_connector, api_error):
    lookup = Tool.objects.get(name="crm.lookup")
    other = make_connector(gw_workspace, name="other")
    with pytest.raises(ToolBindingImmutable):
        tool_update(reason="test set-up", tool=lookup, actor=SYSTEM, changes={"connector": other})
    with pytest.raises(ToolBindingImmutable):
        tool_update(
            reason="test set-up", tool=lookup, actor=SYSTEM, changes={"upstream_name": "delete_all"}
        )
    with pytest.raises(ToolBindingImmutable):
        Tool.objects.filter(pk=lookup.pk).update(upstream_name="delete_all")
    with pytest.raises(ToolBindingImmutable):
        Tool.objects.filter(pk=lookup.pk).update(connector=other)
    lookup.refresh_from_db()
    assert lookup.upstream_name == "lookup" and lookup.connector_id == crm.pk


def test_a_hand_made_tool_cannot_be_attached_to_a_connector(crm, gw_workspace):
    from approvals.catalog import tool_create

    hand_made = tool_create(
        reason="test set-up", workspace=gw_workspace, actor=SYSTEM, name="crm.mine", enabled=False
    )
    with pytest.raises(ToolBindingImmutable):
        tool_update(reason="test set-up", tool=hand_made, actor=SYSTEM, changes={"connector": crm})


def test_a_tool_bound_to_no_upstream_tool_never_executes_nor_is_adopted(
    crm, gw_workspace, gw_agent, upstream
):
    """What the upgrade could not map (a name outside `<connector>.`) stays unbound."""
    from approvals.catalog import tool_create
    from approvals.guard import operator_seeding

    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=gw_workspace,
            actor=SYSTEM,
            name="legacy.lookup",
            connector=crm,
            level="read",
            input_schema=LOOKUP_SCHEMA,
        )
    connector_sync(connector=crm, actor=SYSTEM)
    assert Tool.objects.get(name="legacy.lookup").upstream_name == ""
    _, client, _ = gw_agent
    body = {"tool": "legacy.lookup", "params": {"customer_id": 1}, "execute": True}
    response = client.post("/api/v1/actions", body, format="json")
    assert response.json()["execution"]["status"] == "failed"
    assert upstream.tool_calls() == []


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_migration_binds_existing_tools_from_their_names_and_back(crm):
    ids = dict(Tool.objects.values_list("name", "pk"))
    _migrate(("approvals", "0007_drop_redundant_workspace_index"))
    old = _migrate(("approvals", "0008_tool_upstream_binding"))
    bound = dict(old.get_model("approvals", "Tool").objects.values_list("pk", "upstream_name"))
    assert bound == {ids["crm.lookup"]: "lookup", ids["crm.delete_all"]: "delete_all"}
    back = _migrate(("approvals", "0007_drop_redundant_workspace_index"))
    assert back.get_model("approvals", "Tool").objects.count() == 2
    executor = MigrationExecutor(connection)  # the whole schema again, for later tests
    executor.migrate(executor.loader.graph.leaf_nodes())
