"""A reason for every change (issue 27): the API, the admin and the commands refuse a
configuration change without a non-blank reason, and the version log records it."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from approvals.catalog import tool_create
from approvals.models import ActionRequest, Tool
from audit.models import AuditEntry, VersionLog
from tenants.models import Role, Workspace
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


@pytest.fixture
def tool(make_workspace):
    workspace = make_workspace()
    return tool_create(
        workspace=workspace, actor=SYSTEM, reason="test set-up", name="crm.lookup", enabled=False
    )


@pytest.fixture
def admin_client(tool, make_member, user_client):
    return user_client(make_member(tool.workspace, Role.ADMIN), tool.workspace)


@pytest.mark.parametrize("reason", [None, "", "   \n\t"])
def test_a_change_without_a_reason_is_refused_and_changes_nothing(
    tool, admin_client, api_error, reason
):
    body = {"irreversible": True} if reason is None else {"irreversible": True, "reason": reason}
    error = api_error(
        admin_client.patch(f"/api/v1/tools/{tool.pk}", body, format="json"),
        400,
        "reason_required",
    )
    assert "reason" in error["error"]["detail"]
    assert Tool.objects.get(pk=tool.pk).irreversible is False
    assert not VersionLog.objects.filter(target_id=str(tool.pk)).exclude(reason="test set-up")


def test_the_reason_is_recorded_in_the_version_log(tool, admin_client):
    response = admin_client.patch(
        f"/api/v1/tools/{tool.pk}",
        {"irreversible": True, "reason": "  INC-42: it deletes data  "},
        format="json",
    )
    assert response.status_code == 200, response.content
    log = VersionLog.objects.filter(target_id=str(tool.pk)).first()
    assert log.reason == "INC-42: it deletes data"
    assert log.audit_entry.rationale == "INC-42: it deletes data"


def test_a_delete_needs_a_reason_too(tool, admin_client, api_error):
    api_error(admin_client.delete(f"/api/v1/tools/{tool.pk}"), 400, "reason_required")
    assert Tool.objects.filter(pk=tool.pk).exists()
    gone = admin_client.delete(f"/api/v1/tools/{tool.pk}?reason=retired")
    assert gone.status_code == 204
    assert VersionLog.objects.filter(target_id=str(tool.pk)).first().reason == "retired"


def test_a_governed_change_is_not_filed_without_a_reason(tool, admin_client, api_error):
    api_error(
        admin_client.patch(f"/api/v1/tools/{tool.pk}", {"enabled": True}, format="json"),
        400,
        "reason_required",
    )
    assert not ActionRequest.objects.filter(workspace=tool.workspace).exists()


def test_an_approved_change_keeps_the_proposers_reason(tool, admin_client, make_member, approve):
    filed = admin_client.patch(
        f"/api/v1/tools/{tool.pk}",
        {"enabled": True, "reason": "reviewed in CHG-7"},
        format="json",
    )
    assert filed.status_code == 202
    confirmation = ActionRequest.objects.get(pk=filed.json()["id"]).confirmation
    second = make_member(tool.workspace, Role.ADMIN)
    assert approve(second, tool.workspace, confirmation.pk).status_code == 200
    log = VersionLog.objects.filter(target_id=str(tool.pk)).first()
    assert log.reason.startswith("reviewed in CHG-7 (request ")


def test_the_admin_form_refuses_a_blank_reason(tool):
    owner = Client()
    owner.force_login(tool.workspace.memberships.get(role=Role.OWNER).user)
    url = f"/admin/approvals/tool/{tool.pk}/change/"
    page = owner.get(url).content.decode()
    assert 'name="reason"' in page
    form = {
        "name": tool.name,
        "description": "",
        "level": tool.level,
        "data_classes": "[]",
        "confirmation": tool.confirmation,
        "secret_params": "[]",
        "input_schema": "{}",
        "irreversible": "on",
        "output_projection": "null",
        "reason": "  ",
    }
    refused = owner.post(url, form)
    assert refused.status_code == 200
    assert "This field is required." in refused.content.decode()
    assert Tool.objects.get(pk=tool.pk).irreversible is False
    saved = owner.post(url, {**form, "reason": "it deletes data"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert VersionLog.objects.filter(target_id=str(tool.pk)).first().reason == "it deletes data"


def test_the_admin_delete_page_asks_why(tool):
    owner = Client()
    owner.force_login(tool.workspace.memberships.get(role=Role.OWNER).user)
    url = f"/admin/approvals/tool/{tool.pk}/delete/"
    assert 'name="reason"' in owner.get(url).content.decode()
    owner.post(url, {"post": "yes", "reason": ""})
    assert Tool.objects.filter(pk=tool.pk).exists()
    owner.post(url, {"post": "yes", "reason": "retired"})
    assert not Tool.objects.filter(pk=tool.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_command_without_a_reason_fails_with_a_clear_error():
    with pytest.raises(CommandError, match="Say why"):
        call_command("createworkspace", "acme", "--name", "Acme", "--owner", "a@acme.test")
    assert not Workspace.objects.filter(slug="acme").exists()
    call_command(
        "createworkspace", "acme", "--name", "Acme", "--owner", "a@acme.test", "--reason", "pilot"
    )
    created = AuditEntry.objects.get(action="workspace.created")
    assert created.rationale == "pilot"
