"""Where Warden may connect: https, allowlisted hosts, public addresses only unless an
IP/CIDR is explicitly allowlisted (SSRF protection)."""

import pytest

from notifications import transport
from notifications.transport import DestinationRefused, check_destination


@pytest.fixture
def dns(monkeypatch):
    """Fake DNS: host -> addresses."""
    table = {}
    monkeypatch.setattr(transport, "resolve_host", lambda host, port: table[host])
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

    monkeypatch.setattr(transport, "resolve_host", fail)
    with pytest.raises(DestinationRefused, match="resolve"):
        check_destination("https://nowhere.example.com/", ["nowhere.example.com"])


@pytest.mark.parametrize(
    "entry", ["*", "*.", "a/b", "exa mple..com", "*.*.com", "ex ample.com", "-a.com"]
)
def test_bad_allowlist_entries_are_rejected(entry):
    with pytest.raises(ValueError):
        transport.validate_entries([entry])


def test_allowlist_entries_are_normalized():
    assert transport.validate_entries([" Hooks.Example.COM. ", "10.0.0.0/8", "*.Example.com"]) == [
        "hooks.example.com",
        "10.0.0.0/8",
        "*.example.com",
    ]
