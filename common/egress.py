"""The one outbound address policy: which IP addresses Warden may connect to, for
webhooks, audit exports and connectors alike (issue 22.7).

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
from collections.abc import Iterable

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
