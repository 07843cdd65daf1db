"""Any upstream tool name is importable and callable under a portable name, and what the
upstream declares (outputSchema, annotations) is kept and proposes the tool's policy."""

import re

import pytest

from approvals.models import Tool
from gateway import naming
from gateway.services import connector_sync
from tests.gateway.conftest import SYSTEM, seeded_tool_update

pytestmark = pytest.mark.django_db
PORTABLE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
OBJECT = {"type": "object"}
OUTPUT = {"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}


def _tool(name, **extra):
    return {"name": name, "description": f"{name} tool", "inputSchema": OBJECT, **extra}


def _enable(name, **changes):
    tool = Tool.objects.get(name=name)
    seeded_tool_update(
        reason="test set-up", tool=tool, actor=SYSTEM, changes={"enabled": True, **changes}
    )
    return tool


def _mcp(client, method, params=None):
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return client.post("/mcp", body, format="json").json()


def test_hyphenated_and_capitalised_tools_are_imported_listed_and_called(
    gw_workspace, make_connector, upstream, gw_agent
):
    upstream.tools = [
        _tool("list-tickets"),
        _tool("GetTicket"),
        _tool("élan"),
        _tool("list_tickets"),
    ]
    report = connector_sync(connector=make_connector(gw_workspace), actor=SYSTEM)
    assert report["skipped"] == []
    bound = dict(Tool.objects.values_list("upstream_name", "name"))
    assert bound["list_tickets"] == "crm.list_tickets"  # a valid name keeps it
    assert bound["list-tickets"].startswith("crm.list_tickets_")  # deterministic suffix
    assert bound["GetTicket"] == "crm.get_ticket" and bound["élan"] == "crm.elan"
    for name in bound.values():
        _enable(name, level="read", confirmation="never")
    _, client, _ = gw_agent
    listed = [t["name"] for t in _mcp(client, "tools/list")["result"]["tools"]]
    assert all(PORTABLE.match(name) for name in listed) and len(set(listed)) == len(listed)
    assert "crm-get_ticket" in listed
    exposed = naming.exposed_name(bound["list-tickets"])
    assert exposed in listed
    for name in (exposed, "crm-get_ticket", "crm.elan"):  # exposed or catalog name
        result = _mcp(client, "tools/call", {"name": name, "arguments": {}})["result"]
        assert result["isError"] is False, result
    assert [call for call, _ in upstream.tool_calls()] == ["list-tickets", "GetTicket", "élan"]


def test_long_names_get_a_short_unique_exposed_name(
    gw_workspace, make_connector, upstream, gw_agent
):
    long_a, long_b = "a" * 70 + "_one", "a" * 70 + "_two"
    upstream.tools = [_tool(long_a), _tool(long_b)]
    connector_sync(connector=make_connector(gw_workspace), actor=SYSTEM)
    for tool in Tool.objects.all():
        _enable(tool.name, level="read", confirmation="never")
    _, client, _ = gw_agent
    listed = [t["name"] for t in _mcp(client, "tools/list")["result"]["tools"]]
    assert len(listed) == 2 and len(set(listed)) == 2
    assert all(PORTABLE.match(name) and "--" in name for name in listed)
    for name in listed:
        assert (
            _mcp(client, "tools/call", {"name": name, "arguments": {}})["result"]["isError"]
            is False
        )
    assert sorted(call for call, _ in upstream.tool_calls()) == [long_a, long_b]


def test_exposed_names_map_back_one_to_one():
    for catalog in ("crm.lookup", "a.b.c", "x_y.z", "solo", "crm." + "q" * 80):
        exposed = naming.exposed_name(catalog)
        assert PORTABLE.match(exposed)
        assert naming.catalog_name(exposed, lambda c=catalog: [c]) == catalog
    assert naming.exposed_name("a.b_c") != naming.exposed_name("a_b.c")


def test_annotations_propose_level_and_confirmation(gw_workspace, make_connector, upstream):
    upstream.tools = [
        _tool("read", annotations={"readOnlyHint": True}),
        _tool("wipe", annotations={"destructiveHint": True, "readOnlyHint": True}),
        _tool("post", annotations={"openWorldHint": True}),
        _tool("plain"),
        _tool("fetch", annotations={"readOnlyHint": True, "openWorldHint": True}),
    ]
    connector_sync(connector=make_connector(gw_workspace), actor=SYSTEM)
    got = {
        t.upstream_name: (t.level, t.confirmation, t.irreversible, t.enabled)
        for t in Tool.objects.all()
    }
    assert got == {
        "read": ("read", "never", False, False),
        "wipe": ("write", "always", True, False),  # destructive wins over read-only
        "post": ("external", "always", False, False),
        "plain": ("write", "always", False, False),
        "fetch": ("external", "always", False, False),
    }
    assert Tool.objects.get(upstream_name="wipe").upstream_annotations == {
        "destructiveHint": True,
        "readOnlyHint": True,
    }


def test_output_schema_is_kept_and_listed(gw_workspace, make_connector, upstream, gw_agent):
    upstream.tools = [_tool("count", outputSchema=OUTPUT), _tool("gated", outputSchema=OUTPUT)]
    connector_sync(connector=make_connector(gw_workspace), actor=SYSTEM)
    assert Tool.objects.get(name="crm.count").output_schema == OUTPUT
    _enable("crm.count", level="read", confirmation="never")
    _enable("crm.gated", level="read", confirmation="always")
    _, client, _ = gw_agent
    listed = {t["name"]: t for t in _mcp(client, "tools/list")["result"]["tools"]}
    assert listed["crm-count"]["outputSchema"] == OUTPUT
    # A human may answer first (no upstream result then): clients would reject that
    # answer against the schema, so it is not promised.
    assert "outputSchema" not in listed["crm-gated"]


def test_changed_annotations_are_a_change_to_review(gw_workspace, make_connector, upstream):
    upstream.tools = [_tool("read", annotations={"readOnlyHint": True})]
    connector = make_connector(gw_workspace)
    connector_sync(connector=connector, actor=SYSTEM)
    _enable("crm.read")
    upstream.tools = [_tool("read", annotations={"readOnlyHint": True, "destructiveHint": True})]
    assert connector_sync(connector=connector, actor=SYSTEM)["changed"] == ["crm.read"]
    tool = Tool.objects.get(name="crm.read")
    assert not tool.enabled and tool.upstream_annotations["destructiveHint"] is True
