"""POST /api/v1/connectors/{id}/sync: the upstream catalog becomes disabled catalog
tools; upstream changes are version-logged and disable the tool again."""

import pytest

from approvals.catalog import tool_create
from approvals.models import Tool
from audit.models import AuditEntry, VersionLog
from tests.gateway.conftest import SYSTEM, seeded_tool_update
from tests.gateway.upstream import LOOKUP_SCHEMA

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(gw_workspace, gw_admin, user_client):
    return user_client(gw_admin, gw_workspace)


def _sync(client, connector):
    return client.post(f"/api/v1/connectors/{connector.pk}/sync")


def test_first_sync_imports_disabled_tools_with_schemas(admin, gw_workspace, make_connector):
    connector = make_connector(gw_workspace)
    response = _sync(admin, connector)
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "created": ["crm.lookup", "crm.send"],
        "changed": [],
        "removed": [],
        "skipped": [],
    }
    lookup = Tool.objects.get(name="crm.lookup")
    assert lookup.enabled is False and lookup.connector == connector
    assert lookup.input_schema == LOOKUP_SCHEMA and lookup.description == "Find a customer"
    assert lookup.confirmation == "always"
    assert AuditEntry.objects.filter(action="connector.synced").count() == 1


def test_upstream_sees_the_stored_credential(admin, gw_workspace, make_connector, upstream):
    from tests.gateway.conftest import SECRET

    _sync(admin, make_connector(gw_workspace))
    assert all(h.get("Authorization") == SECRET for h in upstream.headers_seen)


def test_resync_reports_changes_and_disables_changed_tools(
    admin, gw_workspace, make_connector, upstream
):
    connector = make_connector(gw_workspace)
    _sync(admin, connector)
    for tool in Tool.objects.filter(connector=connector):
        seeded_tool_update(reason="test set-up", tool=tool, actor=SYSTEM, changes={"enabled": True})
    wider = {**LOOKUP_SCHEMA, "properties": {"customer_id": {"type": "string"}}}
    upstream.tools = [
        {"name": "lookup", "description": "Find a customer", "inputSchema": wider},
        {"name": "refund", "description": "Refund", "inputSchema": {"type": "object"}},
        {"name": "bad\nname", "inputSchema": {"type": "object"}},
    ]
    report = _sync(admin, connector).json()
    assert report == {
        "created": ["crm.refund"],
        "changed": ["crm.lookup"],
        "removed": ["crm.send"],
        "skipped": ["bad\nname"],
    }
    lookup = Tool.objects.get(name="crm.lookup")
    assert lookup.enabled is False and lookup.input_schema == wider
    log = VersionLog.objects.filter(target_type="tool", target_id=str(lookup.pk)).latest(
        "created_at"
    )
    assert log.before["input_schema"] == LOOKUP_SCHEMA and log.after["input_schema"] == wider
    assert not Tool.objects.filter(name="crm.send").exists()
    assert _sync(admin, connector).json()["changed"] == []  # nothing new: nothing changes


def test_sync_never_takes_over_a_hand_made_tool(admin, gw_workspace, make_connector):
    """The import takes another, deterministic name; the hand-made entry is untouched."""
    tool_create(
        reason="test set-up", workspace=gw_workspace, actor=SYSTEM, name="crm.lookup", enabled=False
    )
    report = _sync(admin, make_connector(gw_workspace)).json()
    assert Tool.objects.get(name="crm.lookup").connector is None
    (imported,) = (name for name in report["created"] if name != "crm.send")
    assert imported.startswith("crm.lookup_")
    assert Tool.objects.get(name=imported).upstream_name == "lookup"
    assert _sync(admin, make_connector(gw_workspace, name="crm2")).json()["created"] == [
        "crm2.lookup",
        "crm2.send",
    ]


def test_http_connector_syncs_its_declared_tools(admin, gw_workspace, make_connector):
    connector = make_connector(
        gw_workspace,
        name="billing",
        kind="http",
        declared_tools=[{"name": "charge", "description": "Charge", "input_schema": LOOKUP_SCHEMA}],
    )
    assert _sync(admin, connector).json()["created"] == ["billing.charge"]


def test_unreachable_upstream_is_an_upstream_error(admin, gw_workspace, make_connector, api_error):
    connector = make_connector(gw_workspace, url="http://127.0.0.1:9/mcp")
    api_error(_sync(admin, connector), 502, "upstream_error")


def test_sync_needs_connectors_write(gw_workspace, make_connector, make_key, key_client, api_error):
    _, reader = make_key(gw_workspace, scopes=["connectors:read"])
    api_error(_sync(key_client(reader), make_connector(gw_workspace)), 403, "forbidden_by_scope")
    assert not Tool.objects.exists()


def test_deleting_a_connector_removes_its_tools(admin, gw_workspace, make_connector):
    connector = make_connector(gw_workspace)
    _sync(admin, connector)
    admin.delete(f"/api/v1/connectors/{connector.pk}", {"reason": "test change"}, format="json")
    assert not Tool.objects.exists()


def test_sse_answers_are_read(admin, gw_workspace, make_connector, upstream):
    upstream.sse = True
    assert _sync(admin, make_connector(gw_workspace)).json()["created"] == [
        "crm.lookup",
        "crm.send",
    ]
