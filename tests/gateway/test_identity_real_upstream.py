"""The rename attack against a real upstream (official SDK, FastMCP over Streamable
HTTP), with the official SDK client as the agent: renaming the reviewed crm.lookup onto
the deleted crm.delete_all still runs lookup upstream, never delete_all; a hyphenated,
capitalised upstream tool is listed under a portable name and called."""

from __future__ import annotations

import re

import pytest

mcp = pytest.importorskip("mcp")

from mcp.server.fastmcp import FastMCP  # noqa: E402
from mcp.types import ToolAnnotations  # noqa: E402

from approvals.models import ActionRequest, Tool  # noqa: E402
from gateway.services import connector_sync  # noqa: E402
from tenants.models import Role  # noqa: E402
from tests.gateway.conftest import SYSTEM, seeded_tool_update  # noqa: E402
from tests.gateway.mcp_upstream import ServedMCPUpstream  # noqa: E402
from tests.gateway.test_mcp_integration import agent  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PORTABLE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class Upstream(ServedMCPUpstream):
    def __init__(self) -> None:
        self.calls: list[str] = []
        server = FastMCP("crm-upstream", host="127.0.0.1")

        @server.tool(description="Look a customer up by id.")
        def lookup(customer_id: int) -> str:
            self.calls.append("lookup")
            return f"customer {customer_id}"

        @server.tool(description="Delete every customer.")
        def delete_all() -> str:
            self.calls.append("delete_all")
            return "everything deleted"

        @server.tool(
            name="List-Tickets",
            description="List open tickets.",
            annotations=ToolAnnotations(readOnlyHint=True),
        )
        def list_tickets() -> str:
            self.calls.append("List-Tickets")
            return "no tickets"

        self._serve(server)


@pytest.fixture
def real():
    running = Upstream()
    yield running
    running.stop()


def test_rename_attack_runs_the_reviewed_upstream_tool(
    live_server, real, gw_workspace, make_connector, make_key, key_client, make_member, approve
):
    connector = make_connector(gw_workspace, url=real.url)
    report = connector_sync(connector=connector, actor=SYSTEM)
    assert report["created"] == ["crm.delete_all", "crm.list_tickets", "crm.lookup"]
    tickets = Tool.objects.get(name="crm.list_tickets")
    assert tickets.upstream_name == "List-Tickets" and tickets.level == "read"
    for name in ("crm.lookup", "crm.list_tickets"):
        seeded_tool_update(
            reason="test set-up",
            tool=Tool.objects.get(name=name),
            actor=SYSTEM,
            changes={"enabled": True, "level": "read", "confirmation": "never"},
        )

    _, editor = make_key(gw_workspace, scopes=["tools:write"])
    editor = key_client(editor)
    approver = make_member(gw_workspace, Role.ADMIN)

    def applied(response):
        if response.status_code == 202:  # should renames be governed
            action = ActionRequest.objects.get(pk=response.json()["id"])
            assert approve(approver, gw_workspace, action.confirmation.pk).status_code == 200
        else:
            assert response.status_code in (200, 204), response.content

    applied(
        editor.delete(
            f"/api/v1/tools/{Tool.objects.get(name='crm.delete_all').pk}",
            {"reason": "test change"},
            format="json",
        )
    )
    lookup = Tool.objects.get(name="crm.lookup")
    applied(
        editor.patch(
            f"/api/v1/tools/{lookup.pk}",
            {"reason": "test change", "name": "crm.delete_all"},
            format="json",
        )
    )

    _, plaintext = make_key(gw_workspace, scopes=["actions:read"], tools=["crm.*"])

    async def steps(session):
        listed = await session.list_tools()
        renamed = await session.call_tool("crm-delete_all", {"customer_id": 7})
        tickets = await session.call_tool("crm-list_tickets", {})
        return listed, renamed, tickets

    _, (listed, renamed, tickets) = agent(live_server.url + "/mcp", plaintext, steps)
    names = sorted(t.name for t in listed.tools)
    assert names == ["crm-delete_all", "crm-list_tickets"]
    assert all(PORTABLE.match(name) for name in names)
    assert renamed.isError is False and "customer 7" in renamed.content[0].text
    assert tickets.isError is False and tickets.content[0].text == "no tickets"
    assert real.calls == ["lookup", "List-Tickets"]  # never delete_all
