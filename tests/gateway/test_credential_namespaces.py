"""Credentials belong to one workspace: a connector's credential reference names a secret
inside its own workspace's namespace (WARDEN_CREDENTIAL_NAMESPACES), refused at proposal
time with `credential_not_allowed` through the API and the admin; the approver sees
which reference a proposal would use (its name, never a value)."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import ActionRequest
from gateway.models import Connector
from tenants.models import Role

pytestmark = pytest.mark.django_db
A_SECRET = "Bearer acme-secret-NEVER-TO-WORKSPACE-B"


@pytest.fixture
def namespaces(gw_workspace, other_workspace, settings, monkeypatch):
    """Workspace A (other_workspace) owns ACME; B (gw_workspace, proposing) owns BETA."""
    settings.WARDEN_CREDENTIAL_NAMESPACES = {
        str(other_workspace.pk): "ACME",
        str(gw_workspace.pk): "BETA",
    }
    monkeypatch.setenv("WARDEN_CRED_ACME_CRM_TOKEN", A_SECRET)
    monkeypatch.setenv("WARDEN_CRED_BETA_CRM_TOKEN", "Bearer beta-own")


@pytest.fixture
def b_admin(gw_workspace, gw_admin, user_client):
    return user_client(gw_admin, gw_workspace)


def _propose(client, upstream, reference):
    body = {
        "reason": "test change",
        "name": "crm",
        "kind": "mcp",
        "url": upstream.url,
        "headers": {"Authorization": reference},
    }
    return client.post("/api/v1/connectors", body, format="json")


def test_api_refuses_another_workspaces_reference(namespaces, b_admin, upstream, api_error):
    body = api_error(
        _propose(b_admin, upstream, "env:WARDEN_CRED_ACME_CRM_TOKEN"),
        400,
        "credential_not_allowed",
    )
    assert "WARDEN_CRED_BETA_" in body["error"]["message"]
    assert A_SECRET not in json.dumps(body)
    assert not ActionRequest.objects.exists() and not Connector.objects.exists()
    assert upstream.headers_seen == []


def test_api_refuses_references_when_no_namespace_is_assigned(
    b_admin, upstream, api_error, settings
):
    settings.WARDEN_CREDENTIAL_NAMESPACES = {}
    api_error(
        _propose(b_admin, upstream, "env:WARDEN_CRED_BETA_CRM_TOKEN"),
        400,
        "credential_not_allowed",
    )


def test_update_refuses_another_workspaces_reference(
    namespaces, b_admin, gw_workspace, make_connector, api_error
):
    connector = make_connector(gw_workspace)
    api_error(
        b_admin.patch(
            f"/api/v1/connectors/{connector.pk}",
            {
                "reason": "test change",
                "headers": {"Authorization": "env:WARDEN_CRED_ACME_CRM_TOKEN"},
            },
            format="json",
        ),
        400,
        "credential_not_allowed",
    )
    assert not ActionRequest.objects.exists()


def test_the_approver_sees_which_reference_is_used(
    namespaces, b_admin, upstream, gw_workspace, make_member, approve
):
    response = _propose(b_admin, upstream, "env:WARDEN_CRED_BETA_CRM_TOKEN")
    assert response.status_code == 202, response.json()
    action = ActionRequest.objects.get(pk=response.json()["id"])
    approver = make_member(gw_workspace, Role.ADMIN)
    client = Client()
    client.force_login(approver)
    page = client.get(
        reverse("admin:approvals_confirmationrequest_review", args=[action.confirmation.pk])
    ).content.decode()
    assert "env:WARDEN_CRED_BETA_CRM_TOKEN" in page
    assert "Bearer beta-own" not in page
    assert approve(approver, gw_workspace, action.confirmation.pk).status_code == 200
    assert Connector.objects.get().header_names == ["Authorization"]


def test_admin_refuses_another_workspaces_reference(namespaces, gw_workspace, upstream):
    owner = Client()
    owner.force_login(gw_workspace.memberships.get(role=Role.OWNER).user)
    response = owner.post(
        "/admin/gateway/connector/add/",
        {
            "reason": "test change",
            "workspace": str(gw_workspace.pk),
            "name": "crm",
            "kind": "mcp",
            "url": upstream.url,
            "headers": json.dumps({"Authorization": "env:WARDEN_CRED_ACME_CRM_TOKEN"}),
            "declared_tools": "[]",
            "enabled": "on",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "outside this workspace" in page and "WARDEN_CRED_BETA_" in page
    assert A_SECRET not in page
    assert not ActionRequest.objects.exists() and not Connector.objects.exists()
