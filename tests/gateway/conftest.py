"""Gateway fixtures: a local fake upstream, the operator settings that let tests reach
it on loopback, and connectors created through the services."""

import pytest

from approvals.catalog import tool_update
from approvals.guard import operator_seeding
from approvals.models import Tool
from common.actor import Actor
from gateway.services import connector_create, connector_sync
from tenants.models import Role
from tests.gateway.upstream import FakeUpstream

SYSTEM = Actor.system("tests")
SECRET = "Bearer sk-live-THIS-MUST-NEVER-LEAK-0123456789"


def seeded_tool_update(**kwargs):
    """Test set-up: enabling or loosening a tool is a governed operation; seeding it here
    stands for a human having approved it through the door."""
    kwargs.setdefault("reason", "test set-up")
    with operator_seeding():
        return tool_update(**kwargs)


@pytest.fixture
def upstream():
    running = FakeUpstream().start()
    yield running
    running.stop()


@pytest.fixture
def loopback_admitted(settings):
    """The operator admits loopback upstreams (and plain http, for the test server)."""
    settings.WARDEN_WEBHOOK_ALLOW_HTTP = True
    settings.WARDEN_CONNECTOR_PRIVATE_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def gw_workspace(make_workspace, allow_hosts, loopback_admitted):
    """Live, writes on, outbound allowed; the loopback upstream is allowlisted."""
    workspace = make_workspace(writes_enabled=True, mode="live", outbound_allowed=True)
    allow_hosts(workspace)
    return workspace


@pytest.fixture
def gw_admin(gw_workspace, make_member):
    return make_member(gw_workspace, Role.ADMIN)


@pytest.fixture
def make_connector(upstream):
    def make(workspace, name="crm", url=None, headers=None, **fields):
        # Adding a connector is governed: seeding it stands for an approved request.
        with operator_seeding():
            return connector_create(
                workspace=workspace,
                actor=SYSTEM,
                name=name,
                url=url or upstream.url,
                headers={"Authorization": SECRET} if headers is None else headers,
                reason=fields.pop("reason", "test set-up"),
                **fields,
            )

    return make


@pytest.fixture
def synced(gw_workspace, make_connector):
    """A synced connector whose tools are enabled: lookup (no confirmation, read level)
    and send (always confirmed)."""
    connector = make_connector(gw_workspace)
    connector_sync(connector=connector, actor=SYSTEM)
    for tool in Tool.objects.filter(connector=connector):
        changes = {"enabled": True}
        if tool.name == "crm.lookup":
            changes.update(level="read", confirmation="never")
        seeded_tool_update(reason="test set-up", tool=tool, actor=SYSTEM, changes=changes)
    return connector


@pytest.fixture
def gw_agent(gw_workspace, make_key, key_client):
    key, plaintext = make_key(
        gw_workspace, scopes=["actions:read", "actions:write", "actions:external"]
    )
    return key, key_client(plaintext), plaintext
