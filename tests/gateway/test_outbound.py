"""SSRF probes: connector hosts must be allowlisted, and non-public addresses are
refused unless the operator admits them (WARDEN_CONNECTOR_PRIVATE_NETWORKS)."""

import pytest

from common import egress
from gateway import outbound
from gateway.services import connector_sync
from tests.gateway.conftest import SYSTEM

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws(make_workspace, allow_hosts, settings):
    settings.WARDEN_WEBHOOK_ALLOW_HTTP = True
    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = []
    workspace = make_workspace()
    allow_hosts(
        workspace,
        ["127.0.0.1", "::1", "0x7f000001", "sneaky.example.com", "api.example.com", "10.0.0.0/8"],
    )
    return workspace


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/mcp",
        "http://0x7f000001/mcp",
        "http://[::1]/mcp",
        "http://[::ffff:127.0.0.1]/mcp",
        "http://10.1.2.3/mcp",  # a workspace CIDR entry never admits a private address
        "http://169.254.169.254/latest/meta-data",
        "http://not-on-the-list.example.com/mcp",
    ],
)
def test_probes_are_refused(ws, url):
    with pytest.raises(outbound.DestinationRefused):
        outbound.check_url(url, ws)


def test_name_resolving_to_loopback_is_refused(ws, monkeypatch):
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: ["127.0.0.1"])
    with pytest.raises(outbound.DestinationRefused, match="private or reserved"):
        outbound.check_url("https://sneaky.example.com/mcp", ws)


def test_public_name_is_pinned_to_its_checked_address(ws, monkeypatch):
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: ["93.184.215.14"])
    target = outbound.check_url("https://api.example.com/mcp", ws)
    assert target.addresses == ("93.184.215.14",) and target.host == "api.example.com"


def test_operator_setting_admits_a_private_network(ws, settings, monkeypatch):
    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    assert outbound.check_url("http://127.0.0.1:8080/mcp", ws).addresses == ("127.0.0.1",)
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: ["127.0.0.1"])
    assert outbound.check_url("http://sneaky.example.com/mcp", ws).addresses == ("127.0.0.1",)
    with pytest.raises(outbound.DestinationRefused):
        outbound.check_url("http://[::1]/mcp", ws)  # only what the operator listed


def test_operator_setting_does_not_bypass_the_workspace_allowlist(ws, settings):
    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    with pytest.raises(outbound.DestinationRefused, match="allowlist"):
        outbound.check_url("http://127.0.0.2/mcp", ws)


def test_https_required_without_the_test_switch(ws, settings):
    settings.WARDEN_WEBHOOK_ALLOW_HTTP = False
    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    with pytest.raises(outbound.DestinationRefused, match="https"):
        outbound.check_url("http://127.0.0.1/mcp", ws)


def test_redirect_to_loopback_is_not_followed(gw_workspace, make_connector, upstream, api_error):
    from tests.gateway.upstream import FakeUpstream

    target = FakeUpstream().start()
    try:
        upstream.redirect_to = f"http://127.0.0.1:{target.port}/mcp"
        connector = make_connector(gw_workspace)
        from common.errors import WardenError

        with pytest.raises(WardenError) as refused:
            connector_sync(connector=connector, actor=SYSTEM)
        assert refused.value.code == "upstream_error"
        assert "redirect" in refused.value.message
        assert target.headers_seen == []
    finally:
        target.stop()


def test_response_size_is_capped(gw_workspace, make_connector, upstream, settings):
    from common.errors import WardenError

    settings.WARDEN_CONNECTOR_MAX_RESPONSE_BYTES = 200
    upstream.tools = [{"name": f"tool_{i}", "inputSchema": {"type": "object"}} for i in range(50)]
    with pytest.raises(WardenError, match="larger than 200 bytes"):
        connector_sync(connector=make_connector(gw_workspace), actor=SYSTEM)


def test_connector_url_checked_when_saved(make_workspace, allow_hosts, settings, api_error):
    from common.errors import WardenError
    from gateway.services import connector_create

    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = []
    workspace = make_workspace()
    allow_hosts(workspace, ["127.0.0.1"])
    with pytest.raises(WardenError) as refused:
        connector_create(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            name="x",
            url="https://127.0.0.1/mcp",
        )
    assert refused.value.detail["url"]
