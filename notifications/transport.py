"""Outgoing HTTP for webhooks and audit exports: a POST to a destination that
common.egress.check_destination accepted. The connection goes to the address that was
checked (no second DNS lookup, no redirects followed), so DNS rebinding cannot swap in
an internal address between check and connect.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from common.egress import Target

MAX_RESPONSE_BYTES = 64 * 1024


class TransportError(Exception):
    """The request could not be completed (network, TLS, timeout)."""


@dataclass(frozen=True)
class Response:
    status: int
    duration_ms: int


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> Response:
    """POST to the checked address. Raises TransportError; never follows redirects."""
    started = time.monotonic()
    last_error: Exception | None = None
    for address in target.addresses:
        cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        conn = cls(target.host, target.port, address=address, timeout=timeout)
        try:
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            return Response(response.status, int((time.monotonic() - started) * 1000))
        except (OSError, http.client.HTTPException) as exc:
            last_error = exc
            if not isinstance(exc, ConnectionRefusedError | socket.gaierror):
                break  # the request may have reached the server: do not try another address
        finally:
            conn.close()
    raise TransportError(_describe(last_error)) from last_error


def _describe(exc: Exception | None) -> str:
    if exc is None:
        return "no address to connect to"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]
