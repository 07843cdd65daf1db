"""The platform's own dangerous operations, gated like any agent action.

Each is a built-in tool under `warden.` (never in a workspace catalog, not callable
through /actions): irreversible, always confirmed by a human, never skipped by
unattended mode. The first call records an ActionRequest and answers 202 with a
`ct_` token; a human other than the requester (or the requesting key's owner)
approves; the confirmed re-call with the same body applies the change inside the
transaction that uses the token. Keys and human sessions may both ask.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from approvals.models import Tool
from approvals.services import ActionAnswer, SessionPrincipal, _Ask, submit
from common.actor import Actor
from common.errors import WardenError
from keys.scopes import WORKSPACE_ADMIN
from keys.validation import check_unattended_allowed
from tenants.models import ROLE_PERMISSIONS, Membership, Role, Workspace


def _platform_tool(name: str, description: str, template: str) -> Tool:
    return Tool(
        name=name,
        description=description,
        level="write",
        irreversible=True,
        confirmation="always",
        summary_template=template,
        enabled=True,
    )


PLATFORM_TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        _platform_tool(
            "warden.workspace.delete",
            "Delete the workspace (soft delete: keys stop working).",
            "Delete workspace {params.workspace}",
        ),
        _platform_tool(
            "warden.workspace.go_live",
            "Switch the workspace from dry-run to live.",
            "Workspace {params.workspace}: go live ({params.changes})",
        ),
        _platform_tool(
            "warden.workspace.enable_writes",
            "Turn the workspace's writes switch on.",
            "Workspace {params.workspace}: enable writes ({params.changes})",
        ),
        _platform_tool(
            "warden.workspace.enable_outbound",
            "Let external tools run without confirmation.",
            "Workspace {params.workspace}: allow unattended outbound ({params.changes})",
        ),
        _platform_tool(
            "warden.workspace.update_settings",
            "Several gated workspace settings at once.",
            "Workspace {params.workspace}: {params.changes}",
        ),
        _platform_tool(
            "warden.key.create_admin",
            "Create a machine key holding workspace:admin.",
            "Create key {params.name} with scopes {params.scopes} owned by {params.owner}",
        ),
        _platform_tool(
            "warden.key.enable_unattended",
            "Create a machine key in unattended mode (skips confirmations).",
            "Create unattended key {params.name} with scopes {params.scopes}, "
            "expiring {params.expires_at}, owned by {params.owner}",
        ),
        _platform_tool(
            "warden.member.remove_last_approver",
            "Remove (or demote) the last member who can approve actions.",
            "Remove {params.email} ({params.role}, new role: {params.new_role}), "
            "the last member who can approve actions",
        ),
    )
}

GATED_SETTINGS = {
    # setting -> (dangerous when it becomes, operation)
    "mode": (Workspace.Mode.LIVE, "warden.workspace.go_live"),
    "writes_enabled": (True, "warden.workspace.enable_writes"),
    "outbound_allowed": (True, "warden.workspace.enable_outbound"),
}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return value


def gate_operation(
    *,
    operation: str,
    workspace: Workspace,
    actor: Actor,
    scope: str,
    params: dict,
    apply: Callable[[], Any],
    confirmed: bool = False,
    confirmation_token: str = "",
    reason: str = "",
) -> ActionAnswer:
    """Ask for (or, with an approved token, perform) a platform operation. The caller's
    endpoint has already checked `scope`. On the confirmed call `apply` runs in the
    token's transaction and its value is `answer.result`."""
    tool = PLATFORM_TOOLS[operation]
    if actor.key is not None:
        principal, accountable = actor.key, actor.key.owner_id
    elif actor.user is not None:
        principal = SessionPrincipal(pk=actor.user.pk, name=actor.label, scopes=(scope,))
        accountable = actor.user.pk
    else:
        raise WardenError("humans_only", "Platform operations need a key or a human session.")
    ask = _Ask(
        workspace=workspace,
        principal=principal,
        key=actor.key,
        actor=actor,
        accountable_user_id=accountable,
        tool=tool,
        tool_name=operation,
        params=params,
        reason=reason,
        idempotency_key="",
        scope=scope,
        dry_run=False,
    )
    return submit(ask, confirmed=confirmed, token=confirmation_token, apply=apply)


class Gated:
    """What an endpoint answers: `answer` (202 or a denial) while the operation waits
    for a human, else `result` of the applied operation."""

    def __init__(self, answer: ActionAnswer | None = None, result: Any = None):
        self.answer = answer
        self.result = result

    @property
    def applied(self) -> bool:
        return self.answer is None


def _run(operation, *, workspace, actor, scope, params, apply, confirmed, token, reason) -> Gated:
    answer = gate_operation(
        operation=operation,
        workspace=workspace,
        actor=actor,
        scope=scope,
        params=params,
        apply=apply,
        confirmed=confirmed,
        confirmation_token=token,
        reason=reason,
    )
    if answer.allowed:
        return Gated(result=answer.result)
    return Gated(answer=answer)


# --- workspace ---------------------------------------------------------------------


