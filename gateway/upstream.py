"""Clients for the two connector kinds, over gateway.outbound (checked, pinned, capped).

mcp:  Streamable HTTP, JSON-RPC 2.0 over POST. A session (initialize,
      notifications/initialized) is opened once per connector, URL and credentials and
      reused by this process; when the upstream answers 404 (session gone, the request
      was not processed, per the spec) it is opened again and the request sent once
      more. Answers may come as JSON or as a server-sent event stream, both are read.
http: POST {"tool", "arguments"} as JSON, a JSON answer is the result."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.views.decorators.debug import sensitive_variables

from gateway.outbound import UpstreamError, post

CLIENT_PROTOCOL_VERSION = "2025-06-18"
CLIENT_INFO = {"name": "warden-gateway", "version": "1"}
_ids = itertools.count(1)
# (connector id, url, credentials digest) -> (session id, protocol version)
_SESSIONS: dict[tuple, tuple[str, str]] = {}
_SESSIONS_LOCK = threading.Lock()
_SESSIONS_MAX = 1024


class SessionGone(UpstreamError):
    """The upstream no longer knows the session (HTTP 404): open a new one."""


ANNOTATION_HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


@dataclass(frozen=True)
class UpstreamTool:
    name: str
    description: str
    input_schema: dict
    output_schema: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)  # the boolean hints only

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the definition a human reviews: what a rug pull would change.
        Computed once per listed definition (the call-time check reuses it)."""
        definition = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "annotations": self.annotations,
        }
        encoded = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass
class CallOutcome:
    """The upstream's answer as the agent will see it (an MCP CallToolResult shape)."""

    result: dict
    is_error: bool = False
    meta: dict = field(default_factory=dict)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UpstreamError("The upstream's answer is not valid JSON.") from None


def _sse_messages(body: bytes) -> list[Any]:
    messages, data = [], []
    for raw in [*body.decode("utf-8", errors="replace").splitlines(), ""]:
        if raw == "":
            if data:
                with contextlib.suppress(json.JSONDecodeError):
                    messages.append(json.loads("\n".join(data)))
                data = []
        elif raw.startswith("data:"):
            data.append(raw[5:].removeprefix(" "))
    return messages


class MCPSession:
    """One short-lived session with an upstream MCP server."""

    @sensitive_variables("headers")
    def __init__(self, target, headers: dict[str, str]):
        self._target = target
        self._headers = dict(headers)
        self._session_id = ""
        self._protocol = ""
        self._resumed = False

    @sensitive_variables("headers")
    def _send(self, payload: dict) -> Any:
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if self._session_id:
            headers["Mcp-Session-Id"] = self._session_id
        if self._protocol:
            headers["MCP-Protocol-Version"] = self._protocol
        reply = post(self._target, json.dumps(payload).encode("utf-8"), headers)
        if "id" not in payload:
            if reply.status >= 400:
                raise UpstreamError(f"The upstream refused a notification ({reply.status}).")
            return None
        if reply.status == 404 and self._resumed:
            raise SessionGone("The upstream session expired.")
        if reply.status >= 400:
            raise UpstreamError(f"The upstream answered HTTP {reply.status}.")
        session = reply.headers.get("mcp-session-id", "")
        if session and not self._session_id:
            self._session_id = session[:200]
        if reply.content_type == "text/event-stream":
            candidates = _sse_messages(reply.body)
        else:
            answer = _json(reply.body)
            candidates = answer if isinstance(answer, list) else [answer]
        for message in candidates:
            if isinstance(message, dict) and message.get("id") == payload["id"]:
                if isinstance(message.get("error"), dict):
                    error = message["error"]
                    raise UpstreamError(
                        f"The upstream refused {payload['method']}: "
                        f"{str(error.get('message', ''))[:300]} ({error.get('code')})."
                    )
                result = message.get("result")
                if not isinstance(result, dict):
                    raise UpstreamError("The upstream answered without a result.")
                return result
        raise UpstreamError("The upstream's answer holds no response to the request.")

    @property
    def state(self) -> tuple[str, str]:
        """What resuming this session later needs: (session id, protocol version)."""
        return self._session_id, self._protocol

    def resume(self, state: tuple[str, str]) -> MCPSession:
        self._session_id, self._protocol = state
        self._resumed = True
        return self

    def request(self, method: str, params: dict | None = None) -> dict:
        payload = {"jsonrpc": "2.0", "id": next(_ids), "method": method}
        if params is not None:
            payload["params"] = params
        return self._send(payload)

    def open(self) -> MCPSession:
        result = self.request(
            "initialize",
            {
                "protocolVersion": CLIENT_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": CLIENT_INFO,
            },
        )
        self._protocol = str(result.get("protocolVersion") or CLIENT_PROTOCOL_VERSION)[:32]
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self


