"""Where Warden may connect: https, allowlisted hosts, public addresses only unless an
IP/CIDR is explicitly allowlisted (SSRF protection)."""

import pytest

from common import egress
from common.egress import DestinationRefused, check_destination


@pytest.fixture
def dns(monkeypatch):
    """Fake DNS: host -> addresses."""
    table = {}
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: table[host])
    return table


def test_empty_allowlist_denies_everything(dns):
    dns["hooks.example.com"] = ["93.184.216.34"]
    with pytest.raises(DestinationRefused, match="allowlist"):
        check_destination("https://hooks.example.com/x", [])


def test_exact_host_is_allowed(dns):
    dns["hooks.example.com"] = ["93.184.216.34"]
    target = check_destination("https://hooks.example.com/in?a=1", ["hooks.example.com"])
    assert (target.host, target.port, target.path) == ("hooks.example.com", 443, "/in?a=1")
    assert target.addresses == ("93.184.216.34",)


def test_wildcard_matches_subdomains_only(dns):
    dns["a.example.com"] = ["93.184.216.34"]
    dns["example.com"] = ["93.184.216.34"]
    dns["evil-example.com"] = ["93.184.216.34"]
    assert check_destination("https://a.example.com/", ["*.example.com"])
    for url in ("https://example.com/", "https://evil-example.com/"):
        with pytest.raises(DestinationRefused):
            check_destination(url, ["*.example.com"])


def test_plain_http_is_refused_without_the_test_switch(dns, settings):
    settings.DEBUG = False
    settings.WARDEN_WEBHOOK_ALLOW_HTTP = False
    dns["hooks.example.com"] = ["93.184.216.34"]
    with pytest.raises(DestinationRefused, match="https"):
        check_destination("http://hooks.example.com/", ["hooks.example.com"])
    settings.WARDEN_WEBHOOK_ALLOW_HTTP = True
    assert check_destination("http://hooks.example.com/", ["hooks.example.com"]).port == 80


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", ""])
def test_other_schemes_are_refused(scheme):
    with pytest.raises(DestinationRefused):
        check_destination(f"{scheme}://hooks.example.com/", ["hooks.example.com"])


def test_credentials_in_the_url_are_refused(dns):
    dns["hooks.example.com"] = ["93.184.216.34"]
    with pytest.raises(DestinationRefused, match="credentials"):
        check_destination("https://user:pw@hooks.example.com/", ["hooks.example.com"])


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.5", "169.254.169.254", "::1", "fd00::1", "0.0.0.0"],
)
def test_allowlisted_name_resolving_to_internal_address_is_refused(dns, address):
    dns["hooks.example.com"] = [address]
    with pytest.raises(DestinationRefused, match="private or reserved"):
        check_destination("https://hooks.example.com/", ["hooks.example.com"])


def test_one_internal_address_among_public_ones_is_refused(dns):
    dns["hooks.example.com"] = ["93.184.216.34", "10.0.0.8"]
    with pytest.raises(DestinationRefused):
        check_destination("https://hooks.example.com/", ["hooks.example.com"])


def test_internal_address_needs_an_explicit_ip_or_cidr_entry(dns):
    dns["hooks.internal"] = ["10.0.0.8"]
    assert check_destination("https://hooks.internal/", ["hooks.internal", "10.0.0.0/24"])
    with pytest.raises(DestinationRefused):
        check_destination("https://hooks.internal/", ["hooks.internal", "10.0.1.0/24"])


def test_ip_literal_needs_an_ip_entry():
    with pytest.raises(DestinationRefused, match="allowlist"):
        check_destination("https://127.0.0.1:8443/", ["localhost", "*.example.com"])
    assert check_destination("https://127.0.0.1:8443/", ["127.0.0.1"]).addresses == ("127.0.0.1",)


def test_ipv4_mapped_ipv6_literal_is_treated_as_ipv4():
    with pytest.raises(DestinationRefused):
        check_destination("https://[::ffff:127.0.0.1]/", ["::1"])
    assert check_destination("https://[::ffff:127.0.0.1]/", ["127.0.0.1"])


