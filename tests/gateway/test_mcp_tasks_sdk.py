"""The official `mcp` SDK client (1.x, protocol 2025-11-25) using its experimental task
API against Warden's /mcp: a gated call becomes a task that completes, exactly once,
when a second human approves. Its plain call_tool is unchanged (the "needs a human"
text). The SDK marks its task API deprecated (tasks left the core protocol in
2026-07-28, see README "MCP tasks"); it still speaks them, so Warden does too."""

from __future__ import annotations

import pytest

mcp = pytest.importorskip("mcp")

from mcp.types import CallToolResult  # noqa: E402

from approvals.models import ConfirmationRequest  # noqa: E402
from tenants.models import Role  # noqa: E402
from tests.gateway.test_mcp_integration import agent  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:The experimental tasks API is deprecated"),
]

EMAIL = {"to": "ada@example.test"}


def test_sdk_client_gated_call_as_a_task(
    live_server, synced, gw_workspace, gw_agent, make_member, approve, upstream
):
    _, _, plaintext = gw_agent
    url = live_server.url + "/mcp"

    async def ask(session):
        listed = await session.list_tools()
        created = await session.experimental.call_tool_as_task("crm-send", EMAIL)
        again = await session.experimental.call_tool_as_task("crm.send", EMAIL)
        status = await session.experimental.get_task(created.task.taskId)
        listed_tasks = await session.experimental.list_tasks()
        plain = await session.call_tool("crm.send", {"to": "someone@example.test"})
        return listed, created, again, status, listed_tasks, plain

    init, (listed, created, again, status, listed_tasks, plain) = agent(url, plaintext, ask)
    assert init.protocolVersion == "2025-11-25"
    assert init.capabilities.tasks.requests.tools.call is not None
    tools = {t.name: t for t in listed.tools}
    assert tools["crm-send"].execution.taskSupport == "optional"
    assert tools["crm-lookup"].execution is None
    task_id = created.task.taskId
    assert created.task.status == "working" and again.task.taskId == task_id
    assert "approver" in status.statusMessage and status.pollInterval == 5000
    assert task_id in [t.taskId for t in listed_tasks.tasks]
    # The plain call is unchanged for the same client: the "needs a human" answer.
    assert plain.content[0].text.startswith("NOT EXECUTED")
    assert upstream.tool_calls() == []

    confirmation = ConfirmationRequest.objects.get(action_request_id=task_id)
    approver = make_member(gw_workspace, Role.APPROVER)
    assert approve(approver, gw_workspace, confirmation.pk).status_code == 200

    async def collect(session):
        seen = [s.status async for s in session.experimental.poll_task(task_id)]
        result = await session.experimental.get_task_result(task_id, CallToolResult)
        return seen, result, await session.experimental.get_task_result(task_id, CallToolResult)

    _, (seen, result, second) = agent(url, plaintext, collect)
    assert seen[-1] == "completed"
    assert result.isError is False and result.structuredContent["tool"] == "send"
    assert second.structuredContent == result.structuredContent
    assert upstream.tool_calls() == [("send", EMAIL)]  # exactly once


def test_sdk_client_cancel_withdraws_the_request(
    live_server, synced, gw_workspace, gw_agent, make_member, approve, upstream
):
    _, _, plaintext = gw_agent

    async def ask_then_cancel(session):
        created = await session.experimental.call_tool_as_task("crm.send", EMAIL)
        cancelled = await session.experimental.cancel_task(created.task.taskId)
        return created, cancelled

    _, (created, cancelled) = agent(live_server.url + "/mcp", plaintext, ask_then_cancel)
    assert cancelled.status == "cancelled"
    confirmation = ConfirmationRequest.objects.get(action_request_id=created.task.taskId)
    assert confirmation.status == "expired"
    approver = make_member(gw_workspace, Role.APPROVER)
    assert approve(approver, gw_workspace, confirmation.pk).status_code != 200
    assert upstream.tool_calls() == []
