"""Outbound safety for connectors, and the one HTTP client that reaches upstreams.

The URL rules are the webhooks' (common.egress.check_destination: https, no
credentials in the URL, the host on the workspace's outbound host allowlist) with one
difference: special-purpose addresses (private, loopback, link-local, CGNAT, multicast,
reserved, and their NAT64, 6to4, Teredo, IPv4-compatible and IPv4-mapped forms) are
admitted only inside the operator's WARDEN_CONNECTOR_PRIVATE_NETWORKS, never by a
workspace entry.
The connection goes to the address that was checked (no second DNS lookup), redirects
are never followed, and every call has a timeout and a response size cap. Connections
are kept alive per process and reused for the same checked address (`post`).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from common import egress
from notifications.selectors import webhook_host_allowlist
from tenants.models import Workspace

DestinationRefused = egress.DestinationRefused


class UpstreamError(Exception):
    """The upstream could not be reached or answered badly. Safe to show the agent."""


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    headers: dict[str, str]
    body: bytes


def outbound_hosts(workspace: Workspace) -> list[str]:
    """The workspace's outbound host allowlist (the one place that reads it)."""
    return webhook_host_allowlist(workspace)


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(entry.strip(), strict=False)
        for entry in settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS or ()
        if entry.strip()
    ]


def check_url(
    url: str, workspace: Workspace, *, resolve: bool = True, hosts: list[str] | None = None
) -> egress.Target:
    """The checked target, or DestinationRefused with a message safe to show a human.
    `hosts`: the workspace's allowlist when the caller read it already (the call path
    reads it with the connector, gateway.selectors.connector_with_hosts)."""
    if hosts is None:
        hosts = outbound_hosts(workspace)
    return egress.check_destination(
        url, list(hosts), resolve=resolve, trusted=_networks(), hint=egress.OPERATOR_HINT
    )


def _nodelay(sock: socket.socket) -> socket.socket:
    """No Nagle delay: on a kept-alive connection a request written in two segments
    (headers, then body) would otherwise wait for the peer's delayed ACK (~40 ms)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _quickack(sock: socket.socket | None) -> None:
    """ACK the answer's first segment at once (Linux): an upstream that writes its
    headers and body apart, with Nagle on, would otherwise wait for our delayed ACK
    (~40 ms) on every kept-alive call. A no-op where the option does not exist."""
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class _Pinned(http.client.HTTPConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = _nodelay(socket.create_connection((self._address, self.port), self.timeout))


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = _nodelay(socket.create_connection((self._address, self.port), self.timeout))
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


# --- keep-alive pool ---------------------------------------------------------------------
# Idle connections per (scheme, host, port, checked address), per process, most recent
# first. A connection is reused only when the upstream answered in full without asking
# to close, it has been idle less than WARDEN_CONNECTOR_KEEPALIVE_SECONDS (keep it below
# the upstream's own keep-alive timeout) and its socket shows no close from the other
# side. A request that fails is never re-sent on another connection: a tools/call must
# not run twice, so a failure is the call's failure (recorded like any other).
POOL_MAX_IDLE_PER_HOST = 8
_POOL: dict[tuple, list[tuple[float, http.client.HTTPConnection]]] = {}
_POOL_LOCK = threading.Lock()


def _pool_key(target: egress.Target, address: str) -> tuple:
    return (target.scheme, target.host, target.port, address)


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """The peer closed (or sent something unasked): readable while idle means unusable."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _checkout(key: tuple) -> http.client.HTTPConnection | None:
    keepalive = settings.WARDEN_CONNECTOR_KEEPALIVE_SECONDS
    now = time.monotonic()
    while True:
        with _POOL_LOCK:
            idle = _POOL.get(key)
            if not idle:
                return None
            since, conn = idle.pop(0)
        if now - since < keepalive and not _dropped(conn):
            return conn
        conn.close()


def _checkin(key: tuple, conn: http.client.HTTPConnection) -> None:
    if settings.WARDEN_CONNECTOR_KEEPALIVE_SECONDS <= 0:
        conn.close()
        return
    with _POOL_LOCK:
        idle = _POOL.setdefault(key, [])
        idle.insert(0, (time.monotonic(), conn))
        surplus = idle[POOL_MAX_IDLE_PER_HOST:]
        del idle[POOL_MAX_IDLE_PER_HOST:]
    for _, extra in surplus:
        extra.close()


def pool_clear() -> None:
    """Close every idle connection (tests; after changing operator settings)."""
    with _POOL_LOCK:
        idle = [conn for conns in _POOL.values() for _, conn in conns]
        _POOL.clear()
    for conn in idle:
        conn.close()


class _Watchdog:
    """One deadline for the whole call: connect, headers and body. A socket timeout
    bounds each read only, so an upstream trickling a byte a second would hold the call
    forever; at the deadline this shuts the socket down, and the read in progress fails."""

    def __init__(self, conn: http.client.HTTPConnection, deadline: float):
        self.fired = False
        self._conn = conn
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        self.fired = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


@sensitive_variables("headers")
def post(target: egress.Target, body: bytes, headers: dict[str, str]) -> Reply:
    """POST to the checked address over a kept-alive connection when one is idle; a
    redirect is an error, never followed."""
    timeout = settings.WARDEN_CONNECTOR_TIMEOUT_SECONDS
    cap = settings.WARDEN_CONNECTOR_MAX_RESPONSE_BYTES
    deadline = time.monotonic() + timeout
    address = target.addresses[0]
    key = _pool_key(target, address)
    conn = _checkout(key)
    if conn is None:
        cls = _PinnedTLS if target.scheme == "https" else _Pinned
        conn = cls(target.host, target.port, address=address, timeout=timeout)
    else:
        conn.timeout = timeout
        conn.sock.settimeout(timeout)
    reusable = False
    watchdog = _Watchdog(conn, deadline)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        _quickack(conn.sock)
        response = conn.getresponse()
        chunks, size = [], 0
        while size <= cap:
            if time.monotonic() > deadline:
                raise UpstreamError("The upstream timed out.")
            chunk = response.read1(64 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > cap:
            raise UpstreamError(f"The upstream's answer is larger than {cap} bytes.")
        # Read to the end (a Content-Length body leaves the response open at 0 bytes
        # left): only then may the next request use this connection.
        complete = response.isclosed() or response.length == 0
        response.close()
        reusable = complete and not response.will_close
    except TimeoutError:
        raise UpstreamError("The upstream timed out.") from None
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.fired:
            raise UpstreamError("The upstream timed out.") from None
        raise UpstreamError(f"The upstream could not be reached ({type(exc).__name__}).") from None
    finally:
        watchdog.cancel()
        if watchdog.fired:
            reusable = False
        if reusable and not 300 <= response.status < 400:
            _checkin(key, conn)
        else:
            conn.close()
    if 300 <= response.status < 400:
        raise UpstreamError(
            f"The upstream answered a redirect ({response.status}); redirects are not followed."
        )
    return Reply(
        status=response.status,
        content_type=(response.getheader("Content-Type") or "").split(";")[0].strip().lower(),
        headers={k.lower(): v for k, v in response.getheaders()},
        body=b"".join(chunks),
    )
