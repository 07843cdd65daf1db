"""How the door applies each governed proposal, and how the guard snapshots each
governed model of the lower apps. Registered once, from ApprovalsConfig.ready()."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model

from approvals import catalog, confirmations, door, guard
from approvals.governance import APPROVER_ROLES, Target
from approvals.models import Tool
from keys import services as key_services
from keys.models import MachineKey
from tenants import services as tenant_services
from tenants.models import Invitation, Membership, Workspace


def _membership_snapshot(membership: Membership) -> dict:
    others = Membership.objects.filter(workspace_id=membership.workspace_id).exclude(
        pk=membership.pk
    )
    return {
        **membership.snapshot(),
        "other_approvers": others.filter(role__in=APPROVER_ROLES).count(),
        "other_members": others.count(),
    }


# --- tools -------------------------------------------------------------------------------


def _tool_create(*, workspace, actor, values, reason, **_):
    return catalog.tool_create(workspace=workspace, actor=actor, reason=reason, **values)


def _tool_update(*, workspace, actor, target_id, values, reason, **_):
    tool = Tool.objects.get(workspace=workspace, pk=target_id)
    return catalog.tool_update(tool=tool, actor=actor, changes=values, reason=reason)


# --- workspace -----------------------------------------------------------------------------


def _workspace_changes(values: dict) -> dict:
    changes = dict(values)
    if "confirmation_ttl" in changes and not isinstance(changes["confirmation_ttl"], timedelta):
        changes["confirmation_ttl"] = timedelta(seconds=int(changes["confirmation_ttl"]))
    if "live_after" in changes:
        changes["live_after"] = door.parse_when(changes["live_after"])
    return changes


def _workspace_update(*, workspace, actor, values, reason, **_):
    return tenant_services.workspace_update(
        workspace=workspace, actor=actor, changes=_workspace_changes(values), reason=reason
    )


def _workspace_delete(*, workspace, actor, reason, **_):
    return tenant_services.workspace_soft_delete(workspace=workspace, actor=actor, reason=reason)


# --- keys ------------------------------------------------------------------------------------


def _key_create(*, workspace, actor, values, custody, reason, **_):
    fields = dict(values)
    owner = get_user_model().objects.get(pk=fields.pop("owner_id"))
    fields["expires_at"] = door.parse_when(fields.get("expires_at"))
    return key_services.key_create(
        workspace=workspace,
        owner=owner,
        actor=actor,
        extra_custody=custody,
        reason=reason,
        **fields,
    )


def _key_update(*, workspace, actor, target_id, values, reason, **_):
    key = MachineKey.objects.get(workspace=workspace, pk=target_id)
    return key_services.key_set_unattended(
        key=key, unattended=bool(values["unattended_mode"]), actor=actor, reason=reason
    )


def _key_unsuspend(*, workspace, actor, target_id, reason, **_):
    key = MachineKey.objects.get(workspace=workspace, pk=target_id)
    return key_services.key_set_suspended(
        key=key, suspended=False, actor=actor, reason=reason or "suspension lifted"
    )


def _key_subject_custody(workspace_id, target_id, values):
    """A key's owner and chain of custody answer for changes to that key."""
    if not target_id:
        return ()
    key = MachineKey.objects.filter(workspace_id=workspace_id, pk=target_id).first()
    return confirmations.key_custody(key) if key is not None else ()


# --- members -----------------------------------------------------------------------------------


def _membership_create(*, workspace, actor, values, reason, **_):
    user = get_user_model().objects.get(pk=values["user_id"])
    return tenant_services.membership_add(
        workspace=workspace, user=user, role=values["role"], actor=actor, reason=reason
    )


def _membership_update(*, workspace, actor, target_id, values, reason, **_):
    membership = Membership.objects.get(workspace=workspace, pk=target_id)
    return tenant_services.membership_change_role(
        membership=membership, role=values["role"], actor=actor, reason=reason
    )


def _membership_delete(*, workspace, actor, target_id, reason, **_):
    membership = Membership.objects.filter(workspace=workspace, pk=target_id).first()
    if membership is not None:
        tenant_services.membership_remove(membership=membership, actor=actor, reason=reason)


def _invitation_snapshot(invitation: Invitation) -> dict:
    return invitation.snapshot()


def _invitation_create(*, workspace, actor, values, reason, **_):
    user = get_user_model().objects.get(pk=values["user_id"])
    return tenant_services.invitation_create(
        workspace=workspace, user=user, role=values["role"], actor=actor, reason=reason
    )


def _invitation_check(*, workspace, values, **_):
    user = get_user_model().objects.get(pk=values["user_id"])
    tenant_services.invitation_precheck(workspace=workspace, user=user, role=values["role"])


def _membership_check(*, workspace, actor, target_id, values, verb):
    membership = (
        Membership.objects.filter(workspace=workspace, pk=target_id).select_related("user").first()
        if target_id
        else None
    )
    user = get_user_model().objects.get(pk=values["user_id"]) if verb == "create" else None
    tenant_services.membership_precheck(
        workspace=workspace,
        actor=actor,
        role=values.get("role"),
        user=user,
        membership=membership,
        removing=verb == "delete",
    )


def register() -> None:
    guard.register(Tool, Target.TOOL, Tool.snapshot)
    guard.register(MachineKey, Target.KEY, MachineKey.snapshot)
    guard.register(Workspace, Target.WORKSPACE, Workspace.settings_snapshot)
    guard.register(Membership, Target.MEMBERSHIP, _membership_snapshot)
    guard.register(Invitation, Target.INVITATION, _invitation_snapshot)

    door.register_applier(Target.TOOL, "create", _tool_create)
    door.register_applier(Target.TOOL, "update", _tool_update)
    door.register_applier(Target.WORKSPACE, "update", _workspace_update)
    door.register_applier(Target.WORKSPACE, "delete", _workspace_delete)
    door.register_applier(Target.KEY, "create", _key_create)
    door.register_applier(Target.KEY, "unsuspend", _key_unsuspend)
    door.register_applier(Target.KEY, "update", _key_update)
    door.register_applier(Target.MEMBERSHIP, "create", _membership_create)
    door.register_applier(Target.MEMBERSHIP, "update", _membership_update)
    door.register_applier(Target.MEMBERSHIP, "delete", _membership_delete)
    door.register_applier(Target.INVITATION, "create", _invitation_create)
    door.register_check(Target.INVITATION, "create", _invitation_check)

    confirmations.SUBJECT_CUSTODY[str(Target.KEY)] = _key_subject_custody

    for verb in ("create", "update", "delete"):
        door.register_check(
            Target.MEMBERSHIP, verb, lambda verb=verb, **kw: _membership_check(verb=verb, **kw)
        )

    # Readers stay inside the request's workspace, like every other read.
    door.register_reader(
        Target.TOOL, lambda ws, pk: Tool.objects.filter(workspace=ws, pk=pk).first()
    )
    door.register_reader(
        Target.WORKSPACE, lambda ws, pk: Workspace.objects.filter(pk=ws.pk).first()
    )
    door.register_reader(
        Target.KEY, lambda ws, pk: MachineKey.objects.filter(workspace=ws, pk=pk).first()
    )
    door.register_reader(
        Target.MEMBERSHIP, lambda ws, pk: Membership.objects.filter(workspace=ws, pk=pk).first()
    )
    door.register_reader(
        Target.INVITATION, lambda ws, pk: Invitation.objects.filter(workspace=ws, pk=pk).first()
    )

    if door.apply_approved not in confirmations.APPROVAL_HOOKS:
        confirmations.APPROVAL_HOOKS.append(door.apply_approved)
