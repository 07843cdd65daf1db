"""A local webhook receiver for tests: a threaded http.server on 127.0.0.1 that does
what the README tells receivers to do (verify the signature and timestamp, drop
delivery ids it has seen) and records everything it received."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from notifications import signing
from tests.http_servers import serve_in_background


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    valid: bool


@dataclass
class Receiver:
    secret: str = ""
    status: int = 200
    statuses: list = field(default_factory=list)  # consumed first, then `status`
    hold: threading.Event | None = None  # see hold_next()
    hold_armed: bool = False
    received: list = field(default_factory=list)
    processed: list = field(default_factory=list)  # delivery ids handled (deduped)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                valid = signing.verify_signature(
                    secret=receiver.secret,
                    timestamp=self.headers.get(signing.TIMESTAMP_HEADER),
                    body=body,
                    signature=self.headers.get(signing.SIGNATURE_HEADER),
                )
                delivery = self.headers.get(signing.DELIVERY_HEADER)
                with receiver.lock:
                    held = receiver.hold if receiver.hold_armed else None
                    receiver.hold_armed = False
                    receiver.received.append(Received(self.path, headers, body, valid))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                    if valid and 200 <= status < 300 and delivery not in receiver.processed:
                        receiver.processed.append(delivery)
                receiver.arrived.set()
                if held is not None:
                    held.wait(timeout=60)
                try:
                    self.send_response(status if valid else 401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender went away (killed worker)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        serve_in_background(self.server)
        return self

    def hold_next(self, event: threading.Event) -> None:
        """The next request waits (after it was recorded) until release()."""
        with self.lock:
            self.hold, self.hold_armed = event, True

    def release(self) -> None:
        if self.hold is not None:
            self.hold.set()

    def stop(self) -> None:
        self.release()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
