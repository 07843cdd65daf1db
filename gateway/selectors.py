"""Reads, always scoped to one workspace."""

from __future__ import annotations

from django.db.models import Exists, JSONField, OuterRef, QuerySet, Subquery

from gateway.models import Connector, Execution
from notifications.models import WebhookEndpoint, WorkspaceAutomationSettings
from tenants.models import Workspace
from tenants.scoping import scoped


def connector_list(*, workspace: Workspace) -> QuerySet[Connector]:
    return scoped(Connector.objects.all(), workspace).order_by("name")


def connector_get(*, workspace: Workspace, pk) -> Connector | None:
    try:
        return connector_list(workspace=workspace).filter(pk=pk).first()
    except (ValueError, TypeError):
        return None


def execution_for(*, workspace: Workspace, action_request) -> Execution | None:
    return scoped(Execution.objects.all(), workspace).filter(action_request=action_request).first()


def connector_with_hosts(*, workspace: Workspace, pk) -> Connector | None:
    """The connector with its workspace's outbound host allowlist (`outbound_hosts`,
    None when the workspace stored no settings) and whether the workspace has an
    active webhook endpoint (`has_webhooks`: if not, there is no one to announce the
    execution to), in one statement: the call path."""
    hosts = WorkspaceAutomationSettings.objects.filter(workspace_id=OuterRef("workspace_id"))
    webhooks = WebhookEndpoint.objects.filter(
        workspace_id=OuterRef("workspace_id"), enabled=True, disabled_at__isnull=True
    )
    return (
        scoped(Connector.objects.all(), workspace)
        .filter(pk=pk)
        .annotate(
            outbound_hosts=Subquery(
                hosts.values("webhook_host_allowlist")[:1], output_field=JSONField()
            ),
            has_webhooks=Exists(webhooks),
        )
        .first()
    )
