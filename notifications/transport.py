"""Outgoing HTTP for webhooks and audit exports, with the SSRF rules in one place.

A destination is accepted only if
- its scheme is https (http only with DEBUG or WARDEN_WEBHOOK_ALLOW_HTTP, for tests),
- it carries no credentials,
- its host matches the workspace's allowlist (exact host, `*.suffix`, or an IP/CIDR
  entry for IP literals), and
- every address the host resolves to is public (common.egress: outside the
  special-purpose ranges, IPv4 embedded in IPv6 checked too), or lies inside an IP/CIDR
  entry of the allowlist: a host name entry never admits a private or loopback
  address.

The check runs when a URL is saved and again before every send, and the connection
goes to the address that was checked (no second DNS lookup, no redirects followed),
so DNS rebinding cannot swap in an internal address between check and connect.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from common import egress

MAX_RESPONSE_BYTES = 64 * 1024
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
IPNetwork = egress.IPNetwork
IPAddress = egress.IPAddress


class DestinationRefused(Exception):
    """The URL is not allowed for this workspace. The message is safe to show."""


class TransportError(Exception):
    """The request could not be completed (network, TLS, timeout)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Response:
    status: int
    duration_ms: int


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        hosts, suffixes, networks = set(), [], []
        for raw in entries or ():
            entry = str(raw).strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])  # ".example.com"
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    def admits_host(self, host: str) -> bool:
        ip = _ip_or_none(host)
        if ip is not None:
            return self.admits_address(ip)
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def admits_address(self, ip: IPAddress) -> bool:
        return egress.covered(ip, self.networks)


def validate_entries(entries: Iterable[str]) -> list[str]:
    """Normalized allowlist entries; raises ValueError naming a bad one."""
    cleaned = []
    for raw in entries or ():
        entry = str(raw).strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            name = entry[2:] if entry.startswith("*.") else entry
            if not all(_LABEL.fullmatch(label) for label in name.split(".")):
                raise ValueError(f"not a host, *.suffix or IP/CIDR: {raw!r}") from None
        cleaned.append(entry)
    return cleaned


def _ip_or_none(host: str) -> IPAddress | None:
    return egress.parse_address(host)


# The address policy (special-purpose ranges, IPv4 embedded in IPv6) is common.egress,
# shared with the connectors' outbound check.
is_special_purpose = egress.is_special_purpose


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the host resolves to (tests replace this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def http_allowed() -> bool:
    return bool(settings.DEBUG or settings.WARDEN_WEBHOOK_ALLOW_HTTP)


def check_destination(
    url: str, allowlist_entries: Iterable[str], *, resolve: bool = True
) -> Target:
    parts = urlsplit((url or "").strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise DestinationRefused("The URL must use https.")
    if scheme == "http" and not http_allowed():
        raise DestinationRefused("The URL must use https.")
    if parts.username or parts.password:
        raise DestinationRefused("The URL must not carry credentials.")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise DestinationRefused("The URL has no host.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused("The URL has an invalid port.") from None
    allowlist = Allowlist.parse(allowlist_entries)
    if not allowlist.admits_host(host):
        raise DestinationRefused(
            f"The host {host!r} is not on this workspace's webhook host allowlist."
        )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if not resolve:
        return Target(scheme, host, port, path, ())
    literal = _ip_or_none(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve_host(host, port)
        except (OSError, UnicodeError):
            raise DestinationRefused(f"The host {host!r} does not resolve.") from None
    if not addresses:
        raise DestinationRefused(f"The host {host!r} does not resolve.")
    for address in addresses:
        ip = _ip_or_none(address)
        if ip is None:
            raise DestinationRefused(f"The host {host!r} resolves to an invalid address.")
        if not egress.address_allowed(ip, allowlist.networks):
            raise DestinationRefused(
                f"The host {host!r} resolves to a private or reserved address ({ip}); "
                "allowlist that address explicitly (IP or CIDR) to reach it."
            )
    return Target(scheme, host, port, path, tuple(addresses))


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
