"""The notification side of the governed operations (approvals.governance): deleting
or disabling a workspace's only active webhook endpoint,
widening the outbound host allowlist and switching anomaly auto-suspend off.
Registered with the guard and the door from NotificationsConfig.ready()."""

from __future__ import annotations

from approvals import door, guard
from approvals.door import Proposal
from approvals.governance import Target
from common import egress
from common.errors import WardenError
from notifications import services
from notifications.models import (
    WebhookEndpoint,
    WorkspaceAutomationSettings,
)


def webhook_snapshot(endpoint: WebhookEndpoint) -> dict:
    others = (
        WebhookEndpoint.objects.filter(
            workspace_id=endpoint.workspace_id, enabled=True, disabled_at__isnull=True
        )
        .exclude(pk=endpoint.pk)
        .count()
    )
    return {**endpoint.snapshot(), "active": endpoint.is_active, "other_active": others}


def webhook_update(endpoint: WebhookEndpoint, changes: dict) -> Proposal:
    before = guard.snapshot(endpoint)
    after = {**before, **changes}
    if "events" in after:
        after["events"] = sorted(after["events"])
    after["active"] = bool(after.get("enabled")) and endpoint.disabled_at is None
    return Proposal(
        Target.WEBHOOK,
        "update",
        f"webhook endpoint {endpoint.name}",
        before,
        after,
        str(endpoint.pk),
        changes,
    )


def webhook_delete(endpoint: WebhookEndpoint) -> Proposal:
    return Proposal(
        Target.WEBHOOK,
        "delete",
        f"webhook endpoint {endpoint.name}",
        guard.snapshot(endpoint),
        None,
        str(endpoint.pk),
        {},
    )


def automation_update(workspace, changes: dict, *, operator: bool) -> Proposal:
    current = WorkspaceAutomationSettings.objects.filter(workspace=workspace).first()
    before = (current or WorkspaceAutomationSettings(workspace=workspace)).snapshot()
    return Proposal(
        Target.AUTOMATION,
        "update",
        f"automation settings of {workspace.slug}",
        before,
        {**before, **changes},
        str(workspace.pk),
        {"changes": changes, "operator": operator},
    )


def outbound_hosts_update(workspace, hosts: list[str]) -> Proposal:
    """`outbound_hosts` on PATCH /api/v1/workspace: the one allowlist that webhooks,
    exports and connectors all use. Through the door, so the operator-only rule of the
    admin form gives way to the registry's: removing hosts applies at once, adding one
    waits for another person with manage_workspace."""
    try:
        clean = list(dict.fromkeys(egress.validate_entries(hosts)))
    except ValueError as exc:
        raise WardenError("validation_error", str(exc), {"outbound_hosts": [str(exc)]}) from None
    return automation_update(workspace, {"webhook_host_allowlist": clean}, operator=True)


def _automation_snapshot(current: WorkspaceAutomationSettings) -> dict:
    return current.snapshot()


def _automation_update(*, workspace, actor, values, reason, **_):
    return services.automation_settings_update(
        workspace=workspace,
        actor=actor,
        changes=values["changes"],
        operator=bool(values.get("operator")),
        reason=reason,
    )


def _webhook_update(*, workspace, actor, target_id, values, reason, **_):
    endpoint = WebhookEndpoint.objects.get(workspace=workspace, pk=target_id)
    return services.endpoint_update(endpoint=endpoint, actor=actor, changes=values, reason=reason)


def _webhook_delete(*, workspace, actor, target_id, reason, **_):
    endpoint = WebhookEndpoint.objects.filter(workspace=workspace, pk=target_id).first()
    if endpoint is not None:
        services.endpoint_delete(endpoint=endpoint, actor=actor, reason=reason)


def register() -> None:
    guard.register(WebhookEndpoint, Target.WEBHOOK, webhook_snapshot)
    guard.register(WorkspaceAutomationSettings, Target.AUTOMATION, _automation_snapshot)
    door.register_applier(Target.AUTOMATION, "update", _automation_update)
    door.register_applier(Target.WEBHOOK, "update", _webhook_update)
    door.register_applier(Target.WEBHOOK, "delete", _webhook_delete)
