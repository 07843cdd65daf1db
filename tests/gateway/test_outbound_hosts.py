"""`outbound_hosts` on /api/v1/workspace: the one allowlist webhooks, exports and
connectors use. Removing hosts applies at once; adding one waits for a second owner."""

import pytest

from approvals.models import ActionRequest
from audit.models import AuditEntry
from common.errors import WardenError
from gateway.outbound import outbound_hosts
from gateway.services import connector_sync
from tenants.models import Role
from tests.gateway.conftest import SYSTEM

pytestmark = pytest.mark.django_db
URL = "/api/v1/workspace"


@pytest.fixture
def owner(gw_workspace):
    return gw_workspace.memberships.get(role=Role.OWNER).user


@pytest.fixture
def owner_client(gw_workspace, owner, user_client):
    return user_client(owner, gw_workspace)


def test_get_shows_the_allowlist(owner_client, gw_workspace, make_key, key_client):
    assert owner_client.get(URL).json()["outbound_hosts"] == ["127.0.0.1"]
    _, plaintext = make_key(gw_workspace, scopes=["workspace:admin"])
    assert key_client(plaintext).get(URL).json()["outbound_hosts"] == ["127.0.0.1"]


def test_removing_hosts_applies_at_once(owner_client, gw_workspace, allow_hosts):
    allow_hosts(gw_workspace, ["127.0.0.1", "hooks.example.com"])
    response = owner_client.patch(
        URL, {"reason": "test change", "outbound_hosts": ["127.0.0.1"]}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["outbound_hosts"] == ["127.0.0.1"]
    assert outbound_hosts(gw_workspace) == ["127.0.0.1"]
    assert not ActionRequest.objects.exists()
    entry = AuditEntry.objects.filter(target_type="automation_settings").latest("created_at")
    assert entry.action == "workspace.settings_changed"


def test_adding_a_host_waits_for_a_second_owner(
    owner_client, owner, gw_workspace, make_member, approve, api_error
):
    body = {"reason": "test change", "outbound_hosts": ["127.0.0.1", "crm.example.com"]}
    first = owner_client.patch(URL, body, format="json")
    assert first.status_code == 202, first.json()
    assert first.json()["governed_operations"] == ["warden.workspace.widen_outbound_hosts"]
    assert outbound_hosts(gw_workspace) == ["127.0.0.1"]
    confirmation = ActionRequest.objects.get(pk=first.json()["id"]).confirmation
    api_error(approve(owner, gw_workspace, confirmation.pk), 403, "four_eyes")
    # An admin lacks manage_workspace: only an owner may widen where Warden reaches.
    admin = make_member(gw_workspace, Role.ADMIN)
    api_error(approve(admin, gw_workspace, confirmation.pk), 403, "forbidden_by_scope")
    assert outbound_hosts(gw_workspace) == ["127.0.0.1"]
    second = make_member(gw_workspace, Role.OWNER)
    assert approve(second, gw_workspace, confirmation.pk).status_code == 200
    assert outbound_hosts(gw_workspace) == ["127.0.0.1", "crm.example.com"]
    recall = owner_client.patch(
        URL,
        {**body, "confirmed": True, "confirmation_token": first.json()["confirmation_token"]},
        format="json",
    )
    assert recall.status_code == 200, recall.json()
    assert recall.json()["outbound_hosts"] == ["127.0.0.1", "crm.example.com"]


def test_an_admin_key_can_only_propose(gw_workspace, make_key, key_client):
    _, plaintext = make_key(gw_workspace, scopes=["workspace:admin"])
    response = key_client(plaintext).patch(
        URL, {"reason": "test change", "outbound_hosts": ["*.example.com"]}, format="json"
    )
    assert response.status_code == 202
    assert outbound_hosts(gw_workspace) == ["127.0.0.1"]


@pytest.mark.parametrize(
    "body",
    [
        {"outbound_hosts": ["not a host!"]},
        {"outbound_hosts": "127.0.0.1"},
        {"outbound_hosts": ["127.0.0.1"], "name": "renamed"},
    ],
)
def test_bad_input(owner_client, gw_workspace, api_error, body):
    result = api_error(owner_client.patch(URL, body, format="json"), 400, "validation_error")
    assert "outbound_hosts" in result["error"]["detail"]
    assert outbound_hosts(gw_workspace) == ["127.0.0.1"]
    assert gw_workspace.name != "renamed"


def test_wrong_scope_and_other_workspace(
    gw_workspace, other_workspace, make_key, key_client, make_member, user_client, api_error
):
    _, weak = make_key(gw_workspace, scopes=["connectors:write"])
    api_error(
        key_client(weak).patch(URL, {"reason": "test change", "outbound_hosts": []}, format="json"),
        403,
        "forbidden_by_scope",
    )
    admin = make_member(gw_workspace, Role.ADMIN)
    api_error(
        user_client(admin, gw_workspace).patch(
            URL, {"reason": "test change", "outbound_hosts": []}, format="json"
        ),
        403,
        "forbidden_by_scope",
    )
    _, foreign = make_key(other_workspace, scopes=["workspace:admin"])
    client = key_client(foreign)
    assert client.get(URL).json()["outbound_hosts"] == []
    assert (
        client.patch(
            URL, {"reason": "test change", "outbound_hosts": []}, format="json"
        ).status_code
        == 200
    )
    assert outbound_hosts(gw_workspace) == ["127.0.0.1"]


def test_connectors_use_the_same_list(owner_client, gw_workspace, make_connector, api_error):
    connector = make_connector(gw_workspace)
    assert (
        owner_client.patch(
            URL, {"reason": "test change", "outbound_hosts": []}, format="json"
        ).status_code
        == 200
    )
    with pytest.raises(WardenError) as refused:
        connector_sync(connector=connector, actor=SYSTEM)
    assert refused.value.code == "upstream_error" and "allowlist" in refused.value.message
