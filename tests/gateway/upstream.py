"""A small upstream for gateway tests: a threaded http.server on 127.0.0.1 speaking
just enough MCP (JSON-RPC over POST, JSON or SSE answers) or plain JSON (`http` kind).
It counts tool calls and records every request's headers."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.http_servers import serve_in_background

LOOKUP_SCHEMA = {
    "type": "object",
    "properties": {"customer_id": {"type": "integer"}},
    "required": ["customer_id"],
}


@dataclass
class FakeUpstream:
    tools: list = field(
        default_factory=lambda: [
            {"name": "lookup", "description": "Find a customer", "inputSchema": LOOKUP_SCHEMA},
            {"name": "send", "description": "Send a message", "inputSchema": {"type": "object"}},
        ]
    )
    sse: bool = False
    redirect_to: str = ""
    status: int = 200
    sessions: bool = False  # hand out Mcp-Session-Id; unknown ids get 404
    known_sessions: set = field(default_factory=set)
    initializations: int = 0
    calls: list = field(default_factory=list)  # (tool, arguments)
    methods: list = field(default_factory=list)  # every JSON-RPC method asked, in order
    headers_seen: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def _answer(self, message: dict) -> dict | None:
        method = message.get("method")
        with self.lock:
            self.methods.append(method)
        if "id" not in message:
            return None
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": self.tools}
        elif method == "tools/call":
            params = message["params"]
            with self.lock:
                self.calls.append((params["name"], params.get("arguments")))
            result = {
                "content": [{"type": "text", "text": f"done: {params['name']}"}],
                "structuredContent": {"tool": params["name"], "echo": params.get("arguments")},
                "isError": False,
            }
        else:
            error = {"code": -32601, "message": "unknown method"}
            return {"jsonrpc": "2.0", "id": message["id"], "error": error}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    def start(self) -> FakeUpstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with upstream.lock:
                    upstream.headers_seen.append(dict(self.headers.items()))
                if upstream.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", upstream.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                message = json.loads(body)
                if "tool" in message:  # the http kind
                    with upstream.lock:
                        upstream.calls.append((message["tool"], message["arguments"]))
                    self._send(upstream.status, {"ok": True, "tool": message["tool"]})
                    return
                session = self.headers.get("Mcp-Session-Id")
                new_session = ""
                if message.get("method") == "initialize":
                    with upstream.lock:
                        upstream.initializations += 1
                        if upstream.sessions:
                            new_session = f"s{upstream.initializations}"
                            upstream.known_sessions.add(new_session)
                elif upstream.sessions and session not in upstream.known_sessions:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = upstream._answer(message)
                if answer is None:
                    self.send_response(202)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif upstream.sse:
                    data = f"event: message\ndata: {json.dumps(answer)}\n\n".encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self._send(upstream.status, answer, new_session)

            def _send(self, status, payload, session=""):
                data = json.dumps(payload).encode()
                self.send_response(status)
                if session:
                    self.send_header("Mcp-Session-Id", session)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_background(self.server)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def tool_calls(self) -> list:
        with self.lock:
            return list(self.calls)
