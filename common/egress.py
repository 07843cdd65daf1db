"""The one outbound address policy: which destinations and IP addresses Warden may
connect to, for webhooks, audit exports and connectors alike (issue 22.7, 26.2).

A destination URL is accepted only if
- its scheme is https (http only with DEBUG or WARDEN_WEBHOOK_ALLOW_HTTP, for tests),
- it carries no credentials,
- its host matches the workspace's outbound host allowlist (exact host, `*.suffix`, or
  an IP/CIDR entry for IP literals), and
- every address the host resolves to is allowed (below): for webhooks and exports a
  special-purpose address only inside an IP/CIDR entry of the allowlist (a host name
  entry never admits a private or loopback address); for connectors only inside the
  operator's WARDEN_CONNECTOR_PRIVATE_NETWORKS, never by a workspace entry.

The check runs when a URL is saved and again before every send; the caller connects to
the addresses that were checked (`Target.addresses`: no second DNS lookup, no redirects
followed), so DNS rebinding cannot swap in an internal address between check and
connect.

An address is *special-purpose* when it lies in a range of the IANA special-purpose
registries (RFC 6890 and successors: this-network, private, CGNAT, loopback,
link-local and cloud metadata, IETF protocol assignments, documentation, benchmarking,
6to4 relay anycast, multicast, reserved, broadcast; for IPv6: unspecified, loopback,
Teredo, documentation, unique-local, link-local, multicast), or when it is an IPv6
address standing for such an IPv4 address: IPv4-mapped (`::ffff:a.b.c.d`),
IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`) and 6to4
(`2002::/16`). Each of those reaches the IPv4 address through a translator or tunnel,
yet Python's `ipaddress` calls several of them global, which is why this is an explicit
list rather than `is_global` alone (anything `is_global` refuses is refused as well).

A special-purpose address is reached only when a network someone trusted with it (a
workspace's IP/CIDR entry for webhooks, the operator's
WARDEN_CONNECTOR_PRIVATE_NETWORKS for connectors) covers its *admission address*: the
IPv4 address it embeds, if any, so `::/0` or `64:ff9b::/96` never admits loopback."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DENIED_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # this network
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved
        "255.255.255.255/32",  # limited broadcast
    )
)
DENIED_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "100::/64",  # discard-only
        "2001::/32",  # Teredo: the client's address is obfuscated inside
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique-local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
# IPv6 ranges that carry an IPv4 address: special-purpose when the embedded one is.
NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def parse_address(text: str) -> IPAddress | None:
    """An IP address from a URL host or a resolver answer ([brackets] and a %zone
    dropped), IPv4-mapped IPv6 as the IPv4 address; None when it is not one."""
    try:
        ip = ipaddress.ip_address(str(text).split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in V4_COMPATIBLE or any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in SIX_TO_FOUR:
        return ip.sixtofour
    return None


def is_special_purpose(ip: IPAddress) -> bool:
    """True for an address in the lists above, IPv4 embedded in IPv6 included, and for
    anything else `ipaddress` does not call global."""
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in DENIED_V6):
            return True
        embedded = embedded_v4(ip)
        if embedded is not None:
            return is_special_purpose(embedded)
    elif any(ip in net for net in DENIED_V4):
        return True
    return not ip.is_global


def admission_address(ip: IPAddress) -> IPAddress:
    """What a trusted network must cover to admit `ip`: the IPv4 address it embeds, if
    any (as for IPv4-mapped addresses), else `ip` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        return embedded_v4(ip) or ip
    return ip


def covered(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def address_allowed(ip: IPAddress, trusted: Iterable[IPNetwork] = ()) -> bool:
    """May Warden connect to `ip`: public, or its admission address inside a network
    the caller trusts with special-purpose addresses."""
    return not is_special_purpose(ip) or covered(admission_address(ip), trusted)


# --- destinations ---------------------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# What a refusal of a special-purpose address tells the person, per kind of caller.
ALLOWLIST_HINT = "allowlist that address explicitly (IP or CIDR) to reach it."
OPERATOR_HINT = "only the operator can admit it (WARDEN_CONNECTOR_PRIVATE_NETWORKS)."


class DestinationRefused(Exception):
    """The URL is not allowed for this workspace. The message is safe to show."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


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
        ip = parse_address(host)
        if ip is not None:
            return self.admits_address(ip)
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def admits_address(self, ip: IPAddress) -> bool:
        return covered(ip, self.networks)


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


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the host resolves to (tests replace this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def http_allowed() -> bool:
    return bool(settings.DEBUG or settings.WARDEN_WEBHOOK_ALLOW_HTTP)


def check_destination(
    url: str,
    allowlist_entries: Iterable[str],
    *,
    resolve: bool = True,
    trusted: Iterable[IPNetwork] | None = None,
    hint: str = ALLOWLIST_HINT,
) -> Target:
    """The checked target, or DestinationRefused with a message safe to show a human.

    `trusted`: the networks that admit special-purpose addresses; None for the
    allowlist's own IP/CIDR entries (webhooks, exports). With `resolve=False` (saving a
    URL) a host name is not resolved; an IP literal is still checked when `trusted` is
    given (connectors)."""
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
    literal = parse_address(host)
    if not resolve and (literal is None or trusted is None):
        return Target(scheme, host, port, path, ())
    networks = allowlist.networks if trusted is None else tuple(trusted)
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
        ip = parse_address(address)
        if ip is None:
            raise DestinationRefused(f"The host {host!r} resolves to an invalid address.")
        if not address_allowed(ip, networks):
            raise DestinationRefused(
                f"The host {host!r} resolves to a private or reserved address ({ip}); {hint}"
            )
    return Target(scheme, host, port, path, tuple(map(str, addresses)))
