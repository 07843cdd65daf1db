"""`/mcp`: Warden as its agents' MCP server (Streamable HTTP, JSON-RPC 2.0 over POST).

Authenticated with a machine key (or an OAuth access token standing for one, keys.oauth)
as a bearer token, like the REST API, and behind the
same checks (WorkspaceAPIView: rate limit, workspace from the key). `tools/list` is
exactly what the key may call; `tools/call` asks the same gate as POST /api/v1/actions
(gateway.execution.action_execute) and, when allowed, Warden calls the upstream with
credentials the agent never sees. Answers are plain JSON (no server-sent events, no
session): every request stands alone. On revision 2025-11-25 a gated call may be made
as a task (gateway.mcp_tasks: the task is the action request, read from the database)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from django.http.request import validate_host
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from approvals import gate
from approvals.api.presenter import outcome_body
from approvals.selectors import tools_callable_by_key
from common.api.views import KEY, WorkspaceAPIView
from common.errors import WardenError, error_payload
from gateway import mcp_tasks, naming
from gateway.execution import GatewayAnswer, action_execute
from gateway.models import Execution
from keys.oauth import OAuthOrKeyAuthentication

# The revisions the official `mcp` Python SDK (1.x) speaks; newest first.
SUPPORTED_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
SERVER_INFO = {"name": "warden", "version": "1.0.0"}
TOKEN_META = "warden/confirmation_token"
WITHHELD_META = "warden/withheld"
# Tasks are defined by 2025-11-25 only (experimental there; 2026-07-28 moved them out of
# the core protocol into the io.modelcontextprotocol/tasks extension, another shape).
TASK_PROTOCOL_VERSIONS = ("2025-11-25",)
TASKS_CAPABILITY = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
RELATED_TASK = "io.modelcontextprotocol/related-task"
IMMEDIATE_RESPONSE = "io.modelcontextprotocol/model-immediate-response"
POLL_INTERVAL_MS = 5000

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


def _tool_listing(key, workspace, *, tasks: bool) -> list[dict]:
    listed = []
    for tool in tools_callable_by_key(key=key, workspace=workspace):
        confirmation = gate.effective_confirmation(key, workspace, tool)
        entry = {
            "name": naming.exposed_name(tool.name),  # portable: gateway.naming
            "description": tool.description,
            "inputSchema": tool.input_schema or {"type": "object"},
            "_meta": {
                "warden/name": tool.name,
                "warden/level": tool.level,
                "warden/confirmation": confirmation,
            },
        }
        if (
            tool.output_schema
            and confirmation == "never"
            and not (workspace.is_dry_run or tool.dry_run)
            and tool.output_projection is None
        ):
            # Clients validate every non-error result against it: listed only where each
            # such answer is the upstream's own (no human step, no dry run in between,
            # no output projection withholding fields the schema may require).
            entry["outputSchema"] = tool.output_schema
        if tasks and mcp_tasks.tool_runs_as_task(key, tool):
            entry["execution"] = {"taskSupport": "optional"}
        listed.append(entry)
    return listed


def _refused(error: WardenError) -> dict:
    detail = f" {json.dumps(error.detail, ensure_ascii=False)}" if error.detail else ""
    return _text(
        f"Refused by Warden ({error.code}): {error.message}{detail}",
        error=True,
        structured=error.as_payload(),
    )


def _denied_by_human(error_code: str, message: str, detail: dict) -> dict:
    """A human denied this very call: final, with the approver's reason."""
    reason = detail.get("reason") or "no reason given"
    text = (
        f"DENIED by a human approver: {reason}\n"
        "This is final for these arguments: calling again with the very same arguments "
        f"answers this denial (until {detail.get('answered_until')}) and files nothing new. "
        "Do not retry; tell the user, or change what you ask for."
    )
    payload = WardenError(error_code, message, detail).as_payload()
    return _text(text, error=True, structured=payload)


