"""`/mcp`: Warden as its agents' MCP server (Streamable HTTP, JSON-RPC 2.0 over POST).

Authenticated with a machine key as a bearer token, like the REST API, and behind the
same checks (WorkspaceAPIView: rate limit, workspace from the key). `tools/list` is
exactly what the key may call; `tools/call` asks the same gate as POST /api/v1/actions
(gateway.services.action_execute) and, when allowed, Warden calls the upstream with
credentials the agent never sees. Answers are plain JSON (no server-sent events, no
session): every request stands alone."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from django.http.request import validate_host
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from approvals import gate
from approvals.api.presenter import outcome_body
from approvals.selectors import tools_callable_by_key
from common.api.views import KEY, WorkspaceAPIView
from common.errors import WardenError
from gateway.models import Execution
from gateway.services import GatewayAnswer, action_execute
from keys.authentication import MachineKeyAuthentication

# The revisions the official `mcp` Python SDK (1.x) speaks; newest first.
SUPPORTED_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
SERVER_INFO = {"name": "warden", "version": "1.0.0"}
TOKEN_META = "warden/confirmation_token"

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


class _RpcError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _text(text: str, *, error: bool = False, structured: dict | None = None, meta=None) -> dict:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": error}
    if structured is not None:
        result["structuredContent"] = structured
    if meta:
        result["_meta"] = meta
    return result


def _tool_listing(key, workspace) -> list[dict]:
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "inputSchema": tool.input_schema or {"type": "object"},
            "_meta": {
                "warden/level": tool.level,
                "warden/confirmation": gate.effective_confirmation(key, workspace, tool),
            },
        }
        for tool in tools_callable_by_key(key=key, workspace=workspace)
    ]


def _refused(error: WardenError) -> dict:
    detail = f" {json.dumps(error.detail, ensure_ascii=False)}" if error.detail else ""
    return _text(
        f"Refused by Warden ({error.code}): {error.message}{detail}",
        error=True,
        structured=error.as_payload(),
    )


def _needs_human(found: GatewayAnswer, key) -> dict:
    body = outcome_body(found.outcome)
    confirmation = getattr(found.outcome.action, "confirmation", None)
    required = confirmation.approvals_required if confirmation is not None else 1
    owner = getattr(key.owner, "email", "") or "the key's owner"
    who = (
        f"{required} approver{'s' if required > 1 else ''} of this workspace "
        f"(not {owner}, who is answerable for this key)"
    )
    text = (
        "NOT EXECUTED: this call needs a human's approval first.\n"
        f"What: {body.get('summary')}\n"
        f"Who must approve: {who}, in Warden's approval queue.\n"
        f"Expires: {body.get('expires_at')}\n"
        "Once approved, call this tool again with the very same arguments; it then runs "
        "exactly once."
    )
    structured = {
        "status": "requires_confirmation",
        "action_id": body.get("id"),
        "summary": body.get("summary"),
        "irreversible": body.get("irreversible"),
        "expires_at": body.get("expires_at"),
        "approvals_required": required,
        "confirmation_token": body.get("confirmation_token"),
    }
    return _text(
        text,
        structured=structured,
        meta={TOKEN_META: body.get("confirmation_token"), "warden/action_id": body.get("id")},
    )


def _executed(found: GatewayAnswer) -> dict:
    body = outcome_body(found.outcome)
    execution = found.execution
    meta = {"warden/action_id": body.get("id")}
    if found.connector is None or execution is None:
        return _text(
            f"Allowed (action {body.get('id')}). Warden holds no connector for this tool, so "
            "it executed nothing: perform the action yourself and report its result.",
            structured={"status": "allowed", **body},
            meta=meta,
        )
    meta["warden/execution"] = {"id": str(execution.pk), "status": execution.status}
    if execution.status == Execution.Status.DRY_RUN:
        return _text(
            f"DRY RUN: nothing was executed. In live mode Warden would have called "
            f"{execution.upstream_tool!r} on the connector {found.connector.name!r} with these "
            "arguments.",
            structured={"status": "dry_run", "action_id": body.get("id")},
            meta=meta,
        )
    if found.result is None:
        message = (
            f"The upstream call failed: {execution.error}"
            if execution.status == Execution.Status.FAILED
            else f"This request was already executed ({execution.status}); it never runs twice."
        )
        return _text(message, error=True, meta=meta)
    result = dict(found.result)
    result.setdefault("content", [])
    result["_meta"] = {**(result.get("_meta") or {}), **meta}
    return result


def _call(request, params: dict) -> dict:
    name = params.get("name")
    arguments = params.get("arguments", {})
    meta = params.get("_meta") or {}
    if not isinstance(name, str) or not name:
        raise _RpcError(INVALID_PARAMS, "tools/call needs a tool name.")
    if arguments is None:
        arguments = {}
    token = meta.get(TOKEN_META, "") if isinstance(meta, dict) else ""
    try:
        found = action_execute(
            key=request.auth,
            actor=request.actor,
            tool_name=name[:200],
            params=arguments,
            confirmation_token=token if isinstance(token, str) else "",
        )
    except WardenError as error:
        return _refused(error)
    outcome = found.outcome
    if outcome.pending:
        return _needs_human(found, request.auth)
    if outcome.denied:
        return _refused(WardenError(outcome.code, outcome.message, outcome.detail))
    return _executed(found)


def _dispatch(request, method: str, params: dict) -> dict:
    if method == "initialize":
        requested = params.get("protocolVersion")
        supported = SUPPORTED_PROTOCOL_VERSIONS
        version = requested if requested in supported else supported[0]
        return {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
            "instructions": "Every tool call is checked by Warden; some need a human first.",
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": _tool_listing(request.auth, request.workspace)}
    if method == "tools/call":
        return _call(request, params)
    raise _RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")


def _rpc_error(msg_id, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


class MCPView(WorkspaceAPIView):
    principals = (KEY,)
    authentication_classes = [MachineKeyAuthentication]

    @extend_schema(exclude=True)
    def post(self, request):
        origin = request.headers.get("Origin")
        if origin and not validate_host(urlsplit(origin).hostname or "", settings.ALLOWED_HOSTS):
            # The spec's DNS-rebinding rule: browsers' cross-site requests are refused.
            return Response(_rpc_error(None, INVALID_REQUEST, "Origin not allowed."), 403)
        version = request.headers.get("MCP-Protocol-Version")
        if version and version not in SUPPORTED_PROTOCOL_VERSIONS:
            return Response(
                _rpc_error(None, INVALID_REQUEST, f"Unsupported protocol version {version}."),
                status=400,
            )
        message = request.data
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return Response(_rpc_error(None, INVALID_REQUEST, "One JSON-RPC 2.0 message."), 400)
        method = message.get("method")
        if "id" not in message:
            return HttpResponse(status=202)  # a notification (or a response): accepted
        msg_id = message["id"]
        if not isinstance(method, str):
            return Response(_rpc_error(msg_id, INVALID_REQUEST, "No method."))
        params = message.get("params") or {}
        if not isinstance(params, dict):
            return Response(_rpc_error(msg_id, INVALID_PARAMS, "params must be an object."))
        try:
            result = _dispatch(request, method, params)
        except _RpcError as exc:
            return Response(_rpc_error(msg_id, exc.code, exc.message))
        return Response({"jsonrpc": "2.0", "id": msg_id, "result": result})

    @extend_schema(exclude=True)
    def get(self, request):
        # No server-initiated stream: the SDK client treats 405 as "none offered".
        return HttpResponse(status=405, headers={"Allow": "POST"})

    @extend_schema(exclude=True)
    def delete(self, request):
        return HttpResponse(status=405, headers={"Allow": "POST"})
