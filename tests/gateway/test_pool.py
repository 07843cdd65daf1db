"""The keep-alive pool of gateway.outbound: connections to an upstream are reused while
fresh, never after the upstream closed them, and a failed request is never re-sent."""

import json
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common import egress
from gateway import outbound
from tests.http_servers import serve_in_background


class _Counting(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.connections = 0
        self.requests = 0
        self.close_after = False  # answer with Connection: close
        self.redirect = False
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.connections += 1

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests += 1
        body = json.dumps({"n": self.server.requests}).encode()
        self.send_response(307 if self.server.redirect else 200)
        if self.server.redirect:
            self.send_header("Location", "http://127.0.0.1:1/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.server.close_after:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(settings):
    settings.WARDEN_CONNECTOR_KEEPALIVE_SECONDS = 30
    outbound.pool_clear()
    running = _Counting()
    serve_in_background(running)
    yield running
    running.shutdown()
    running.server_close()
    outbound.pool_clear()


def _target(server):
    port = server.server_address[1]
    return egress.Target("http", "127.0.0.1", port, "/", ("127.0.0.1",))


def _post(server):
    return json.loads(outbound.post(_target(server), b"{}", {"Authorization": "x"}).body)


def test_one_connection_serves_successive_calls(server):
    assert [_post(server)["n"] for _ in range(5)] == [1, 2, 3, 4, 5]
    assert server.connections == 1


def test_no_reuse_when_switched_off(server, settings):
    settings.WARDEN_CONNECTOR_KEEPALIVE_SECONDS = 0
    for _ in range(3):
        _post(server)
    assert server.connections == 3


def test_no_reuse_after_the_upstream_asked_to_close(server):
    server.close_after = True
    for _ in range(3):
        _post(server)
    assert server.connections == 3 and server.requests == 3


def test_an_idle_connection_the_upstream_dropped_is_not_used(server):
    _post(server)
    with outbound._POOL_LOCK:
        (idle,) = [conn for conns in outbound._POOL.values() for _, conn in conns]
    # Our half-close makes the upstream end the connection: the idle socket turns
    # readable (EOF), which is how a keep-alive timeout upstream looks from here.
    idle.sock.shutdown(socket.SHUT_WR)
    time.sleep(0.2)
    assert _post(server)["n"] == 2
    assert server.connections == 2 and server.requests == 2


def test_a_connection_idle_past_the_keepalive_is_not_used(server):
    _post(server)
    with outbound._POOL_LOCK:
        for conns in outbound._POOL.values():
            conns[:] = [(since - 60, conn) for since, conn in conns]
    _post(server)
    assert server.connections == 2


def test_a_redirect_is_refused_and_its_connection_dropped(server):
    server.redirect = True
    with pytest.raises(outbound.UpstreamError, match="redirect"):
        _post(server)
    with outbound._POOL_LOCK:
        assert not any(outbound._POOL.values())


def test_a_failed_request_is_not_sent_again(server, monkeypatch):
    _post(server)
    with outbound._POOL_LOCK:
        (conn,) = [c for conns in outbound._POOL.values() for _, c in conns]

    def broken(*args, **kwargs):
        raise ConnectionResetError("peer reset")

    monkeypatch.setattr(conn, "getresponse", broken)
    with pytest.raises(outbound.UpstreamError, match="could not be reached"):
        _post(server)
    deadline = time.monotonic() + 2
    while server.requests < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # the upstream's thread may still be reading it
    time.sleep(0.1)
    # Sent once on the pooled connection, never re-sent on a new one.
    assert server.requests == 2 and server.connections == 1
    with outbound._POOL_LOCK:
        assert not any(outbound._POOL.values())


def test_reuse_does_not_wait_for_delayed_acks(server):
    """The test upstream writes headers and body apart with Nagle on, like many servers:
    without TCP_NODELAY/TCP_QUICKACK every kept-alive call waited ~40 ms for an ACK."""
    _post(server)
    timings = []
    for _ in range(9):
        started = time.perf_counter()
        _post(server)
        timings.append(time.perf_counter() - started)
    assert server.connections == 1
    assert sorted(timings)[4] < 0.025, timings
