"""MCP tasks (revision 2025-11-25) on /mcp: a gated tools/call answered with a task that
completes when a human approves, fails when denied or expired, and is withdrawn (never
approved) by tasks/cancel. Raw JSON-RPC through the Django test client; the official
SDK client's experimental task API is exercised in test_mcp_tasks_sdk.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ActionRequest, ConfirmationRequest
from audit.models import AuditEntry
from gateway import mcp_tasks
from gateway.models import Execution
from tenants.models import Role

pytestmark = pytest.mark.django_db

TASKS = {"HTTP_MCP_PROTOCOL_VERSION": "2025-11-25"}
SEND = {"name": "crm.send", "arguments": {"to": "bob"}}


@pytest.fixture
def rpc():
    def call(client, method, params=None, headers=TASKS):
        message = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}}
        response = client.post("/mcp", message, format="json", **headers)
        assert response.status_code == 200, response.content[:300]
        return response.json()

    return call


@pytest.fixture
def task_call(rpc):
    def call(client, params=SEND):
        answer = rpc(client, "tools/call", {**params, "task": {"ttl": 60000}})
        assert "result" in answer, answer
        return answer["result"]["task"]

    return call


@pytest.fixture
def approver(gw_workspace, make_member):
    return make_member(gw_workspace, Role.APPROVER)


@pytest.fixture
def waiting_task(synced, gw_agent, task_call):
    """crm.send asked as a task, waiting for a human: the agent's client, the task id
    and its confirmation."""
    _, client, _ = gw_agent
    task_id = task_call(client)["taskId"]
    return client, task_id, ConfirmationRequest.objects.get(action_request_id=task_id)


@pytest.fixture
def approved_task(waiting_task, gw_workspace, approver, approve):
    """The waiting task, approved by a human (nothing has run yet)."""
    confirmation = waiting_task[2]
    assert approve(approver, gw_workspace, confirmation.pk).status_code == 200
    return waiting_task


@pytest.fixture
def task_status(rpc):
    def status(client, task_id):
        return rpc(client, "tasks/get", {"taskId": task_id})["result"]["status"]

    return status


def test_capability_only_where_the_revision_defines_tasks(gw_agent, rpc):
    _, client, _ = gw_agent
    for version, has_tasks in [("2025-11-25", True), ("2025-06-18", False), ("2024-11-05", False)]:
        init = rpc(client, "initialize", {"protocolVersion": version}, headers={})["result"]
        assert init["protocolVersion"] == version
        assert ("tasks" in init["capabilities"]) is has_tasks
    init = rpc(client, "initialize", {"protocolVersion": "2025-11-25"}, headers={})["result"]
    assert init["capabilities"]["tasks"] == {
        "list": {},
        "cancel": {},
        "requests": {"tools": {"call": {}}},
    }


def test_tools_that_may_wait_for_a_human_offer_tasks(synced, gw_agent, rpc):
    _, client, _ = gw_agent
    tools = {t["name"]: t for t in rpc(client, "tools/list")["result"]["tools"]}
    assert tools["crm-send"]["execution"] == {"taskSupport": "optional"}
    assert "execution" not in tools["crm-lookup"]  # never confirmed: a plain call
    old = rpc(client, "tools/list", headers={"HTTP_MCP_PROTOCOL_VERSION": "2025-06-18"})
    assert all("execution" not in t for t in old["result"]["tools"])


def test_gated_task_completes_once_a_human_approves(
    synced, gw_agent, gw_workspace, approver, approve, rpc, task_call, upstream
):
    _, client, _ = gw_agent
    task = task_call(client)
    assert task["status"] == "working"
    assert "1 approver of this workspace" in task["statusMessage"]
    assert "expires at" in task["statusMessage"] and task["pollInterval"] == 5000
    assert task["ttl"] is None and task["createdAt"] and task["lastUpdatedAt"]
    action = ActionRequest.objects.get(pk=task["taskId"])
    assert action.confirmation.status == "pending"
    # Asking again as a task is the same task, not a second request for a human.
    assert task_call(client)["taskId"] == task["taskId"]
    assert ConfirmationRequest.objects.count() == 1
    got = rpc(client, "tasks/get", {"taskId": task["taskId"]})["result"]
    assert got["status"] == "working" and got["taskId"] == task["taskId"]
    early = rpc(client, "tasks/result", {"taskId": task["taskId"]})
    assert early["error"]["code"] == -32602 and "still working" in early["error"]["message"]
    assert upstream.tool_calls() == []

    assert approve(approver, gw_workspace, action.confirmation.pk).status_code == 200
    assert upstream.tool_calls() == []  # runs when the agent comes back for it
    done = rpc(client, "tasks/get", {"taskId": task["taskId"]})["result"]
    assert done["status"] == "completed", done
    assert rpc(client, "tasks/get", {"taskId": task["taskId"]})["result"]["status"] == "completed"
    result = rpc(client, "tasks/result", {"taskId": task["taskId"]})["result"]
    assert result["isError"] is False
    assert result["structuredContent"] == {"tool": "send", "echo": {"to": "bob"}}
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    assert result["_meta"]["warden/execution"]["status"] == "succeeded"
    rpc(client, "tasks/result", {"taskId": task["taskId"]})
    assert upstream.tool_calls() == [("send", {"to": "bob"})]  # exactly once
    assert Execution.objects.filter(action_request=action).count() == 1
    # The token was spent: a plain re-call is a new ask, not a second run.
    again = rpc(client, "tools/call", SEND)["result"]
    assert again["content"][0]["text"].startswith("NOT EXECUTED")
    assert upstream.tool_calls() == [("send", {"to": "bob"})]


# Right after approval the agent comes back for the result, or simply calls again.
COME_BACK = {
    "tasks/result": lambda task_id: {"taskId": task_id},
    "tools/call": lambda task_id: SEND,
}


@pytest.mark.parametrize("method", COME_BACK)
def test_coming_back_after_approval_runs_it_once_and_completes_the_task(
    approved_task, rpc, task_status, upstream, method
):
    client, task_id, _ = approved_task
    ran = rpc(client, method, COME_BACK[method](task_id))["result"]
    assert ran["structuredContent"]["tool"] == "send"
    assert task_status(client, task_id) == "completed"
    assert upstream.tool_calls() == [("send", {"to": "bob"})]


def test_denied_task_fails_and_nothing_runs(
    waiting_task, gw_workspace, approver, approve, rpc, upstream
):
    client, task_id, confirmation = waiting_task
    assert approve(approver, gw_workspace, confirmation.pk, verdict="deny").status_code == 200
    got = rpc(client, "tasks/get", {"taskId": task_id})["result"]
    assert got["status"] == "failed" and "Denied by a human" in got["statusMessage"]
    result = rpc(client, "tasks/result", {"taskId": task_id})["result"]
    assert result["isError"] is True and "Denied" in result["content"][0]["text"]
    assert upstream.tool_calls() == []


def test_expired_task_fails_and_nothing_runs(approved_task, rpc, upstream):
    client, task_id, confirmation = approved_task
    ConfirmationRequest.objects.filter(pk=confirmation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    got = rpc(client, "tasks/get", {"taskId": task_id})["result"]
    assert got["status"] == "failed" and "Expired" in got["statusMessage"]
    assert upstream.tool_calls() == []


def test_cancel_withdraws_and_never_approves(
    synced, gw_agent, gw_workspace, approver, approve, rpc, task_call, upstream
):
    key, client, _ = gw_agent
    task = task_call(client)
    cancelled = rpc(client, "tasks/cancel", {"taskId": task["taskId"]})["result"]
    assert cancelled["status"] == "cancelled" and cancelled["taskId"] == task["taskId"]
    confirmation = ConfirmationRequest.objects.get(action_request_id=task["taskId"])
    assert confirmation.status == "expired"
    assert ActionRequest.objects.get(pk=task["taskId"]).status == "expired"
    entry = AuditEntry.objects.get(action="confirmation.expired", target_id=str(confirmation.pk))
    assert "withdrawn by the requesting agent" in entry.rationale
    assert entry.actor == f"key:{key.pk}"
    # Nobody can approve it any more; the task stays cancelled; nothing ever runs.
    assert approve(approver, gw_workspace, confirmation.pk).status_code != 200
    assert rpc(client, "tasks/get", {"taskId": task["taskId"]})["result"]["status"] == "cancelled"
    again = rpc(client, "tasks/cancel", {"taskId": task["taskId"]})
    assert again["error"]["code"] == -32602
    assert rpc(client, "tools/call", SEND)["result"]["content"][0]["text"].startswith(
        "NOT EXECUTED"
    )
    assert upstream.tool_calls() == []


def test_cancel_after_approval_still_runs_nothing(approved_task, rpc, task_status, upstream):
    client, task_id, _ = approved_task
    assert rpc(client, "tasks/cancel", {"taskId": task_id})["result"]["status"] == "cancelled"
    assert task_status(client, task_id) == "cancelled"
    assert upstream.tool_calls() == []


def test_a_finished_task_cannot_be_cancelled(approved_task, rpc, task_status):
    client, task_id, _ = approved_task
    assert task_status(client, task_id) == "completed"
    refused = rpc(client, "tasks/cancel", {"taskId": task_id})
    assert refused["error"]["code"] == -32602
    assert task_status(client, task_id) == "completed"


def test_tasks_belong_to_the_calling_key(
    synced, gw_agent, gw_workspace, other_workspace, make_key, key_client, rpc, task_call
):
    _, client, _ = gw_agent
    task = task_call(client)
    scopes = ["actions:read", "actions:write", "actions:external"]
    _, sibling = make_key(gw_workspace, scopes=scopes)
    _, foreign = make_key(other_workspace, scopes=scopes)
    for plaintext in (sibling, foreign):
        other = key_client(plaintext)
        for method in ("tasks/get", "tasks/result", "tasks/cancel"):
            answer = rpc(other, method, {"taskId": task["taskId"]})
            assert answer["error"] == {
                "code": -32602,
                "message": "Failed to retrieve task: Task not found",
            }
        assert rpc(other, "tasks/list")["result"]["tasks"] == []
    assert ConfirmationRequest.objects.get(action_request_id=task["taskId"]).status == "pending"
    listed = rpc(client, "tasks/list")["result"]["tasks"]
    assert [t["taskId"] for t in listed] == [task["taskId"]]
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", None):
        assert rpc(client, "tasks/get", {"taskId": bad})["error"]["code"] == -32602


def test_task_list_pages(synced, gw_agent, rpc, task_call, monkeypatch):
    _, client, _ = gw_agent
    ids = {
        task_call(client, {"name": "crm.send", "arguments": {"to": f"u{i}"}})["taskId"]
        for i in range(3)
    }
    monkeypatch.setattr(mcp_tasks, "LIST_PAGE", 2)
    first = rpc(client, "tasks/list")["result"]
    second = rpc(client, "tasks/list", {"cursor": first["nextCursor"]})["result"]
    assert len(first["tasks"]) == 2 and "nextCursor" not in second
    assert {t["taskId"] for t in first["tasks"] + second["tasks"]} == ids
    assert rpc(client, "tasks/list", {"cursor": "x"})["error"]["code"] == -32602


def test_task_on_a_tool_that_never_waits_is_refused(synced, gw_agent, rpc, upstream):
    _, client, _ = gw_agent
    lookup = {"name": "crm.lookup", "arguments": {"customer_id": 1}, "task": {}}
    assert rpc(client, "tools/call", lookup)["error"]["code"] == -32601
    assert rpc(client, "tools/call", {**SEND, "task": {}, "name": "nope"})["error"]["code"] == (
        -32601
    )
    assert upstream.tool_calls() == []


def test_without_the_tasks_revision_the_task_field_is_ignored(synced, gw_agent, rpc, upstream):
    _, client, _ = gw_agent
    old = {"HTTP_MCP_PROTOCOL_VERSION": "2025-06-18"}
    answer = rpc(client, "tools/call", {**SEND, "task": {"ttl": 1000}}, headers=old)["result"]
    assert answer["content"][0]["text"].startswith("NOT EXECUTED")
    assert rpc(client, "tasks/get", {"taskId": "x"}, headers=old)["error"]["code"] == -32601


def test_refused_task_call_is_a_failed_task(
    synced, gw_workspace, make_key, key_client, rpc, upstream
):
    # A read-only key asks for a write tool: the gate refuses, recorded: a failed task.
    _, plaintext = make_key(gw_workspace, scopes=["actions:read"])
    client = key_client(plaintext)
    task = rpc(client, "tools/call", {**SEND, "task": {}})["result"]["task"]
    assert task["status"] == "failed"
    assert task["statusMessage"].startswith("Refused by Warden (")
    result = rpc(client, "tasks/result", {"taskId": task["taskId"]})["result"]
    assert result["isError"] is True
    assert upstream.tool_calls() == []


def test_arguments_kept_only_as_digests_are_never_replayed(
    synced, gw_agent, gw_workspace, approver, approve, rpc, task_call, upstream
):
    # A credential-shaped argument is stored as its digest: replaying the stored call
    # would send the digest upstream. The task waits for the agent to call again.
    _, client, _ = gw_agent
    call = {"name": "crm.send", "arguments": {"to": "bob", "token": "AKIAIOSFODNN7EXAMPLE"}}
    task = task_call(client, call)
    confirmation = ConfirmationRequest.objects.get(action_request_id=task["taskId"])
    approve(approver, gw_workspace, confirmation.pk)
    got = rpc(client, "tasks/get", {"taskId": task["taskId"]})["result"]
    assert got["status"] == "working" and "only as digests" in got["statusMessage"]
    assert upstream.tool_calls() == []
    assert rpc(client, "tools/call", call)["result"]["structuredContent"]["tool"] == "send"
    assert rpc(client, "tasks/get", {"taskId": task["taskId"]})["result"]["status"] == "completed"
    assert upstream.tool_calls() == [("send", call["arguments"])]
