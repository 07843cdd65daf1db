"""The tool catalog in the admin goes through the same audited, versioned services."""

from approvals.models import Tool
from audit.models import VersionLog
from tenants.models import Membership, Role, Workspace


def admin_client(client, workspace):
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    owner.refresh_from_db()
    assert owner.is_staff
    client.force_login(owner)
    return client


def form(workspace, **overrides):
    data = {
        "workspace": str(workspace.pk),
        "name": "billing.refund",
        "description": "",
        "level": "write",
        "data_classes": "[]",
        "confirmation": "conditional",
        "condition": "params.amount > 1000",
        "summary_template": "Refund {params.amount}",
        "secret_params": "[]",
        "enabled": "on",
        "reason": "test change",
    }
    data.update(overrides)
    return data


def test_admin_add_bumps_policy_version_and_logs(client, workspace):
    """A disabled tool narrows (closed world): it is added at once."""
    before = workspace.policy_version
    data = form(workspace)
    data.pop("enabled")
    response = admin_client(client, workspace).post("/admin/approvals/tool/add/", data)
    assert response.status_code == 302, response.content[:2000]
    tool = Tool.objects.get(name="billing.refund")
    assert Workspace.objects.get(pk=workspace.pk).policy_version == before + 1
    assert VersionLog.objects.get(target_id=str(tool.pk)).after == tool.snapshot()


def test_admin_rejects_bad_condition_with_position(client, workspace):
    response = admin_client(client, workspace).post(
        "/admin/approvals/tool/add/", form(workspace, condition="params.amount >")
    )
    assert response.status_code == 200
    assert b"column 16" in response.content
    assert not Tool.objects.exists()


def test_admin_change_and_delete_are_versioned(client, workspace, make_tool):
    tool = make_tool(workspace, "crm.lookup")
    browser = admin_client(client, workspace)
    data = form(workspace, name="crm.lookup", level="read", confirmation="never", condition="")
    data.pop("enabled")
    data.pop("workspace")  # read-only once created
    assert browser.post(f"/admin/approvals/tool/{tool.pk}/change/", data).status_code == 302
    assert Tool.objects.get(pk=tool.pk).enabled is False
    response = browser.post(
        f"/admin/approvals/tool/{tool.pk}/delete/", {"reason": "test change", "post": "yes"}
    )
    assert response.status_code == 302
    assert not Tool.objects.filter(pk=tool.pk).exists()
    logs = VersionLog.objects.filter(target_id=str(tool.pk)).order_by("policy_version")
    assert [(bool(log.before), bool(log.after)) for log in logs] == [
        (False, True),
        (True, True),
        (True, False),
    ]
