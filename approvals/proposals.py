"""Proposals for the governed-operation door, built from the objects as they are.

Front doors (API views, admin, commands) describe the change they want with one of
these builders and hand it to `approvals.door.governed_change`; nothing here writes.
"""

from __future__ import annotations

from typing import Any

from approvals.door import Proposal, json_value
from approvals.governance import Target
from approvals.guard import snapshot
from approvals.models import Tool
from keys.models import MachineKey
from tenants.models import Membership, Workspace


def _json(values: dict[str, Any]) -> dict[str, Any]:
    return {k: json_value(v) for k, v in values.items()}


def tool_create(workspace: Workspace, fields: dict[str, Any]) -> Proposal:
    draft = Tool(workspace=workspace, **fields)
    return Proposal(
        Target.TOOL, "create", f"tool {draft.name}", None, snapshot(draft), None, _json(fields)
    )


def tool_update(tool: Tool, changes: dict[str, Any]) -> Proposal:
    before = snapshot(tool)
    draft = Tool(**{f.attname: getattr(tool, f.attname) for f in Tool._meta.concrete_fields})
    for name, value in changes.items():
        setattr(draft, name, value)
    return Proposal(
        Target.TOOL,
        "update",
        f"tool {tool.name}",
        before,
        snapshot(draft),
        str(tool.pk),
        _json(changes),
    )


def workspace_update(workspace: Workspace, changes: dict[str, Any]) -> Proposal:
    before = snapshot(workspace)
    draft = Workspace(
        **{f.attname: getattr(workspace, f.attname) for f in Workspace._meta.concrete_fields}
    )
    for name, value in changes.items():
        setattr(draft, name, value)
    return Proposal(
        Target.WORKSPACE,
        "update",
        f"workspace {workspace.slug}",
        before,
        snapshot(draft),
        str(workspace.pk),
        _json(changes),
    )


def workspace_delete(workspace: Workspace) -> Proposal:
    before = snapshot(workspace)
    return Proposal(
        Target.WORKSPACE,
        "delete",
        f"workspace {workspace.slug}",
        before,
        {**before, "deleted": True},
        str(workspace.pk),
        {},
    )


def key_create(workspace: Workspace, owner, fields: dict[str, Any]) -> Proposal:
    values = {**_json(fields), "owner_id": owner.pk}
    after = {
        "name": fields.get("name", ""),
        "owner": getattr(owner, "email", ""),
        "scopes": sorted(fields.get("scopes") or []),
        "tool_allowlist": list(fields.get("tool_allowlist") or []),
        "unattended_mode": bool(fields.get("unattended_mode")),
        "expires_at": json_value(fields.get("expires_at")),
        "allowed_ips": list(fields.get("allowed_ips") or []),
        "suspended_at": None,
    }
    return Proposal(
        Target.KEY,
        "create",
        f"key {after['name']} for {after['owner']}",
        None,
        after,
        None,
        values,
    )


def key_set_unattended(key: MachineKey, unattended: bool) -> Proposal:
    """Switching unattended mode on is governed; switching it off narrows."""
    before = snapshot(key)
    return Proposal(
        Target.KEY,
        "update",
        f"key {key.name}",
        before,
        {**before, "unattended_mode": bool(unattended)},
        str(key.pk),
        {"unattended_mode": bool(unattended)},
    )


def key_unsuspend(key: MachineKey) -> Proposal:
    before = snapshot(key)  # every classified facet, as the guard compares
    return Proposal(
        Target.KEY,
        "unsuspend",
        f"key {key.name}",
        before,
        {**before, "suspended_at": None},
        str(key.pk),
        {},
    )


def membership_add(workspace: Workspace, user, role: str) -> Proposal:
    after = {"user": user.email, "role": role}
    return Proposal(
        Target.MEMBERSHIP,
        "create",
        f"member {user.email}",
        None,
        after,
        None,
        {"user_id": user.pk, "role": role},
    )


def membership_change_role(membership: Membership, role: str) -> Proposal:
    before = snapshot(membership)
    return Proposal(
        Target.MEMBERSHIP,
        "update",
        f"member {membership.user.email}",
        before,
        {**before, "role": role},
        str(membership.pk),
        {"role": role},
    )


def membership_remove(membership: Membership) -> Proposal:
    return Proposal(
        Target.MEMBERSHIP,
        "delete",
        f"member {membership.user.email}",
        snapshot(membership),
        None,
        str(membership.pk),
        {},
    )


def invitation_create(workspace: Workspace, user, role: str) -> Proposal:
    """Offering a role that may approve grows who may approve once accepted: judged
    now, so accepting it later asks nobody again (approvals.door.accepting_invitation)."""
    return Proposal(
        Target.INVITATION,
        "create",
        f"invitation of {user.email}",
        None,
        {"user": user.email, "role": role, "workspace": str(workspace.pk)},
        None,
        {"user_id": user.pk, "role": role},
    )