def test_unresolvable_host_is_refused(monkeypatch):
    def fail(host, port):
        raise OSError("no such host")

    monkeypatch.setattr(egress, "resolve_host", fail)
    with pytest.raises(DestinationRefused, match="resolve"):
        check_destination("https://nowhere.example.com/", ["nowhere.example.com"])


@pytest.mark.parametrize(
    "entry", ["*", "*.", "a/b", "exa mple..com", "*.*.com", "ex ample.com", "-a.com"]
)
def test_bad_allowlist_entries_are_rejected(entry):
    with pytest.raises(ValueError):
        egress.validate_entries([entry])


def test_allowlist_entries_are_normalized():
    assert egress.validate_entries([" Hooks.Example.COM. ", "10.0.0.0/8", "*.Example.com"]) == [
        "hooks.example.com",
        "10.0.0.0/8",
        "*.example.com",
    ]


# --- special-purpose ranges (issue 15.4): an explicit deny list, not is_global alone ---


@pytest.mark.parametrize(
    "address",
    [
        "::7f00:1",  # IPv4-compatible 127.0.0.1 (ipaddress calls it global)
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1 (global to ipaddress)
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:7f00:1::",  # 6to4 of 127.0.0.1 (global to ipaddress)
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::ffff:127.0.0.1",
        "::ffff:a9fe:a9fe",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "2001:db8::1",
        "fe80::1",
        "fd12:3456::1",
        "ff02::1",
        "::",
        "100.64.0.1",
        "192.0.0.8",
        "192.0.2.1",
        "192.88.99.1",
        "198.18.0.1",
        "198.51.100.1",
        "203.0.113.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
    ],
)
def test_name_resolving_to_a_special_purpose_address_is_refused(dns, address):
    dns["hooks.example.com"] = [address]
    with pytest.raises(DestinationRefused, match="private or reserved"):
        check_destination("https://hooks.example.com/", ["hooks.example.com"])


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::1",
    ],
)
def test_public_addresses_and_their_translations_are_allowed(dns, address):
    dns["hooks.example.com"] = [address]
    assert check_destination("https://hooks.example.com/", ["hooks.example.com"])


@pytest.mark.parametrize(
    ("url", "entry"),
    [
        ("https://[::1]/", "*.example.com"),
        ("https://[::7f00:1]/", "::/0"),
        ("https://[64:ff9b::7f00:1]/", "64:ff9b::/32"),
        ("https://[2002:7f00:1::]/", "2002::/16"),
        ("https://[::ffff:127.0.0.1]/", "::/0"),
    ],
)
def test_loopback_literals_in_disguise_are_refused(url, entry):
    with pytest.raises(DestinationRefused):
        check_destination(url, [entry, "hooks.example.com"])


def test_an_explicit_ip_entry_still_admits_a_special_address(dns):
    dns["hooks.internal"] = ["fd12::8"]
    assert check_destination("https://hooks.internal/", ["hooks.internal", "fd12::/16"])


def test_embedded_ipv4_is_admitted_only_by_an_entry_for_that_ipv4(dns):
    """As for IPv4-mapped addresses: 64:ff9b::a00:8 is 10.0.0.8 behind NAT64."""
    dns["hooks.internal"] = ["64:ff9b::a00:8"]
    with pytest.raises(DestinationRefused):
        check_destination("https://hooks.internal/", ["hooks.internal", "64:ff9b::/96"])
    target = check_destination("https://hooks.internal/", ["hooks.internal", "10.0.0.8"])
    assert target.addresses == ("64:ff9b::a00:8",)


@pytest.mark.parametrize("host", ["0x7f000001", "2130706433", "0177.0.0.1", "localhost"])
def test_odd_spellings_of_loopback_resolve_and_are_refused(host):
    """Real resolver: inet_aton spellings and localhost all end at 127.0.0.1 / ::1."""
    with pytest.raises(DestinationRefused):
        check_destination(f"https://{host}/", [host])
