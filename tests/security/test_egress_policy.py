"""One outbound address policy (common.egress) for webhooks, exports and connectors
(issue 22.7): special-purpose addresses, and every IPv6 form that reaches an internal
IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, local-use NAT64, 6to4, Teredo), are
refused on the webhook path and on the connector path alike, whether the URL names
the address or a host resolving to it."""

import ipaddress

import pytest

from approvals.guard import operator_seeding
from common import egress
from common.errors import WardenError
from gateway import outbound
from gateway.services import connector_create
from notifications.services import endpoint_create
from tests.gateway.conftest import SYSTEM

pytestmark = pytest.mark.django_db

INTERNAL_V4 = {
    "loopback": "127.0.0.1",
    "private-10": "10.1.2.3",
    "private-172": "172.16.5.4",
    "private-192": "192.168.1.1",
    "link-local": "169.254.10.20",
    "metadata": "169.254.169.254",
    "cgnat": "100.64.0.1",
    "this-network": "0.0.0.1",
    "multicast": "224.0.0.251",
    "reserved": "240.0.0.1",
    "broadcast": "255.255.255.255",
    "documentation": "192.0.2.1",
    "benchmarking": "198.18.0.1",
}


def _embeddings(v4: str) -> dict[str, str]:
    n = int(ipaddress.IPv4Address(v4))
    high, low = n >> 16, n & 0xFFFF
    return {
        "mapped": f"::ffff:{v4}",
        "compatible": str(ipaddress.IPv6Address(n)),  # ::a.b.c.d
        "nat64": f"64:ff9b::{high:x}:{low:x}",
        "nat64-local": f"64:ff9b:1::{high:x}:{low:x}",
        "6to4": f"2002:{high:x}:{low:x}::1",
    }


EMBEDDED = {
    f"{name}-{form}": v6 for name, v4 in INTERNAL_V4.items() for form, v6 in _embeddings(v4).items()
}
FORMS = {**INTERNAL_V4, **EMBEDDED}
FORMS.update(
    {
        "v6-loopback": "::1",
        "v6-unspecified": "::",
        "v6-link-local": "fe80::1",
        "v6-unique-local": "fd12:3456::1",
        "v6-multicast": "ff02::1",
        "v6-documentation": "2001:db8::1",
        "teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "teredo-of-loopback": "2001:0:7f00:1::1",
    }
)
PUBLIC = {"v4": "93.184.216.34", "nat64": "64:ff9b::5db8:d822", "6to4": "2002:5db8:d822::1"}


def _url(address: str) -> str:
    return f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"


@pytest.fixture
def dns(monkeypatch):
    table = {}
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: table[host])
    return table


@pytest.fixture
def workspace(make_workspace, allow_hosts, settings):
    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = []
    return make_workspace()


def _webhook(workspace, url):
    with operator_seeding():
        return endpoint_create(
            reason="test set-up",
            workspace=workspace,
            name="hook",
            url=url,
            events=["confirmation.requested"],
            actor=SYSTEM,
        )


def _connector(workspace, url):
    with operator_seeding():
        return connector_create(
            reason="test set-up", workspace=workspace, actor=SYSTEM, name="crm", url=url
        )


@pytest.mark.parametrize("address", FORMS.values(), ids=FORMS.keys())
def test_a_special_purpose_address_is_refused_by_name_on_both_paths(
    workspace, allow_hosts, dns, address
):
    allow_hosts(workspace, ["hooks.example.com"])
    dns["hooks.example.com"] = [address]
    with pytest.raises(WardenError, match="private or reserved"):
        _webhook(workspace, "https://hooks.example.com/hook")
    with pytest.raises(outbound.DestinationRefused, match="private or reserved"):
        outbound.check_url("https://hooks.example.com/mcp", workspace)  # every sync and call


@pytest.mark.parametrize("address", FORMS.values(), ids=FORMS.keys())
def test_a_special_purpose_literal_is_refused_for_a_connector_even_when_allowlisted(
    workspace, allow_hosts, address
):
    """A workspace entry admits a host, never a special-purpose address: for
    connectors only the operator's private networks can."""
    mapped = ipaddress.ip_address(address)
    mapped = getattr(mapped, "ipv4_mapped", None)  # an IPv4-mapped host is its IPv4
    allow_hosts(workspace, [address, *([str(mapped)] if mapped else [])])
    with pytest.raises(WardenError, match="private or reserved"):
        _connector(workspace, _url(address))


@pytest.mark.parametrize("address", EMBEDDED.values(), ids=EMBEDDED.keys())
def test_an_ipv6_literal_allowlisted_for_webhooks_does_not_admit_the_ipv4_it_embeds(
    workspace, allow_hosts, address
):
    """Webhooks reach a special-purpose address the workspace lists by IP or CIDR;
    for an IPv6 form of an IPv4 address, the entry must cover the IPv4 address."""
    allow_hosts(workspace, [address])
    with pytest.raises(WardenError, match=r"private or reserved|allowlist"):
        _webhook(workspace, _url(address))


@pytest.mark.parametrize("address", PUBLIC.values(), ids=PUBLIC.keys())
def test_a_public_address_and_its_ipv6_forms_are_reached_on_both_paths(
    workspace, allow_hosts, dns, address
):
    allow_hosts(workspace, ["hooks.example.com", address])
    dns["hooks.example.com"] = [address]
    assert _webhook(workspace, "https://hooks.example.com/hook").endpoint.pk
    assert outbound.check_url("https://hooks.example.com/mcp", workspace).addresses == (address,)
    assert _connector(workspace, _url(address)).pk


@pytest.mark.parametrize("form", ["mapped", "compatible", "nat64", "nat64-local", "6to4"])
def test_the_operator_admits_an_embedded_address_by_its_ipv4_network(
    workspace, allow_hosts, settings, form
):
    address = _embeddings("10.1.2.3")[form]
    allow_hosts(workspace, [address, "10.1.2.3"])
    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = ["::/0"]  # an IPv6 wildcard admits none
    with pytest.raises(WardenError):
        _connector(workspace, _url(address))
    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = ["10.0.0.0/8"]
    assert _connector(workspace, _url(address)).pk
