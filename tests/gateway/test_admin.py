"""Connectors in the admin: saved through the door, header values never shown."""

import json

import pytest
from django.test import Client

from approvals.models import ActionRequest
from audit.models import AuditEntry
from gateway.models import Connector
from tenants.models import Role
from tests.gateway.conftest import SECRET

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/gateway/connector/add/"
HEADERS_JSON = json.dumps({"Authorization": SECRET})
LIST_URL = "/admin/gateway/connector/"


@pytest.fixture
def owner(gw_workspace):
    client = Client()
    client.force_login(gw_workspace.memberships.get(role=Role.OWNER).user)
    return client


@pytest.fixture
def add_approved(gw_workspace, make_member, approve):
    """Add through the admin (filed for approval), then a second admin approves it."""
    second = make_member(gw_workspace, Role.ADMIN)

    def add(client, workspace, **fields):
        response = _add(client, workspace, **fields)
        action = ActionRequest.objects.get(status="pending")
        assert action.params["operations"] == ["warden.connector.create"]
        assert approve(second, workspace, action.confirmation.pk).status_code == 200
        return response

    return add


def _add(client, workspace, **fields):
    data = {
        "workspace": str(workspace.pk),
        "name": "crm",
        "kind": "mcp",
        "url": "http://127.0.0.1:9/mcp",
        "headers": HEADERS_JSON,
        "declared_tools": "[]",
        "enabled": "on",
        "reason": "test change",
        **fields,
    }
    return client.post(ADD_URL, data)


def test_add_through_the_door_and_never_show_the_value(owner, gw_workspace, add_approved):
    response = add_approved(owner, gw_workspace)
    assert response.status_code == 302, response.content[:800]
    connector = Connector.objects.get()
    assert connector.header_names == ["Authorization"]
    assert AuditEntry.objects.filter(action="connector.created").exists()
    for page in (LIST_URL, f"{LIST_URL}{connector.pk}/change/"):
        shown = owner.get(page)
        assert shown.status_code == 200
        assert "sk-live" not in shown.content.decode()
    assert "Authorization" in owner.get(f"{LIST_URL}{connector.pk}/change/").content.decode()


def test_refused_save_does_not_echo_the_secret(owner, gw_workspace):
    response = _add(owner, gw_workspace, url="http://not-allowed.example.com/mcp")
    assert not Connector.objects.exists()
    followed = owner.get(response.url) if response.status_code == 302 else response
    assert "sk-live" not in followed.content.decode()
    bad = _add(owner, gw_workspace, name="", headers=HEADERS_JSON)
    assert bad.status_code == 200 and "sk-live" not in bad.content.decode()


def test_change_keeps_headers_when_left_blank(owner, gw_workspace, add_approved):
    add_approved(owner, gw_workspace)
    connector = Connector.objects.get()
    response = owner.post(
        f"{LIST_URL}{connector.pk}/change/",
        {"reason": "test change", "url": connector.url, "headers": "", "declared_tools": "[]"},
    )
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.header_names == ["Authorization"] and connector.enabled is False


def test_other_workspace_admin_cannot_see_it(owner, gw_workspace, other_workspace, add_approved):
    add_approved(owner, gw_workspace)
    connector = Connector.objects.get()
    client = Client()
    client.force_login(other_workspace.memberships.get(role=Role.OWNER).user)
    assert "crm" not in client.get(LIST_URL).content.decode()
    assert client.get(f"{LIST_URL}{connector.pk}/change/").status_code in (302, 403, 404)


def test_the_connector_page_lists_its_tools_and_takes_headers_a_line_each(
    owner, gw_workspace, add_approved
):
    """Issue 23: no list of the connector's tools, 'Declared tools: []' for an MCP
    connector, headers only as a JSON textarea."""
    from approvals.guard import operator_seeding
    from approvals.models import Tool

    add_approved(owner, gw_workspace, headers=f"Authorization: {SECRET}\nX-Team: ops")
    connector = Connector.objects.get()
    assert connector.header_names == ["Authorization", "X-Team"]
    with operator_seeding():  # as an import would: bound to the connector from the start
        tool = Tool.objects.create(
            workspace=gw_workspace,
            name="crm.lookup",
            level="read",
            connector=connector,
            upstream_name="lookup",
        )
    page = owner.get(f"{LIST_URL}{connector.pk}/change/").content.decode()
    assert f'<a href="/admin/approvals/tool/{tool.pk}/change/">crm.lookup</a>' in page
    assert "waits for a human: never" in page
    assert "Declared tools" not in page and 'name="declared_tools"' not in page
    assert "sk-live" not in page


def test_a_header_line_without_a_colon_is_refused_without_echoing_it(owner, gw_workspace):
    response = _add(owner, gw_workspace, headers="Authorization sk-live-123")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Line 1 is not" in html and "sk-live" not in html
    assert not Connector.objects.exists()
