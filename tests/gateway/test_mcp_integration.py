"""The proof: a real upstream MCP server (official SDK, FastMCP over Streamable HTTP)
behind Warden, and the official SDK client talking to Warden's /mcp with a machine key.

The upstream counts the calls it receives and records the credential header it gets;
the agent holds only its Warden key."""

from __future__ import annotations

import asyncio
import json

import pytest

mcp = pytest.importorskip("mcp")

import httpx  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.server.fastmcp import Context, FastMCP  # noqa: E402

from approvals.models import ActionRequest, ConfirmationRequest, Tool  # noqa: E402
from gateway.models import Connector  # noqa: E402
from tenants.models import Role  # noqa: E402
from tests.gateway.conftest import SYSTEM, seeded_tool_update  # noqa: E402
from tests.gateway.mcp_upstream import ServedMCPUpstream  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

UPSTREAM_CREDENTIAL = "Bearer upstream-credential-only-warden-holds-42"


class RealUpstream(ServedMCPUpstream):
    """FastMCP on a free loopback port, in a thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.credentials_seen: list[str | None] = []
        server = FastMCP("crm-upstream", host="127.0.0.1")

        def seen(ctx: Context, name: str, arguments: dict) -> None:
            self.credentials_seen.append(ctx.request_context.request.headers.get("authorization"))
            self.calls.append((name, arguments))

        @server.tool(description="Look a customer up by id.")
        def lookup(customer_id: int, ctx: Context) -> dict:
            seen(ctx, "lookup", {"customer_id": customer_id})
            return {"customer_id": customer_id, "name": "Ada Lovelace"}

        @server.tool(description="Send an email to a customer.")
        def send_email(to: str, subject: str, ctx: Context) -> str:
            seen(ctx, "send_email", {"to": to, "subject": subject})
            return f"sent to {to}"

        @server.tool(description="Delete a customer account.")
        def delete_account(customer_id: int, ctx: Context) -> str:
            seen(ctx, "delete_account", {"customer_id": customer_id})
            return "deleted"

        self._serve(server)


@pytest.fixture
def real_upstream():
    running = RealUpstream()
    yield running
    running.stop()


def agent(url: str, key: str, steps):
    """Run `steps(session)` in an official SDK client session against Warden's /mcp."""

    async def run():
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(url, http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            return init, await steps(session)

    return asyncio.run(run())


def test_warden_as_the_agents_mcp_server(
    live_server,
    real_upstream,
    gw_workspace,
    gw_admin,
    make_key,
    make_member,
    user_client,
    approve,
):
    admin = user_client(gw_admin, gw_workspace)
    # Adding a connector is governed: one admin proposes, a second one approves.
    proposed = admin.post(
        "/api/v1/connectors",
        {
            "reason": "test change",
            "name": "crm",
            "kind": "mcp",
            "url": real_upstream.url,
            "headers": {"Authorization": UPSTREAM_CREDENTIAL},
        },
        format="json",
    )
    assert proposed.status_code == 202, proposed.json()
    assert not Connector.objects.exists()
    confirmation = ActionRequest.objects.get(pk=proposed.json()["id"]).confirmation
    second_admin = make_member(gw_workspace, Role.ADMIN)
    assert approve(second_admin, gw_workspace, confirmation.pk).status_code == 200
    connector = Connector.objects.get(workspace=gw_workspace, name="crm")
    sync = admin.post(f"/api/v1/connectors/{connector.pk}/sync").json()
    assert sync["created"] == ["crm.delete_account", "crm.lookup", "crm.send_email"]
    assert not Tool.objects.filter(enabled=True).exists()  # imported disabled
    rules = {
        "crm.lookup": {"level": "read", "confirmation": "never"},
        "crm.send_email": {"level": "external", "confirmation": "always"},
        "crm.delete_account": {"level": "write", "confirmation": "never"},
    }
    for name, changes in rules.items():
        tool = Tool.objects.get(name=name)
        seeded_tool_update(
            reason="test set-up", tool=tool, actor=SYSTEM, changes={"enabled": True, **changes}
        )
    _, plaintext = make_key(
        gw_workspace,
        scopes=["actions:read", "actions:write", "actions:external"],
        tools=["crm.lookup", "crm.send_email"],
    )
    url = live_server.url + "/mcp"
    seen_by_agent: list[str] = []

    # 1. Only the callable tools are listed, with their upstream schemas.
    async def list_tools(session):
        return await session.list_tools()

    init, listed = agent(url, plaintext, list_tools)
    assert init.serverInfo.name == "warden"
    assert sorted(t.name for t in listed.tools) == ["crm-lookup", "crm-send_email"]
    lookup = next(t for t in listed.tools if t.name == "crm-lookup")
    assert lookup.inputSchema["properties"]["customer_id"]["type"] == "integer"
    assert lookup.inputSchema["required"] == ["customer_id"]
    seen_by_agent.append(listed.model_dump_json())

    # 2. An allowed call returns the upstream's result; the upstream got Warden's credential.
    async def call_lookup(session):
        return await session.call_tool("crm-lookup", {"customer_id": 42})

    _, result = agent(url, plaintext, call_lookup)
    assert result.isError is False, result
    assert json.loads(result.content[0].text) == {"customer_id": 42, "name": "Ada Lovelace"}
    assert real_upstream.calls == [("lookup", {"customer_id": 42})]
    assert real_upstream.credentials_seen == [UPSTREAM_CREDENTIAL]
    seen_by_agent.append(result.model_dump_json())

    # 3. Bad arguments are refused before the upstream.
    async def bad_lookup(session):
        return await session.call_tool("crm-lookup", {"customer_id": "forty-two"})

    _, refused = agent(url, plaintext, bad_lookup)
    assert refused.isError is True
    assert (
        "invalid_params" in refused.content[0].text and "$.customer_id" in refused.content[0].text
    )
    assert len(real_upstream.calls) == 1

    # 4. A denied call never reaches the upstream.
    async def call_delete(session):
        return await session.call_tool("crm.delete_account", {"customer_id": 42})

    _, denied = agent(url, plaintext, call_delete)
    assert denied.isError is True and "tool_not_allowed" in denied.content[0].text
    assert [c[0] for c in real_upstream.calls] == ["lookup"]

    # 5. A gated call is not executed until a second human approves, then exactly once.
    email = {"to": "ada@example.test", "subject": "Your account"}

    async def call_email(session):
        return await session.call_tool("crm-send_email", email)

    _, gated = agent(url, plaintext, call_email)
    assert gated.isError is False
    assert gated.content[0].text.startswith("NOT EXECUTED")
    assert gated.structuredContent["confirmation_token"].startswith("ct_")
    assert [c[0] for c in real_upstream.calls] == ["lookup"]
    _, still_waiting = agent(url, plaintext, call_email)
    # Not final and not an error: still waiting, the same request (nothing new filed).
    assert still_waiting.isError is False
    assert still_waiting.content[0].text.startswith("STILL WAITING for a human")
    assert ConfirmationRequest.objects.filter(status="pending").count() == 1
    assert [c[0] for c in real_upstream.calls] == ["lookup"]

    confirmation = ConfirmationRequest.objects.get(status="pending")
    approver = make_member(gw_workspace, Role.APPROVER)
    approved = user_client(approver, gw_workspace).post(
        f"/api/v1/approvals/{confirmation.pk}/approve", {"reason": "expected"}, format="json"
    )
    assert approved.status_code == 200, approved.json()

    async def call_email_twice(session):
        return [await session.call_tool("crm-send_email", email) for _ in range(2)]

    _, (executed, second) = agent(url, plaintext, call_email_twice)
    assert executed.isError is False, executed
    assert executed.content[0].text == "sent to ada@example.test"
    assert second.content[0].text.startswith("NOT EXECUTED")  # a new ask, not a re-run
    assert real_upstream.calls == [("lookup", {"customer_id": 42}), ("send_email", email)]
    seen_by_agent += [gated.model_dump_json(), executed.model_dump_json()]

    # 6. A denial reaches the model, with the approver's reason, and files nothing new.
    other = {"to": "eve@example.test", "subject": "Your account"}

    async def call_other(session):
        return await session.call_tool("crm.send_email", other)

    agent(url, plaintext, call_other)
    pending = ConfirmationRequest.objects.filter(status="pending").latest("created_at")
    denied_now = user_client(approver, gw_workspace).post(
        f"/api/v1/approvals/{pending.pk}/deny", {"reason": "eve is not a customer"}, format="json"
    )
    assert denied_now.status_code == 200, denied_now.json()
    asked = ConfirmationRequest.objects.count()
    _, denial = agent(url, plaintext, call_other)
    assert denial.isError is True
    assert "DENIED by a human approver: eve is not a customer" in denial.content[0].text
    assert ConfirmationRequest.objects.count() == asked
    assert ("send_email", other) not in real_upstream.calls

    # 7. The agent never saw the upstream credential.
    assert all(UPSTREAM_CREDENTIAL not in text for text in seen_by_agent)
    assert "upstream-credential" not in json.dumps(seen_by_agent)
    assert real_upstream.credentials_seen == [UPSTREAM_CREDENTIAL] * 2