def _needs_human(found: GatewayAnswer, key) -> dict:
    """Pending is not an error (isError false) and not final: the model is told it is
    waiting for a human, who must approve, until when, and how to check."""
    outcome = found.outcome
    body = outcome_body(outcome)
    confirmation = getattr(outcome.action, "confirmation", None)
    required = confirmation.approvals_required if confirmation is not None else 1
    owner = getattr(key.owner, "email", "") or "the key's owner"
    who = (
        f"{required} approver{'s' if required > 1 else ''} of this workspace "
        f"(not {owner}, who is answerable for this key)"
    )
    first = (
        "STILL WAITING for a human (not a final answer; nothing has run): you asked for "
        "this exact call before and it is not decided yet. Nothing new was filed."
        if outcome.joined
        else "NOT EXECUTED YET: this call is waiting for a human's approval (not a final answer)."
    )
    text = (
        f"{first}\n"
        f"What: {body.get('summary')}\n"
        f"Who must approve: {who}, in Warden's approval queue.\n"
        f"Open until: {body.get('expires_at')}\n"
        "How to check: call this tool again later with the very same arguments. While "
        "waiting, that joins this request (no new request, nobody is asked twice); once "
        "approved it runs exactly once; if denied, you get the denial and its reason."
    )
    structured = {
        "status": "waiting_for_human" if outcome.joined else "requires_confirmation",
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
    if execution.withheld is not None:
        meta[WITHHELD_META] = _withheld_paths(execution.withheld)
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


def _withheld_paths(withheld: dict) -> dict:
    """What the output projection withheld, for the agent: how many values and where
    (paths, never values or digests)."""
    return {
        "count": withheld.get("count", 0),
        "paths": [entry["path"] for entry in withheld.get("entries", [])],
    }


def _catalog_name(request, name):
    """tools/call takes the exposed (portable) name or the catalog name."""
    if not isinstance(name, str):
        return name
    key, workspace = request.auth, request.workspace
    return naming.catalog_name(
        name[:200], lambda: [t.name for t in tools_callable_by_key(key=key, workspace=workspace)]
    )


def _call(request, params: dict) -> dict:
    name = _catalog_name(request, params.get("name"))
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
    if outcome.denied and outcome.code == "confirmation_denied":
        return _denied_by_human(outcome.code, outcome.message, outcome.detail)
    if outcome.denied:
        return _refused(WardenError(outcome.code, outcome.message, outcome.detail))
    return _executed(found)


# --- tasks (2025-11-25): gateway.mcp_tasks holds the domain side -------------------------


def _task(state: mcp_tasks.TaskState) -> dict:
    return {
        "taskId": str(state.action.pk),
        "status": state.status,
        "statusMessage": state.message,
        "createdAt": state.action.created_at.isoformat(),
        "lastUpdatedAt": state.updated_at.isoformat(),
        "ttl": None,  # kept as long as the workspace keeps its action requests
        "pollInterval": POLL_INTERVAL_MS,
    }


def _found_task(request, params: dict):
    action = mcp_tasks.task_find(key=request.auth, task_id=params.get("taskId"))
    if action is None:
        raise _RpcError(INVALID_PARAMS, "Failed to retrieve task: Task not found")
    return action


def _call_as_task(request, params: dict) -> dict:
    """A task-augmented tools/call: the gate is asked as for a plain call; the answer
    is a task (waiting for a human, or already ended) instead of the tool's result."""
    key, name = request.auth, _catalog_name(request, params.get("name"))
    arguments = params.get("arguments") or {}
    tool = mcp_tasks.task_tool(key, name[:200]) if isinstance(name, str) and name else None
    if not isinstance(arguments, dict):
        raise _RpcError(INVALID_PARAMS, "arguments must be an object.")
    if tool is None:
        raise _RpcError(METHOD_NOT_FOUND, f"The tool {name!r} does not run as a task here.")
    # The same call still waiting for a human is joined (approvals.asking): its task.
    try:
        ran = action_execute(key=key, actor=request.actor, tool_name=tool.name, params=arguments)
    except WardenError as error:
        raise _RpcError(INVALID_PARAMS, _refused(error)["content"][0]["text"]) from None
    recorded = ran.outcome.action
    action = mcp_tasks.task_find(key=key, task_id=getattr(recorded, "pk", None))
    if action is None:  # defensive: every gate answer is recorded
        raise _RpcError(INVALID_PARAMS, "Refused by Warden.")
    state = mcp_tasks.task_state(key=key, actor=request.actor, action=action, run=False)
    meta = {IMMEDIATE_RESPONSE: state.message, "warden/action_id": str(action.pk)}
    return {"task": _task(state), "_meta": meta}


def _task_result(state: mcp_tasks.TaskState) -> dict:
    """What the tools/call would have returned, for a task that ended."""
    action, execution = state.action, state.execution
    if state.ran_now is not None and state.ran_now.execution is not None:
        result = _executed(state.ran_now)
    elif execution is not None and isinstance(execution.observed_output, dict):
        result = dict(execution.observed_output)
        result.setdefault("content", [])
    elif execution is not None and execution.status == Execution.Status.SUCCEEDED:
        result = _text(
            f"Executed once by Warden (execution {execution.pk}); this workspace keeps no "
            f"copy of outputs (SHA-256 {execution.output_sha256}).",
        )
    else:
        result = _text(state.message, error=state.status != mcp_tasks.COMPLETED)
    result["_meta"] = {
        **(result.get("_meta") or {}),
        "warden/action_id": str(action.pk),
        RELATED_TASK: {"taskId": str(action.pk)},
    }
    if execution is not None:
        result["_meta"]["warden/execution"] = {"id": str(execution.pk), "status": execution.status}
        if execution.withheld is not None:
            result["_meta"][WITHHELD_META] = _withheld_paths(execution.withheld)
    return result


def _tasks_get(request, params: dict) -> dict:
    action = _found_task(request, params)
    return _task(mcp_tasks.task_state(key=request.auth, actor=request.actor, action=action))


def _tasks_result(request, params: dict) -> dict:
    action = _found_task(request, params)
    state = mcp_tasks.task_state(key=request.auth, actor=request.actor, action=action)
    if not state.terminal:
        # A plain-JSON endpoint holds no request open for a human's decision: poll.
        raise _RpcError(
            INVALID_PARAMS,
            f"Task {action.pk} is still {state.status}: {state.message} Poll tasks/get.",
        )
    return _task_result(state)


def _tasks_list(request, params: dict) -> dict:
    try:
        page, cursor = mcp_tasks.task_list(key=request.auth, cursor=params.get("cursor"))
    except WardenError as error:
        raise _RpcError(INVALID_PARAMS, error.message) from None
    tasks = [
        _task(mcp_tasks.task_state(key=request.auth, actor=request.actor, action=a, run=False))
        for a in page
    ]
    return {"tasks": tasks, **({"nextCursor": cursor} if cursor else {})}


def _tasks_cancel(request, params: dict) -> dict:
    action = _found_task(request, params)
    try:
        action = mcp_tasks.task_cancel(key=request.auth, actor=request.actor, action=action)
    except WardenError as error:
        raise _RpcError(INVALID_PARAMS, error.message) from None
    state = mcp_tasks.task_state(key=request.auth, actor=request.actor, action=action, run=False)
    return _task(state)


TASK_METHODS = {
    "tasks/get": _tasks_get,
    "tasks/result": _tasks_result,
    "tasks/list": _tasks_list,
    "tasks/cancel": _tasks_cancel,
}


def _tasks_on(request) -> bool:
    """Tasks only where the negotiated revision defines them (the SDK client sends the
    revision on every request after initialize; none means 2025-03-26)."""
    return request.headers.get("MCP-Protocol-Version") in TASK_PROTOCOL_VERSIONS


def _dispatch(request, method: str, params: dict) -> dict:
    if method == "initialize":
        requested = params.get("protocolVersion")
        supported = SUPPORTED_PROTOCOL_VERSIONS
        version = requested if requested in supported else supported[0]
        capabilities: dict[str, Any] = {"tools": {"listChanged": False}}
        if version in TASK_PROTOCOL_VERSIONS:
            capabilities["tasks"] = TASKS_CAPABILITY
        return {
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": SERVER_INFO,
            "instructions": "Every tool call is checked by Warden; some need a human first.",
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        tasks = _tasks_on(request)
        return {"tools": _tool_listing(request.auth, request.workspace, tasks=tasks)}
    if method == "tools/call":
        if _tasks_on(request) and isinstance(params.get("task"), dict):
            return _call_as_task(request, params)
        return _call(request, params)
    if method in TASK_METHODS and _tasks_on(request):
        return TASK_METHODS[method](request, params)
    raise _RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")


def _rpc_error(msg_id, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


class JSONAnswers(DefaultContentNegotiation):
    """Every /mcp answer is JSON, whatever the Accept header names (the SDK's GET asks
    for text/event-stream only): never a 406 before the 405, never the browsable HTML."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


class MCPView(WorkspaceAPIView):
    principals = (KEY,)
    # A machine key, or an OAuth access token bound to /mcp that acts as its grant's
    # key; a 401 names the protected-resource metadata (MCP authorization).
    authentication_classes = [OAuthOrKeyAuthentication]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONAnswers

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

    def http_method_not_allowed(self, request, *args, **kwargs):
        """GET (no server-sent event stream is offered: the spec's 405), DELETE (no
        session exists to terminate) and anything else but POST: 405, a JSON-RPC error
        whose data is Warden's error body. DRF sets Allow to the methods served."""
        method = request.method
        message = (
            "This server offers no SSE stream; send JSON-RPC messages with POST."
            if method == "GET"
            else "No session to terminate: every request stands alone."
            if method == "DELETE"
            else f"Method {method} not allowed; send JSON-RPC messages with POST."
        )
        error = _rpc_error(None, INVALID_REQUEST, message)
        error["error"]["data"] = error_payload("method_not_allowed", message)
        return Response(error, status=405)