def _tool(item: Any) -> UpstreamTool | None:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    schema = item.get("inputSchema", item.get("input_schema"))
    output = item.get("outputSchema")
    annotations = item.get("annotations")
    hints = {
        hint: annotations[hint]
        for hint in ANNOTATION_HINTS
        if isinstance(annotations, dict) and isinstance(annotations.get(hint), bool)
    }
    return UpstreamTool(
        name=item["name"],
        description=str(item.get("description") or "")[:5000],
        input_schema=schema if isinstance(schema, dict) else {"type": "object"},
        output_schema=output if isinstance(output, dict) else {},
        annotations=hints,
    )


@sensitive_variables("headers")
def _session_key(connector_id, target, headers: dict[str, str]) -> tuple:
    secret = json.dumps(sorted(headers.items())).encode()
    return (
        str(connector_id),
        target.host,
        target.port,
        target.path,
        hashlib.sha256(secret).digest(),
    )


@sensitive_variables("headers")
def _request(connector_id, target, headers, method: str, params: dict) -> dict:
    """One request in this process's session with the upstream, reopened once if gone."""
    key = _session_key(connector_id, target, headers)
    with _SESSIONS_LOCK:
        known = _SESSIONS.get(key)
    for attempt in range(2):
        session = MCPSession(target, headers)
        if known is None or attempt:
            session.open()
            with _SESSIONS_LOCK:
                if len(_SESSIONS) >= _SESSIONS_MAX:
                    _SESSIONS.clear()
                _SESSIONS[key] = session.state
        else:
            session.resume(known)
        try:
            return session.request(method, params)
        except SessionGone:
            if attempt:
                raise
    raise UpstreamError("The upstream session could not be opened.")  # pragma: no cover


def mcp_list_tools(connector_id, target, headers: dict[str, str]) -> list[UpstreamTool]:
    tools, cursor = [], None
    for _page in range(20):
        params = {"cursor": cursor} if cursor else {}
        result = _request(connector_id, target, headers, "tools/list", params)
        tools.extend(t for t in map(_tool, result.get("tools") or []) if t is not None)
        cursor = result.get("nextCursor")
        if not cursor:
            break
    return tools


# (session key) -> (expires at, {upstream name: definition}): the upstream's catalog as
# this process last read it, for the call-time rug-pull check.
_DEFINITIONS: dict[tuple, tuple[float, dict[str, UpstreamTool]]] = {}


@sensitive_variables("headers")
def mcp_current_definition(
    connector_id, target, headers: dict[str, str], name: str, *, ttl: float
) -> UpstreamTool | None:
    """The upstream's current definition of `name` (None: it no longer offers it), from
    its tools/list read at most `ttl` seconds ago by this process."""
    key = _session_key(connector_id, target, headers)
    now = time.monotonic()
    with _SESSIONS_LOCK:
        cached = _DEFINITIONS.get(key)
    if cached is None or cached[0] <= now:
        listed = {t.name: t for t in mcp_list_tools(connector_id, target, headers)}
        cached = (now + ttl, listed)
        with _SESSIONS_LOCK:
            if len(_DEFINITIONS) >= _SESSIONS_MAX:
                _DEFINITIONS.clear()
            _DEFINITIONS[key] = cached
    return cached[1].get(name)


def forget_definitions() -> None:
    with _SESSIONS_LOCK:
        _DEFINITIONS.clear()


def mcp_call_tool(
    connector_id, target, headers: dict[str, str], name: str, arguments: dict
) -> CallOutcome:
    params = {"name": name, "arguments": arguments}
    result = _request(connector_id, target, headers, "tools/call", params)
    return CallOutcome(result=result, is_error=bool(result.get("isError")))


def http_call_tool(
    connector_id, target, headers: dict[str, str], name: str, arguments: dict
) -> CallOutcome:
    body = json.dumps({"tool": name, "arguments": arguments}).encode("utf-8")
    reply = post(
        target, body, {**headers, "Content-Type": "application/json", "Accept": "application/json"}
    )
    answer = _json(reply.body) if reply.body else None
    text = json.dumps(answer, ensure_ascii=False)
    result = {"content": [{"type": "text", "text": text}], "isError": reply.status >= 400}
    if isinstance(answer, dict):
        result["structuredContent"] = answer
    if reply.status >= 500:
        raise UpstreamError(f"The upstream answered HTTP {reply.status}.")
    return CallOutcome(result=result, is_error=reply.status >= 400)
