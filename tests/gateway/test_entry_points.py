"""The connector admin action runs as in the admin: outside any test transaction
(tests/entry_points.py); the imported tools and the sync's audit entry are both there."""

from django.test import Client

from approvals.models import PolicyVersion, Tool
from audit.models import AuditEntry
from tests.entry_points import entry_point


@entry_point("admin:gateway.connector.sync_selected")
def test_sync_action_imports_disabled_tools_with_its_entry(gw_workspace, gw_admin, make_connector):
    connector = make_connector(gw_workspace)
    client = Client()
    client.force_login(gw_admin)
    response = client.post(
        "/admin/gateway/connector/",
        {"reason": "test change", "action": "sync_selected", "_selected_action": [connector.pk]},
        follow=True,
    )
    assert response.status_code == 200
    tools = Tool.objects.filter(workspace=gw_workspace, connector=connector)
    assert sorted(t.name for t in tools) == ["crm.lookup", "crm.send"]
    assert not any(t.enabled for t in tools)
    assert AuditEntry.objects.filter(workspace=gw_workspace, action="connector.synced").count() == 1
    # The whole sync is ONE policy version naming both imported tools.
    (version,) = PolicyVersion.objects.filter(
        workspace=gw_workspace, author=f"user:{gw_admin.email}"
    )
    assert set(version.diff) == {"tool crm.lookup", "tool crm.send"}
    assert version.reason == f"catalog sync of connector {connector.name}"


@entry_point("task:gateway.sync_connectors", "task:gateway.sync_connector")
def test_the_scheduled_sync_imports_with_its_entry_outside_a_transaction(
    gw_workspace, make_connector
):
    from gateway.tasks import sync_connectors

    connector = make_connector(gw_workspace)
    assert sync_connectors.apply().get() == 1  # eager: runs sync_connector for it
    tools = Tool.objects.filter(workspace=gw_workspace, connector=connector)
    assert sorted(t.name for t in tools) == ["crm.lookup", "crm.send"]
    assert not any(t.enabled for t in tools)
    assert AuditEntry.objects.filter(workspace=gw_workspace, action="connector.synced").count() == 1
