"""A local stand-in for Slack's Web API: an HTTP server that records every call
(method name, bearer token, arguments) and answers as Slack does ({"ok": true, ...}).
WebClient talks to it through WARDEN_SLACK_API_URL; slack_sdk itself is not mocked."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.http_servers import serve_in_background


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.tokens: list[str] = []
        self.fail_next: list[str] = []  # Slack error codes to answer, in order
        self._lock = threading.Lock()
        self._ts = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw).items()}
                for key in ("blocks", "view"):
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                method = self.path.rsplit("/", 1)[-1]
                with fake._lock:
                    fake.calls.append((method, args))
                    fake.tokens.append(self.headers.get("Authorization", ""))
                    failing = fake.fail_next.pop(0) if fake.fail_next else None
                    fake._ts += 1
                    ts = f"1700000000.{fake._ts:06d}"
                body = (
                    {"ok": False, "error": failing}
                    if failing
                    else {"ok": True, "ts": ts, "channel": args.get("channel") or "C0"}
                )
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def start(self) -> FakeSlack:
        serve_in_background(self.server)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def called(self, method: str) -> list[dict]:
        return [args for name, args in self.calls if name == method]
