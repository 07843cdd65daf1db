"""Deleting or disabling the only active webhook endpoint is a governed operation: the
admin files it for a second person; with another endpoint active it applies at once."""

import pytest
from django.test import Client

from approvals.models import ActionRequest
from notifications import services
from notifications.models import WebhookEndpoint
from tenants.models import Membership, Role
from tests.notifications.conftest import SYSTEM


@pytest.fixture
def owner_browser(live_workspace):
    owner = Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user
    browser = Client()
    browser.force_login(owner)
    return browser


def delete(browser, endpoint):
    return browser.post(
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/delete/",
        {"reason": "test change", "post": "yes"},
        follow=True,
    )


def test_deleting_the_only_active_endpoint_waits_for_a_second_person(
    live_workspace, make_endpoint, owner_browser
):
    endpoint = make_endpoint(live_workspace)
    response = delete(owner_browser, endpoint)
    assert "needs another person" in response.content.decode()
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    request = ActionRequest.objects.get(workspace=live_workspace, status="pending")
    assert request.tool_name == "warden.evidence.remove_last_webhook"


def test_with_another_active_endpoint_deleting_is_still_governed(
    live_workspace, make_endpoint, owner_browser
):
    """Closed world: removing where notifications go is governed, last one or not."""
    endpoint = make_endpoint(live_workspace)
    make_endpoint(live_workspace, name="backup")
    delete(owner_browser, endpoint)
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    request = ActionRequest.objects.get(status="pending")
    assert request.params["operations"] == ["warden.webhook_endpoint.change_governed_fields"]


def test_no_service_call_removes_the_last_endpoint_alone(live_workspace, make_endpoint):
    endpoint = make_endpoint(live_workspace)
    with pytest.raises(Exception, match="loosens governance"):
        services.endpoint_delete(reason="test set-up", endpoint=endpoint, actor=SYSTEM)
    with pytest.raises(Exception, match="loosens governance"):
        services.endpoint_update(
            reason="test set-up", endpoint=endpoint, actor=SYSTEM, changes={"enabled": False}
        )
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).is_active
