"""/mcp over JSON-RPC, driven with the Django test client (the official SDK client is
in test_mcp_integration.py)."""

import pytest

from approvals.models import ActionRequest
from tenants.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def rpc():
    def call(client, method, params=None, msg_id=1, **headers):
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        return client.post("/mcp", message, format="json", **headers)

    return call


def test_initialize_negotiates_a_supported_version(gw_agent, rpc):
    _, client, _ = gw_agent
    for asked, answered in [
        ("2025-06-18", "2025-06-18"),
        ("2024-11-05", "2024-11-05"),
        ("1999-01-01", "2025-11-25"),
    ]:
        result = rpc(client, "initialize", {"protocolVersion": asked}).json()["result"]
        assert result["protocolVersion"] == answered
        assert result["capabilities"]["tools"] == {"listChanged": False}


def test_sdk_versions_are_all_supported():
    from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS as sdk

    from gateway.api.mcp import SUPPORTED_PROTOCOL_VERSIONS

    assert set(sdk) <= set(SUPPORTED_PROTOCOL_VERSIONS)


def test_notification_is_accepted(gw_agent):
    _, client, _ = gw_agent
    message = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert client.post("/mcp", message, format="json").status_code == 202


def test_ping_and_unknown_method(gw_agent, rpc):
    _, client, _ = gw_agent
    assert rpc(client, "ping").json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert rpc(client, "resources/list").json()["error"]["code"] == -32601


def test_without_a_key_nothing_answers(rpc, client, api_error):
    response = rpc(client, "tools/list")
    assert response.status_code in (401, 403)
    assert "result" not in response.json()


def test_human_session_is_refused(gw_workspace, gw_admin, user_client, rpc):
    response = rpc(user_client(gw_admin, gw_workspace), "tools/list")
    assert response.status_code in (401, 403)


def test_tools_list_is_exactly_what_the_key_may_call(
    synced, gw_workspace, make_key, key_client, rpc
):
    from tests.gateway.upstream import LOOKUP_SCHEMA

    _, narrow = make_key(gw_workspace, scopes=["actions:read"], tools=["crm.*"])
    tools = rpc(key_client(narrow), "tools/list").json()["result"]["tools"]
    assert [t["name"] for t in tools] == ["crm-lookup"]  # send is write level
    assert tools[0]["inputSchema"] == LOOKUP_SCHEMA
    _, none = make_key(gw_workspace, scopes=["actions:read"], tools=["other.*"])
    assert rpc(key_client(none), "tools/list").json()["result"]["tools"] == []


def test_other_workspace_key_sees_and_calls_nothing(
    synced, other_workspace, make_key, key_client, rpc, upstream
):
    _, foreign = make_key(
        other_workspace, scopes=["actions:read", "actions:write", "actions:external"]
    )
    client = key_client(foreign)
    assert rpc(client, "tools/list").json()["result"]["tools"] == []
    result = rpc(client, "tools/call", {"name": "crm.lookup", "arguments": {"customer_id": 1}})
    result = result.json()["result"]
    assert result["isError"] is True
    assert result["structuredContent"]["error"]["code"] == "tool_not_allowed"
    assert upstream.tool_calls() == []


def test_allowed_call_returns_the_upstream_result(synced, gw_agent, rpc, upstream):
    _, client, _ = gw_agent
    response = rpc(client, "tools/call", {"name": "crm.lookup", "arguments": {"customer_id": 5}})
    result = response.json()["result"]
    assert result["isError"] is False
    assert result["structuredContent"] == {"tool": "lookup", "echo": {"customer_id": 5}}
    assert result["_meta"]["warden/execution"]["status"] == "succeeded"
    assert "sk-live" not in response.content.decode()
    assert upstream.tool_calls() == [("lookup", {"customer_id": 5})]


def test_gated_call_waits_for_a_human_then_runs_once(
    synced, gw_agent, gw_workspace, make_member, approve, rpc, upstream
):
    _, client, _ = gw_agent
    call = {"name": "crm.send", "arguments": {"to": "bob"}}
    first = rpc(client, "tools/call", call).json()["result"]
    assert first["isError"] is False
    assert first["content"][0]["text"].startswith("NOT EXECUTED")
    token = first["structuredContent"]["confirmation_token"]
    assert token.startswith("ct_") and first["_meta"]["warden/confirmation_token"] == token
    waiting = rpc(client, "tools/call", call).json()["result"]
    # Not final, not an error: still waiting, and the same request (nothing new filed).
    assert waiting["isError"] is False
    assert waiting["content"][0]["text"].startswith("STILL WAITING for a human")
    assert "not a final answer" in waiting["content"][0]["text"]
    assert waiting["structuredContent"]["status"] == "waiting_for_human"
    assert waiting["structuredContent"]["action_id"] == first["structuredContent"]["action_id"]
    assert ActionRequest.objects.count() == 1
    assert upstream.tool_calls() == []
    action = ActionRequest.objects.get(pk=first["structuredContent"]["action_id"])
    approve(make_member(gw_workspace, Role.APPROVER), gw_workspace, action.confirmation.pk)
    done = rpc(client, "tools/call", {**call, "_meta": {"warden/confirmation_token": token}})
    assert done.json()["result"]["structuredContent"]["tool"] == "send"
    again = rpc(client, "tools/call", call).json()["result"]  # a new ask, not a re-run
    assert again["content"][0]["text"].startswith("NOT EXECUTED")
    assert upstream.tool_calls() == [("send", {"to": "bob"})]


