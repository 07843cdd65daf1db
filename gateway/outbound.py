"""Outbound safety for connectors, and the one HTTP client that reaches upstreams.

The URL rules are the webhooks' (notifications.transport.check_destination: https, no
credentials in the URL, the host on the workspace's outbound host allowlist) with one
difference: private, loopback, link-local and other non-public addresses are admitted
only inside the operator's WARDEN_CONNECTOR_PRIVATE_NETWORKS, never by a workspace entry.
The connection goes to the address that was checked (no second DNS lookup), redirects
are never followed, and every call has a timeout and a response size cap.

This module is the gateway's only import from notifications (transport has no
dependency of its own beyond settings; the allowlist will move to the workspace)."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from notifications import transport
from notifications.selectors import webhook_host_allowlist
from tenants.models import Workspace

DestinationRefused = transport.DestinationRefused


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


def _normalize(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def _address_allowed(ip) -> bool:
    if ip.is_global:
        return True
    return any(ip.version == net.version and ip in net for net in _networks())


def check_url(url: str, workspace: Workspace, *, resolve: bool = True) -> transport.Target:
    """The checked target, or DestinationRefused with a message safe to show a human."""
    target = transport.check_destination(url, outbound_hosts(workspace), resolve=False)
    literal = _normalize(target.host)
    if literal is not None:
        addresses = [str(literal)]
    elif not resolve:
        return target
    else:
        try:
            addresses = transport.resolve_host(target.host, target.port)
        except (OSError, UnicodeError):
            raise DestinationRefused(f"The host {target.host!r} does not resolve.") from None
    if not addresses:
        raise DestinationRefused(f"The host {target.host!r} does not resolve.")
    for address in addresses:
        ip = _normalize(address)
        if ip is None or not _address_allowed(ip):
            raise DestinationRefused(
                f"The host {target.host!r} resolves to a private or reserved address "
                f"({ip or address}); only the operator can admit it "
                "(WARDEN_CONNECTOR_PRIVATE_NETWORKS)."
            )
    return transport.Target(
        target.scheme, target.host, target.port, target.path, tuple(map(str, addresses))
    )


class _Pinned(http.client.HTTPConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@sensitive_variables("headers")
def post(target: transport.Target, body: bytes, headers: dict[str, str]) -> Reply:
    """POST to the checked address; a redirect is an error, never followed."""
    timeout = settings.WARDEN_CONNECTOR_TIMEOUT_SECONDS
    cap = settings.WARDEN_CONNECTOR_MAX_RESPONSE_BYTES
    deadline = time.monotonic() + timeout
    address = target.addresses[0]
    cls = _PinnedTLS if target.scheme == "https" else _Pinned
    conn = cls(target.host, target.port, address=address, timeout=timeout)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
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
    except TimeoutError:
        raise UpstreamError("The upstream timed out.") from None
    except (OSError, http.client.HTTPException) as exc:
        raise UpstreamError(f"The upstream could not be reached ({type(exc).__name__}).") from None
    finally:
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
