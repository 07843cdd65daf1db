"""One wall-clock deadline per upstream call (issue 22): an upstream that trickles its
response headers a byte at a time used to hold a call 14.1 s with a 3 s timeout, since
the socket timeout bounds each read, not the call."""

import socket
import threading
import time

import pytest

from common import egress
from gateway import outbound
from gateway.outbound import UpstreamError

pytestmark = pytest.mark.db_independent


class _Trickler:
    """Accepts one connection, reads the request, then sends a status line and one
    header byte every `every` seconds, `count` times at most (bounded, loopback only)."""

    def __init__(self, every: float = 0.2, count: int = 100):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.every, self.count = every, count
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(self.count):
                    time.sleep(self.every)
                    conn.sendall(b"a")
            except OSError:
                return  # Warden hung up: what the test wants

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def trickler():
    outbound.pool_clear()
    server = _Trickler()
    yield server
    server.close()
    outbound.pool_clear()


def test_a_trickling_upstream_is_cut_at_the_deadline(trickler, settings):
    settings.WARDEN_CONNECTOR_TIMEOUT_SECONDS = 1
    target = egress.Target("http", "127.0.0.1", trickler.port, "/mcp", ("127.0.0.1",))
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="timed out"):
        outbound.post(target, b"{}", {"Content-Type": "application/json"})
    elapsed = time.monotonic() - started
    # Each byte comes well inside the per-read timeout; only the call's deadline ends it.
    assert elapsed < 2.5, f"held {elapsed:.1f} s with a 1 s deadline"