def test_a_denial_reaches_the_model_with_its_reason_and_files_nothing_new(
    synced, gw_agent, gw_workspace, make_member, approve, rpc, upstream
):
    _, client, _ = gw_agent
    call = {"name": "crm.send", "arguments": {"to": "bob"}}
    first = rpc(client, "tools/call", call).json()["result"]
    action = ActionRequest.objects.get(pk=first["structuredContent"]["action_id"])
    approver = make_member(gw_workspace, Role.APPROVER)
    denied = approve(approver, gw_workspace, action.confirmation.pk, "deny", "bob left the company")
    assert denied.status_code == 200
    again = rpc(client, "tools/call", call).json()["result"]
    assert again["isError"] is True
    assert again["content"][0]["text"].startswith("DENIED by a human approver")
    assert "bob left the company" in again["content"][0]["text"]
    error = again["structuredContent"]["error"]
    assert error["code"] == "confirmation_denied"
    assert error["detail"]["reason"] == "bob left the company"
    assert error["detail"]["action_id"] == str(action.pk)
    assert ActionRequest.objects.count() == 1  # no new request, nobody asked again
    assert upstream.tool_calls() == []
    other = rpc(client, "tools/call", {**call, "arguments": {"to": "carol"}}).json()["result"]
    assert other["content"][0]["text"].startswith("NOT EXECUTED")  # another call: asked


def test_bad_arguments_are_a_tool_error_naming_the_path(synced, gw_agent, rpc, upstream):
    _, client, _ = gw_agent
    result = rpc(client, "tools/call", {"name": "crm.lookup", "arguments": {}}).json()["result"]
    assert result["isError"] is True
    assert "invalid_params" in result["content"][0]["text"]
    assert "$.customer_id" in result["content"][0]["text"]
    assert upstream.tool_calls() == []


def test_dry_run_says_what_would_have_been_called(synced, gw_workspace, gw_agent, rpc, upstream):
    gw_workspace.mode = "dry_run"
    gw_workspace.save()
    _, client, _ = gw_agent
    result = rpc(client, "tools/call", {"name": "crm.lookup", "arguments": {"customer_id": 1}})
    text = result.json()["result"]["content"][0]["text"]
    assert text.startswith("DRY RUN") and "'lookup'" in text and "'crm'" in text
    assert upstream.tool_calls() == []


def test_upstream_down_is_a_tool_error(synced, gw_agent, rpc, upstream):
    _, client, _ = gw_agent
    upstream.stop()
    response = rpc(client, "tools/call", {"name": "crm.lookup", "arguments": {"customer_id": 1}})
    assert response.status_code == 200
    assert response.json()["result"]["isError"] is True
    upstream.start()


@pytest.mark.parametrize(
    "body",
    [
        [{"jsonrpc": "2.0", "id": 1, "method": "ping"}],
        {"id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": []},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 3}},
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "x", "arguments": 3},
        },
    ],
)
def test_malformed_messages_are_json_rpc_errors(synced, gw_agent, body):
    _, client, _ = gw_agent
    response = client.post("/mcp", body, format="json")
    assert response.status_code in (200, 400)
    answer = response.json()
    assert "error" in answer or answer["result"]["isError"] is True


def test_unsupported_protocol_header_is_refused(gw_agent, rpc):
    _, client, _ = gw_agent
    response = rpc(client, "ping", HTTP_MCP_PROTOCOL_VERSION="1999-01-01")
    assert response.status_code == 400


def _allowed(response) -> set[str]:
    return {m.strip() for m in response.headers["Allow"].split(",")}


def test_get_offers_no_stream_405_with_a_json_rpc_body(gw_agent):
    _, client, _ = gw_agent
    # What the SDK client sends to open a server-sent event stream.
    response = client.get("/mcp", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 405
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32600
    assert body["error"]["data"]["error"]["code"] == "method_not_allowed"
    assert "GET" not in _allowed(response) and "POST" in _allowed(response)


def test_delete_is_405_json_and_allow_does_not_list_it(gw_agent):
    _, client, _ = gw_agent
    response = client.delete("/mcp", HTTP_MCP_SESSION_ID="anything")
    assert response.status_code == 405
    assert response.json()["error"]["data"]["error"]["code"] == "method_not_allowed"
    assert "DELETE" not in _allowed(response) and "POST" in _allowed(response)


def test_html_is_never_the_answer(gw_agent, rpc):
    _, client, _ = gw_agent
    for response in (
        client.get("/mcp", HTTP_ACCEPT="text/html"),
        rpc(client, "ping", HTTP_ACCEPT="text/html"),
        client.put("/mcp", {}, format="json", HTTP_ACCEPT="text/html"),
    ):
        assert response.headers["Content-Type"].startswith("application/json")
        response.json()


def test_oversized_body_is_413_json_not_500(gw_agent, settings):
    _, client, _ = gw_agent
    big = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 300_000}}
    response = client.post("/mcp", big, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_an_unexpected_error_is_json_500(gw_agent, rpc, monkeypatch):
    from gateway.api import mcp

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(mcp, "_dispatch", broken)
    _, client, _ = gw_agent
    response = rpc(client, "ping")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "boom" not in response.content.decode()


def test_foreign_browser_origin_is_refused(gw_agent, rpc):
    _, client, _ = gw_agent
    assert rpc(client, "ping", HTTP_ORIGIN="https://evil.example.com").status_code == 403
    assert rpc(client, "ping", HTTP_ORIGIN="http://testserver").status_code == 200
