"""Reads, always scoped to one workspace."""

from __future__ import annotations

from functools import cache

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import QuerySet

from common.db import prepared_cursor
from common.sql import SelectedModel, selected_model
from gateway.models import Connector
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


@cache
def _connector_for_call_sql(using: str) -> tuple[str, SelectedModel]:
    quote = connections[using].ops.quote_name
    connector = selected_model(Connector, "c", using)
    settings_table = quote(WorkspaceAutomationSettings._meta.db_table)
    endpoints_table = quote(WebhookEndpoint._meta.db_table)
    hosts = quote(WorkspaceAutomationSettings._meta.get_field("webhook_host_allowlist").column)
    sql = (
        f"SELECT {', '.join(connector.columns)},"  # noqa: S608 (model metadata)
        f" (SELECT s.{hosts} FROM {settings_table} s WHERE s.workspace_id = c.workspace_id"
        " LIMIT 1),"
        f" EXISTS(SELECT 1 FROM {endpoints_table} e WHERE e.workspace_id = c.workspace_id"
        " AND e.enabled AND e.disabled_at IS NULL)"
        f" FROM {quote(Connector._meta.db_table)} c WHERE c.workspace_id = %s AND c.id = %s"
    )
    return sql, connector


def connector_with_hosts(*, workspace: Workspace, pk, using: str = "default") -> Connector | None:
    """The connector with its workspace's outbound host allowlist (`outbound_hosts`,
    None when the workspace stored no settings) and whether the workspace has an
    active webhook endpoint (`has_webhooks`: if not, there is no one to announce the
    execution to), in one prepared statement: every executed call runs it, and the
    ORM took several times longer to build the query than PostgreSQL to answer it.
    Scoped like `scoped()` would: the workspace is the credential's."""
    sql, connector_columns = _connector_for_call_sql(using)
    connection = connections[using]
    try:
        key = Connector._meta.pk.get_db_prep_value(pk, connection)
    except (ValueError, TypeError, ValidationError):
        return None
    workspace_id = Workspace._meta.pk.get_db_prep_value(workspace.pk, connection)
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, [workspace_id, key])
        row = cursor.fetchone()
    if row is None:
        return None
    connector = connector_columns.load(row, 0, using)
    hosts, has_webhooks = row[len(connector_columns.columns) :]
    allowlist = WorkspaceAutomationSettings._meta.get_field("webhook_host_allowlist")
    connector.outbound_hosts = allowlist.from_db_value(hosts, None, connection)
    connector.has_webhooks = bool(has_webhooks)
    return connector
