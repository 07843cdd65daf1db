"""Background work in the admin: endpoints through the services with the secret shown
once, the host allowlist reserved to operators, tenants kept apart."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from approvals.models import ActionRequest
from audit.models import AuditEntry
from notifications.models import WebhookEndpoint, WorkspaceAutomationSettings
from notifications.services import automation_settings_update
from tenants.models import Membership, Role
from tests.notifications.conftest import SYSTEM

ADD_URL = "/admin/notifications/webhookendpoint/add/"
LIST_URL = "/admin/notifications/webhookendpoint/"


@pytest.fixture
def owner_client(live_workspace):
    owner = live_workspace.memberships.get(role=Role.OWNER).user
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def operator_client(db):
    user = get_user_model().objects.create_superuser("ops@example.test", "ops@example.test", "pw")
    client = Client()
    client.force_login(user)
    return client


def add_endpoint(client, workspace, url):
    return client.post(
        ADD_URL,
        {
            "reason": "test change",
            "workspace": str(workspace.pk),
            "name": "ops-hooks",
            "url": url,
            "events": ["confirmation.requested"],
        },
    )


def _approve_pending(workspace, by=None):
    request = ActionRequest.objects.get(workspace=workspace, status="pending")
    approver = APIClient()
    approver.force_login(by or Membership.objects.get(workspace=workspace, role=Role.OWNER).user)
    approved = approver.post(
        f"/api/v1/approvals/{request.confirmation.pk}/approve",
        {"reason": "reviewed"},
        format="json",
        HTTP_X_WARDEN_WORKSPACE=workspace.slug,
    )
    assert approved.status_code == 200, approved.json()
    return request


def test_owner_adds_an_endpoint_and_sees_its_secret_once(
    live_workspace, owner_client, allow_hosts, allow_http, receiver
):
    allow_hosts(live_workspace)
    response = add_endpoint(owner_client, live_workspace, receiver.url)
    assert response.status_code == 200, response.content[:500]
    endpoint = WebhookEndpoint.objects.get(workspace=live_workspace)
    body = response.content.decode()
    assert endpoint.secret in body
    assert "no-store" in response["Cache-Control"]
    assert AuditEntry.objects.filter(workspace=live_workspace, action="webhook.changed").exists()
    # A new endpoint sends notifications somewhere new: it is created switched off and
    # switching it on waits for a second person, the owner's own approval refused.
    assert endpoint.enabled is False
    request = ActionRequest.objects.get(workspace=live_workspace, status="pending")
    assert request.params["changes"]["enabled"] == {"before": False, "after": True}
    for page in (LIST_URL, f"{LIST_URL}{endpoint.pk}/change/"):
        shown = owner_client.get(page)
        assert shown.status_code == 200
        assert endpoint.secret not in shown.content.decode()


def test_endpoint_outside_the_allowlist_is_refused_in_the_admin(
    live_workspace, owner_client, allow_http
):
    response = add_endpoint(owner_client, live_workspace, "https://hooks.example.com/in")
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    messages = [str(m) for m in owner_client.get(ADD_URL).context["messages"]]
    assert any("allowlist" in m for m in messages)


def test_owner_cannot_widen_the_host_allowlist(live_workspace, owner_client):
    automation_settings_update(
        reason="test set-up",
        workspace=live_workspace,
        actor=SYSTEM,
        changes={"email_notifications": True},
    )
    url = f"/admin/notifications/workspaceautomationsettings/{live_workspace.pk}/change/"
    page = owner_client.get(url)
    assert page.status_code == 200
    assert 'name="webhook_host_allowlist"' not in page.content.decode()
    owner_client.post(
        url,
        {
            "reason": "test change",
            "anomaly_auto_suspend": "on",
            "email_notifications": "on",
            "webhook_host_allowlist": "10.0.0.0/8",
        },
    )
    saved = WorkspaceAutomationSettings.objects.get(workspace=live_workspace)
    assert saved.anomaly_auto_suspend is True
    assert saved.webhook_host_allowlist == []


def test_operator_sets_the_host_allowlist(live_workspace, operator_client):
    response = operator_client.post(
        "/admin/notifications/workspaceautomationsettings/add/",
        {
            "reason": "test change",
            "workspace": str(live_workspace.pk),
            "email_notifications": "on",
            "webhook_host_allowlist": "hooks.example.com\n*.acme.test\n10.0.0.0/8",
        },
    )
    assert response.status_code == 302
    # Widening where Warden may connect is governed: filed for the workspace's owner.
    request = ActionRequest.objects.get(workspace=live_workspace, status="pending")
    assert request.tool_name == "warden.workspace.widen_outbound_hosts"
    owner = Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user
    approver = APIClient()
    approver.force_login(owner)
    approved = approver.post(
        f"/api/v1/approvals/{request.confirmation.pk}/approve",
        {"reason": "our hooks"},
        format="json",
        HTTP_X_WARDEN_WORKSPACE=live_workspace.slug,
    )
    assert approved.status_code == 200, approved.json()
    saved = WorkspaceAutomationSettings.objects.get(workspace=live_workspace)
    assert saved.webhook_host_allowlist == ["hooks.example.com", "*.acme.test", "10.0.0.0/8"]


def test_other_workspaces_endpoints_are_invisible(
    live_workspace, make_workspace, owner_client, make_endpoint
):
    other = make_endpoint(make_workspace(), name="theirs")
    listing = owner_client.get(LIST_URL).content.decode()
    assert "theirs" not in listing
    assert owner_client.get(f"{LIST_URL}{other.pk}/change/").status_code in (302, 404)


def test_operator_points_the_export_at_a_directory_and_owner_keeps_it(
    live_workspace, operator_client, owner_client, tmp_path, settings
):
    settings.WARDEN_EXPORT_DIRECTORY_ROOTS = [str(tmp_path)]
    response = operator_client.post(
        "/admin/oversight/auditexportdestination/add/",
        {
            "reason": "test change",
            "workspace": str(live_workspace.pk),
            "kind": "directory",
            "directory": str(tmp_path / "acme"),
            "enabled": "on",
            "batch_size": "100",
        },
    )
    assert response.status_code == 302
    # Sending the evidence somewhere new is governed: created switched off, switching it
    # on waits for a second person (here the owner approves the operator's request).
    assert live_workspace.audit_export.enabled is False
    _approve_pending(live_workspace)
    url = f"/admin/oversight/auditexportdestination/{live_workspace.pk}/change/"
    page = owner_client.get(url).content.decode()
    assert 'name="directory"' not in page
    response = owner_client.post(
        url, {"reason": "test change", "kind": "directory", "batch_size": "50", "enabled": "on"}
    )
    assert response.status_code == 302
    destination = live_workspace.audit_export
    destination.refresh_from_db()
    assert destination.directory == str(tmp_path / "acme")
    assert destination.batch_size == 50 and destination.enabled is True
    # Switching the only export off is governed: filed for a second person, not applied.
    response = owner_client.post(
        url, {"reason": "test change", "kind": "directory", "batch_size": "50"}, follow=True
    )
    assert "needs another person" in response.content.decode()
    destination.refresh_from_db()
    assert destination.enabled is True


def test_owner_configures_a_webhook_export_and_sees_its_secret_once(
    live_workspace, owner_client, allow_hosts, allow_http, receiver
):
    allow_hosts(live_workspace)
    response = owner_client.post(
        "/admin/oversight/auditexportdestination/add/",
        {
            "reason": "test change",
            "workspace": str(live_workspace.pk),
            "kind": "webhook",
            "url": receiver.url,
            "enabled": "on",
            "batch_size": "500",
        },
    )
    assert response.status_code == 200
    secret = live_workspace.audit_export.secret
    assert secret and secret in response.content.decode()
    url = f"/admin/oversight/auditexportdestination/{live_workspace.pk}/change/"
    assert secret not in owner_client.get(url).content.decode()
