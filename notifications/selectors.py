"""Reads for background work. Every read is scoped to one workspace, except the
system-wide sweeps, which only return ids for the tasks to act on one by one."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_users_with_perms

from notifications.models import (
    DeliveryStatus,
    EmailDelivery,
    WebhookDelivery,
    WebhookEndpoint,
    WorkspaceAutomationSettings,
)
from tenants.models import Workspace
from tenants.scoping import scoped


def automation_settings_for(workspace: Workspace) -> WorkspaceAutomationSettings:
    """The workspace's settings, or the defaults (unsaved) when none were stored."""
    found = WorkspaceAutomationSettings.objects.filter(workspace=workspace).first()
    return found or WorkspaceAutomationSettings(workspace=workspace)


def webhook_host_allowlist(workspace: Workspace) -> list[str]:
    return list(automation_settings_for(workspace).webhook_host_allowlist)


def endpoint_list(*, workspace: Workspace) -> QuerySet[WebhookEndpoint]:
    return scoped(WebhookEndpoint.objects.all(), workspace).order_by("name")


def endpoints_subscribed(*, workspace: Workspace | int, event: str) -> list[WebhookEndpoint]:
    """`workspace`: the workspace or its id (a signal carries only the id)."""
    # JSON containment is not portable to SQLite; the list per workspace is short.
    active = endpoint_list(workspace=workspace).filter(enabled=True, disabled_at__isnull=True)
    return [endpoint for endpoint in active if event in (endpoint.events or [])]


def users_with_workspace_perm(*, workspace: Workspace, perm: str, exclude=()) -> list:
    """Active members holding a guardian permission on the workspace, with an email."""
    excluded = {getattr(user, "pk", user) for user in exclude if user is not None}
    users = get_users_with_perms(
        workspace, with_superusers=False, with_group_users=True, only_with_perms_in=[perm]
    )
    return [
        user
        for user in users.filter(is_active=True, memberships__workspace=workspace)
        .exclude(email="")
        .distinct()
        .order_by("email")
        if user.pk not in excluded
    ]


def _stale(queryset: QuerySet, cutoff: datetime) -> QuerySet:
    return queryset.filter(
        Q(last_attempt_at__lt=cutoff) | Q(last_attempt_at__isnull=True, created_at__lt=cutoff)
    )


def stale_webhook_delivery_ids(*, cutoff: datetime, limit: int) -> list:
    """Pending deliveries nobody has tried since `cutoff`, on endpoints still active."""
    pending = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING,
        endpoint__enabled=True,
        endpoint__disabled_at__isnull=True,
    )
    return list(_stale(pending, cutoff).order_by("created_at").values_list("pk", flat=True)[:limit])


def stale_email_delivery_ids(*, cutoff: datetime, limit: int) -> list:
    pending = EmailDelivery.objects.filter(status=DeliveryStatus.PENDING)
    return list(_stale(pending, cutoff).order_by("created_at").values_list("pk", flat=True)[:limit])