def gated_workspace_operations(workspace: Workspace, changes: dict) -> list[str]:
    ops = []
    for setting, (dangerous, operation) in GATED_SETTINGS.items():
        becomes_dangerous = setting in changes and changes[setting] == dangerous
        if becomes_dangerous and getattr(workspace, setting) != dangerous:
            ops.append(operation)
    return ops


def workspace_update_gated(
    *,
    workspace: Workspace,
    actor: Actor,
    changes: dict,
    reason: str = "",
    confirmed: bool = False,
    confirmation_token: str = "",
) -> Gated:
    from tenants.services import workspace_update

    def apply():
        return workspace_update(workspace=workspace, actor=actor, changes=changes, reason=reason)

    ops = gated_workspace_operations(workspace, changes)
    if not ops and not confirmed:
        return Gated(result=apply())
    if not ops:
        # A confirmed re-call whose change is no longer dangerous (already applied):
        # nothing to confirm; refuse rather than silently consuming nothing.
        raise WardenError(
            "confirmation_mismatch",
            "This change needs no confirmation (anymore); send it without a token.",
        )
    operation = ops[0] if len(ops) == 1 else "warden.workspace.update_settings"
    params = {
        "workspace": workspace.slug,
        "changes": {k: _json_value(v) for k, v in sorted(changes.items())},
    }
    return _run(
        operation,
        workspace=workspace,
        actor=actor,
        scope=WORKSPACE_ADMIN,
        params=params,
        apply=apply,
        confirmed=confirmed,
        token=confirmation_token,
        reason=reason,
    )


def workspace_delete_gated(
    *,
    workspace: Workspace,
    actor: Actor,
    reason: str = "",
    confirmed: bool = False,
    confirmation_token: str = "",
) -> Gated:
    from tenants.services import workspace_soft_delete

    return _run(
        "warden.workspace.delete",
        workspace=workspace,
        actor=actor,
        scope=WORKSPACE_ADMIN,
        params={"workspace": workspace.slug},
        apply=lambda: workspace_soft_delete(workspace=workspace, actor=actor, reason=reason),
        confirmed=confirmed,
        token=confirmation_token,
        reason=reason,
    )


# --- keys ----------------------------------------------------------------------------


def key_create_gated(
    *,
    workspace: Workspace,
    actor: Actor,
    scope: str,
    owner,
    fields: dict,
    create: Callable[[], Any],
    confirmed: bool = False,
    confirmation_token: str = "",
) -> Gated:
    """POST /keys: a workspace:admin key or an unattended key waits for a human."""
    scopes = fields.get("scopes") or []
    unattended = bool(fields.get("unattended_mode"))
    check_unattended_allowed(
        scopes=scopes, expires_at=fields.get("expires_at"), unattended_mode=unattended
    )
    from keys.services import scopes_actor_cannot_grant

    missing = scopes_actor_cannot_grant(actor=actor, workspace=workspace, scopes=scopes)
    if missing:  # refuse escalation before asking anyone to approve it
        raise WardenError(
            "forbidden_by_scope",
            f"You cannot hand out the scope {missing[0]}: you do not hold it yourself.",
            {"required_scope": missing[0], "scopes": missing},
        )
    if WORKSPACE_ADMIN in scopes:
        operation = "warden.key.create_admin"
    elif unattended:
        operation = "warden.key.enable_unattended"
    else:
        return Gated(result=create())
    params = {k: _json_value(v) for k, v in sorted(fields.items())}
    params["owner"] = getattr(owner, "email", "") or str(owner.pk)
    return _run(
        operation,
        workspace=workspace,
        actor=actor,
        scope=scope,
        params=params,
        apply=create,
        confirmed=confirmed,
        token=confirmation_token,
        reason="",
    )


# --- members -------------------------------------------------------------------------

APPROVER_ROLES = frozenset(r for r, perms in ROLE_PERMISSIONS.items() if "approve_actions" in perms)


def is_last_approver(membership: Membership) -> bool:
    if membership.role not in APPROVER_ROLES:
        return False
    return not (
        Membership.objects.filter(workspace=membership.workspace, role__in=APPROVER_ROLES)
        .exclude(pk=membership.pk)
        .exists()
    )


def membership_change_gated(
    *,
    membership: Membership,
    actor: Actor,
    scope: str,
    apply: Callable[[], Any],
    new_role: str | None = None,
    confirmed: bool = False,
    confirmation_token: str = "",
) -> Gated:
    """Removing the last approver, or demoting them out of every approving role,
    waits for a human: without one, nothing could ever be approved again."""
    last_owner = (
        membership.role == Role.OWNER
        and not Membership.objects.filter(workspace=membership.workspace, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )
    keeps_approving = new_role is not None and new_role in APPROVER_ROLES
    if last_owner or keeps_approving or not is_last_approver(membership):
        return Gated(result=apply())  # the service refuses the last owner (last_owner)
    return _run(
        "warden.member.remove_last_approver",
        workspace=membership.workspace,
        actor=actor,
        scope=scope,
        params={
            "membership": str(membership.pk),
            "email": membership.user.email,
            "role": membership.role,
            "new_role": new_role,
        },
        apply=apply,
        confirmed=confirmed,
        token=confirmation_token,
        reason="",
    )
