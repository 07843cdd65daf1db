"""Reads, always scoped to one workspace."""

from __future__ import annotations

from django.db.models import QuerySet

from gateway.models import Connector, Execution
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
