"""The registry of governed operations (DESIGN.md principle 9), as data.

A governed operation is a change that widens what agents may do without a human, or
weakens the evidence. Each entry says what it changes, when a change *loosens*
governance (a predicate over the target's before/after snapshots), which workspace
permission may approve it, how many approvals it needs and whether it is
irreversible. Narrowing changes (the opposite direction) are not listed: they apply
at once and are recorded like any change.

The world is closed (DESIGN.md 12): `approvals.effective` classifies every field of
every policy-bearing model, and whatever does not provably narrow and no entry here
explains becomes a generic governed operation naming the changed fields. The entries
here are the human-readable explanations.

`approvals.door` is the one door that applies these operations, and `approvals.guard`
refuses any save of a governed model that loosens governance without the door's grant.
Snapshots are the plain JSON the models already produce for version logs
(`Tool.snapshot()`, `MachineKey.snapshot()`, `Workspace.settings_snapshot()`,
`Membership.snapshot()`), so a predicate never touches the database; `None` stands for
"does not exist" (before a creation, after a deletion).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals import effective

Snapshot = dict[str, Any] | None


class Target(StrEnum):
    TOOL = "tool"
    KEY = "machine_key"
    WORKSPACE = "workspace"
    MEMBERSHIP = "membership"
    INVITATION = "invitation"
    WEBHOOK = "webhook_endpoint"
    EXPORT = "export_destination"
    AUTOMATION = "automation_settings"
    CONNECTOR = "connector"


# Scopes that change governance itself: a key holding one can rewrite the rules, mint
# keys or change who approves. `actions:*` only use the rules.
GOVERNANCE_SCOPES = frozenset(
    {
        "workspace:admin",
        "tools:write",
        "keys:write",
        "members:write",
        "connectors:write",
    }
)
SENSITIVE_CLASSES = frozenset({"pii", "secrets", "regulated", "financial"})
PRIVILEGED_ROLES = frozenset({"owner", "admin"})
APPROVER_ROLES = frozenset({"owner", "admin", "approver"})

_CONFIRMATION_RANK = {"never": 0, "conditional": 1, "always": 2}
_LEVEL_RANK = {"read": 0, "write": 1, "external": 2}
_ROLE_RANK = effective.ROLE_RANK


@dataclass(frozen=True)
class GovernedOperation:
    name: str  # also the built-in tool name the request is filed under
    target: Target
    title: str  # what it changes, for people
    loosens: Callable[[Snapshot, Snapshot], bool]
    effect: str  # what agents could do afterwards that they cannot do now
    permission: str  # workspace permission an approver must hold
    approvals: int = 1
    irreversible: bool = False
    # Snapshot keys this operation explains (approvals.effective): a change whose
    # non-narrowing keys are all explained needs no generic operation besides.
    fields: frozenset[str] = frozenset()


def _was(before: Snapshot, field: str, default: Any = None) -> Any:
    return (before or {}).get(field, default)


def _is(after: Snapshot, field: str, default: Any = None) -> Any:
    return (after or {}).get(field, default)


def _created(before: Snapshot, after: Snapshot) -> bool:
    return before is None and after is not None


def _became(before: Snapshot, after: Snapshot, field: str, value: Any) -> bool:
    """`field` is `value` after and was not before (a creation counts)."""
    return after is not None and _is(after, field) == value and _was(before, field) != value


def _lost(before: Snapshot, after: Snapshot, field: str) -> bool:
    """A list field lost an element (edits only)."""
    if before is None or after is None:
        return False
    return bool(set(_was(before, field, [])) - set(_is(after, field, [])))


# --- tools -----------------------------------------------------------------------------


def _tool_confirmation_lowered(before: Snapshot, after: Snapshot) -> bool:
    if _created(before, after):
        return _is(after, "enabled", True) and _is(after, "confirmation") == "never"
    if before is None or after is None:
        return False
    was = _CONFIRMATION_RANK.get(_was(before, "confirmation"), 2)
    now = _CONFIRMATION_RANK.get(_is(after, "confirmation"), 0)
    if now < was:
        return True
    # A conditional rule whose condition changed or went away: a different condition
    # may hold less often, and no one can tell without reading it.
    return (
        was == now == _CONFIRMATION_RANK["conditional"]
        and (_was(before, "condition") or "").strip() != (_is(after, "condition") or "").strip()
    )


def _tool_level_lowered(before: Snapshot, after: Snapshot) -> bool:
    if before is None or after is None:
        return False
    return _LEVEL_RANK.get(_is(after, "level"), 0) < _LEVEL_RANK.get(_was(before, "level"), 2)


def _tool_protection_removed(before: Snapshot, after: Snapshot) -> bool:
    if before is None or after is None:
        return False
    return (
        (bool(_was(before, "irreversible")) and not _is(after, "irreversible"))
        or _lost(before, after, "data_classes")
        or _lost(before, after, "secret_params")
        or (
            bool((_was(before, "deny_condition") or "").strip())
            and (_was(before, "deny_condition") or "").strip()
            != (_is(after, "deny_condition") or "").strip()
        )
        # Another argument schema validates differently; a tool that ends disabled (a
        # connector sync flagging an upstream change) reaches no agent until reviewed.
        or (
            bool(_is(after, "enabled"))
            and (_was(before, "input_schema") or {}) != (_is(after, "input_schema") or {})
        )
    )


def _tool_enabled(before: Snapshot, after: Snapshot) -> bool:
    return before is not None and after is not None and _became(before, after, "enabled", True)


# --- keys ------------------------------------------------------------------------------


def _key_governance_scopes(before: Snapshot, after: Snapshot) -> bool:
    if after is None:
        return False
    added = set(_is(after, "scopes", [])) - set(_was(before, "scopes", []))
    return bool(added & GOVERNANCE_SCOPES)


def _key_unattended(before: Snapshot, after: Snapshot) -> bool:
    return _became(before, after, "unattended_mode", True)


def _key_unsuspended(before: Snapshot, after: Snapshot) -> bool:
    return (
        before is not None
        and after is not None
        and bool(_was(before, "suspended_at"))
        and not _is(after, "suspended_at")
    )


# --- workspace ---------------------------------------------------------------------------


def _ws_switched_on(field: str) -> Callable[[Snapshot, Snapshot], bool]:
    def predicate(before: Snapshot, after: Snapshot) -> bool:
        return before is not None and _became(before, after, field, True)

    return predicate


def _ws_switched_off(field: str) -> Callable[[Snapshot, Snapshot], bool]:
    def predicate(before: Snapshot, after: Snapshot) -> bool:
        if before is None or after is None:
            return False
        return bool(_was(before, field)) and not _is(after, field)

    return predicate


def _ws_go_live(before: Snapshot, after: Snapshot) -> bool:
    return before is not None and _became(before, after, "mode", "live")


def _ws_go_live_early(before: Snapshot, after: Snapshot) -> bool:
    """Going live before `live_after`, the end of the planned dry run (DESIGN.md 6)."""
    if not _ws_go_live(before, after):
        return False
    ends = parse_datetime(str(_is(after, "live_after") or ""))
    return ends is not None and timezone.now() < ends


def _tool_created_enabled(before: Snapshot, after: Snapshot) -> bool:
    return _created(before, after) and bool(_is(after, "enabled", True))


def _ws_deleted(before: Snapshot, after: Snapshot) -> bool:
    return before is not None and (after is None or bool(_is(after, "deleted")))


def _ws_retention_shortened(before: Snapshot, after: Snapshot) -> bool:
    if before is None or after is None:
        return False
    was, now = _was(before, "audit_retention_days"), _is(after, "audit_retention_days")
    return now is not None and (was is None or now < was)


def _ws_limits_lowered(before: Snapshot, after: Snapshot) -> bool:
    if before is None or after is None:
        return False
    return (_is(after, "plan_rank") or 0) < (_was(before, "plan_rank") or 0)


def _list_widened(field: str) -> Callable[[Snapshot, Snapshot], bool]:
    def predicate(before: Snapshot, after: Snapshot) -> bool:
        if after is None:
            return False
        return bool(set(_is(after, field, [])) - set(_was(before, field, [])))

    return predicate


# --- members -----------------------------------------------------------------------------


def _member_raised(before: Snapshot, after: Snapshot) -> bool:
    """Someone given (or offered) a role that may approve, or a higher one: who may
    approve grows. `other_members` rides in the snapshot: a new workspace's founding
    owner raises nobody above anyone."""
    if after is None or (before is None and _is(after, "other_members", 1) == 0):
        return False
    now = _is(after, "role")
    if now not in APPROVER_ROLES:
        return False
    return before is None or _ROLE_RANK.get(now, 9) > _ROLE_RANK.get(_was(before, "role"), -1)


def _member_last_approver_lost(before: Snapshot, after: Snapshot) -> bool:
    """`other_approvers` (how many other members may approve) rides in the snapshot,
    filled by the caller that knows the workspace (approvals.door)."""
    if before is None or _was(before, "role") not in APPROVER_ROLES:
        return False
    if _was(before, "other_approvers", 1) > 0:
        return False
    return after is None or _is(after, "role") not in APPROVER_ROLES


# --- evidence ------------------------------------------------------------------------------


def _last_active_removed(before: Snapshot, after: Snapshot) -> bool:
    """Deleting or disabling the only active endpoint/destination (`other_active` rides
    in the snapshot)."""
    if before is None or not _was(before, "active", True) or _was(before, "other_active", 1) > 0:
        return False
    return after is None or not _is(after, "active", True)


# --- connectors ----------------------------------------------------------------------------
# Snapshots carry `header_names` (shown to people) and `_header_fingerprints` ({name:
# opaque keyed digest of the value}, computed by the gateway in memory, never stored or
# shown: the door leaves `_` fields out of diffs and summaries). A value is "new" when
# its fingerprint is not the one stored under that name.


def _connector_url_changed(before: Snapshot, after: Snapshot) -> bool:
    return before is not None and after is not None and _was(before, "url") != _is(after, "url")


def _connector_enabled(before: Snapshot, after: Snapshot) -> bool:
    return before is not None and _became(before, after, "enabled", True)


def _connector_credentials_added(before: Snapshot, after: Snapshot) -> bool:
    """A header added or a value replaced; dropping headers is narrowing."""
    if before is None or after is None:
        return False
    was = _was(before, "_header_fingerprints") or {}
    return any(
        was.get(name) != digest
        for name, digest in (_is(after, "_header_fingerprints") or {}).items()
    )


OPERATIONS: tuple[GovernedOperation, ...] = (
    # Tool catalog
    GovernedOperation(
        "warden.tool.lower_confirmation",
        Target.TOOL,
        "Create a tool that needs no confirmation, lower a tool's confirmation rule "
        "(always > conditional > never) or change its condition",
        _tool_confirmation_lowered,
        "agents could run this tool without asking a human first",
        "manage_tools",
        fields=frozenset({"confirmation", "condition"}),
    ),
    GovernedOperation(
        "warden.tool.create",
        Target.TOOL,
        "Add an enabled tool",
        _tool_created_enabled,
        "allowlisted agents could call a tool that does not exist for them today, under "
        "rules nobody else has read",
        "manage_tools",
        fields=frozenset({"created"}),
    ),
    GovernedOperation(
        "warden.tool.lower_level",
        Target.TOOL,
        "Lower a tool's level (external > write > read)",
        _tool_level_lowered,
        "keys with a lower action scope could call it, past the writes and outbound switches",
        "manage_tools",
        fields=frozenset({"level"}),
    ),
    GovernedOperation(
        "warden.tool.remove_protection",
        Target.TOOL,
        "Clear irreversible, remove a data class or a secret parameter, change a deny rule, "
        "or change the argument schema of an enabled tool",
        _tool_protection_removed,
        "the sensitivity floor, secret digests or a deny rule would stop applying to it",
        "manage_tools",
        fields=frozenset(
            {
                "irreversible",
                "data_classes",
                "secret_params",
                "deny_condition",
                "deny_reason",
                "input_schema",
            }
        ),
    ),
    GovernedOperation(
        "warden.tool.enable",
        Target.TOOL,
        "Enable a disabled tool",
        _tool_enabled,
        "allowlisted agents could call a tool that does not exist for them today",
        "manage_tools",
        fields=frozenset({"enabled"}),
    ),
    # Machine keys
    GovernedOperation(
        "warden.key.grant_governance_scope",
        Target.KEY,
        "Mint or widen a key with a scope that changes governance "
        "(workspace:admin, tools:write, keys:write, members:write, connectors:write)",
        _key_governance_scopes,
        "an agent could rewrite the rules, mint keys or change who approves",
        "manage_workspace",
        fields=frozenset({"scopes"}),
    ),
    GovernedOperation(
        "warden.key.enable_unattended",
        Target.KEY,
        "Mint a key in unattended mode, or switch a key to it",
        _key_unattended,
        "an agent could skip tools' confirmation rules (the sensitivity floor still holds)",
        "manage_keys",
        fields=frozenset({"unattended_mode"}),
    ),
    GovernedOperation(
        "warden.key.unsuspend",
        Target.KEY,
        "Lift a key's suspension",
        _key_unsuspended,
        "a key suspended (e.g. by anomaly detection) could act again",
        "manage_keys",
        fields=frozenset({"suspended_at"}),
    ),
    # Workspace settings
    GovernedOperation(
        "warden.workspace.enable_writes",
        Target.WORKSPACE,
        "Turn the writes switch on",
        _ws_switched_on("writes_enabled"),
        "write and external tools could be allowed",
        "manage_workspace",
        fields=frozenset({"writes_enabled"}),
    ),
    GovernedOperation(
        "warden.workspace.enable_outbound",
        Target.WORKSPACE,
        "Allow external effects without confirmation",
        _ws_switched_on("outbound_allowed"),
        "external tools (send, pay, publish) could run without a human",
        "manage_workspace",
        fields=frozenset({"outbound_allowed"}),
    ),
    GovernedOperation(
        "warden.workspace.go_live",
        Target.WORKSPACE,
        "Switch from dry run to live",
        _ws_go_live,
        "allowed actions would be performed for real",
        "manage_workspace",
        fields=frozenset({"mode"}),
    ),
    GovernedOperation(
        "warden.workspace.go_live_early",
        Target.WORKSPACE,
        "Override the dry run: go live before its planned end (live_after)",
        _ws_go_live_early,
        "allowed actions would be performed for real before the dry run has run its course",
        "manage_workspace",
        fields=frozenset({"mode"}),
    ),
    GovernedOperation(
        "warden.workspace.delete",
        Target.WORKSPACE,
        "Delete the workspace (soft delete)",
        _ws_deleted,
        "every key of the workspace stops working; the evidence is kept",
        "manage_workspace",
        irreversible=True,
        fields=frozenset({"deleted", "deleted_at"}),
    ),
    GovernedOperation(
        "warden.workspace.disable_two_approvals",
        Target.WORKSPACE,
        "Switch off two approvals for irreversible actions",
        _ws_switched_off("require_two_approvals_for_irreversible"),
        "one person alone could approve an irreversible action",
        "manage_workspace",
        fields=frozenset({"require_two_approvals_for_irreversible"}),
    ),
    GovernedOperation(
        "warden.workspace.lower_floor",
        Target.WORKSPACE,
        "Switch off the sensitivity floor",
        _ws_switched_off("sensitivity_floor"),
        "irreversible actions and sensitive data could be handled without a human",
        "manage_workspace",
        approvals=2,
        fields=frozenset({"sensitivity_floor"}),
    ),
    GovernedOperation(
        "warden.workspace.shorten_retention",
        Target.WORKSPACE,
        "Shorten audit retention",
        _ws_retention_shortened,
        "evidence would be pruned sooner",
        "manage_workspace",
        fields=frozenset({"audit_retention_days"}),
    ),
    GovernedOperation(
        "warden.workspace.lower_limits",
        Target.WORKSPACE,
        "Lower the plan rank that conditions compare against",
        _ws_limits_lowered,
        "conditions on workspace.plan_rank may stop asking for a human",
        "manage_workspace",
        fields=frozenset({"plan_rank"}),
    ),
    GovernedOperation(
        "warden.workspace.widen_outbound_hosts",
        Target.AUTOMATION,
        "Add hosts to the outbound host allowlist",
        _list_widened("webhook_host_allowlist"),
        "webhooks, exports and connectors could reach new hosts",
        "manage_workspace",
        fields=frozenset({"webhook_host_allowlist"}),
    ),
    GovernedOperation(
        "warden.workspace.disable_auto_suspend",
        Target.AUTOMATION,
        "Stop anomaly detection from suspending keys",
        _ws_switched_off("anomaly_auto_suspend"),
        "a key behaving anomalously would keep working until someone looks",
        "manage_workspace",
        fields=frozenset({"anomaly_auto_suspend"}),
    ),
    # Connectors (the upstream hosts Warden calls, with credentials agents never see)
    GovernedOperation(
        "warden.connector.create",
        Target.CONNECTOR,
        "Add a connector (an upstream host Warden calls with stored credentials)",
        _created,
        "Warden could call a new upstream, with new credentials, for tools imported from it",
        "manage_tools",
        fields=frozenset({"created"}),
    ),
    GovernedOperation(
        "warden.connector.change_url",
        Target.CONNECTOR,
        "Point a connector at another URL",
        _connector_url_changed,
        "Warden would send the connector's calls and credentials to another place",
        "manage_tools",
        fields=frozenset({"url"}),
    ),
    GovernedOperation(
        "warden.connector.change_credentials",
        Target.CONNECTOR,
        "Add a credential header to a connector or replace a header's value",
        _connector_credentials_added,
        "Warden would call the upstream as another principal, with other rights",
        "manage_tools",
        fields=frozenset(
            {
                "headers_encrypted",
                "header_names",
                "_header_fingerprints",
                "new_credentials",
                "credential_references",
            }
        ),
    ),
    GovernedOperation(
        "warden.connector.enable",
        Target.CONNECTOR,
        "Switch a disabled connector back on",
        _connector_enabled,
        "tools imported from it could be executed through Warden again (it may have been "
        "switched off after an incident)",
        "manage_tools",
        fields=frozenset({"enabled"}),
    ),
    # Members
    GovernedOperation(
        "warden.member.grant_admin",
        Target.MEMBERSHIP,
        "Add someone with a role that may approve (approver, admin, owner), or raise "
        "someone's role to one",
        _member_raised,
        "one more person could approve what agents ask and governed changes (and an admin "
        "or owner could change the rules, keys and members)",
        "manage_workspace",
        fields=frozenset({"role", "created"}),
    ),
    GovernedOperation(
        "warden.member.invite_approver",
        Target.INVITATION,
        "Invite someone with a role that may approve",
        _member_raised,
        "once they accept, one more person could approve what agents ask",
        "manage_workspace",
        fields=frozenset({"role", "created"}),
    ),
    GovernedOperation(
        "warden.member.remove_last_approver",
        Target.MEMBERSHIP,
        "Remove or demote the last member who can approve actions",
        _member_last_approver_lost,
        "no one would be left to approve what agents ask",
        "manage_workspace",
        fields=frozenset({"role", "deleted"}),
    ),
    # Evidence
    GovernedOperation(
        "warden.evidence.remove_last_webhook",
        Target.WEBHOOK,
        "Delete or disable the only active webhook endpoint",
        _last_active_removed,
        "nobody outside Warden would hear of approvals, denials and anomalies",
        "manage_workspace",
        fields=frozenset({"enabled", "active", "deleted"}),
    ),
    GovernedOperation(
        "warden.evidence.remove_last_export",
        Target.EXPORT,
        "Delete or disable the only active audit export destination",
        _last_active_removed,
        "the outside copy of the evidence would stop growing",
        "manage_workspace",
        fields=frozenset({"enabled", "active", "deleted"}),
    ),
)

BY_NAME: dict[str, GovernedOperation] = {op.name: op for op in OPERATIONS}

# Tool changes are approved by whoever manages tools; anything else, by the strictest.
_GENERIC_PERMISSION = {Target.TOOL: "manage_tools"}


def generic_name(target: Target | str) -> str:
    return f"warden.{target}.change_governed_fields"


# Every operation name the door may grant, the generic ones included.
ALL_NAMES: frozenset[str] = frozenset(BY_NAME) | frozenset(generic_name(t) for t in Target)


def generic(target: Target | str, fields: tuple[str, ...]) -> GovernedOperation:
    """A change that does not provably narrow and that no named operation explains:
    closed world (DESIGN.md 12), it is governed all the same, naming what changed."""
    shown = ", ".join(f for f in fields if not f.startswith("_")) or "credentials"
    target = Target(target)
    return GovernedOperation(
        name=generic_name(target),
        target=target,
        title=f"Change {shown} of a {str(target).replace('_', ' ')} (does not provably narrow)",
        loosens=lambda before, after: True,
        effect="what agents may do without a human, what approvers read, what runs "
        "upstream or where notifications and evidence go could widen",
        permission=_GENERIC_PERMISSION.get(target, "manage_workspace"),
        fields=frozenset(fields),
    )


def loosening(target: Target | str, before: Snapshot, after: Snapshot) -> list[GovernedOperation]:
    """The governed operations a change from `before` to `after` amounts to: the named
    ones that match, and a generic one for whatever else does not provably narrow."""
    named = [op for op in OPERATIONS if op.target == target and op.loosens(before, after)]
    explained: set[str] = set()
    for op in named:
        explained |= op.fields
    rest = tuple(f for f in effective.widening(str(target), before, after) if f not in explained)
    return [*named, generic(target, rest)] if rest else named


def inert(target: Target | str) -> frozenset[str]:
    """Fields a save may touch alone without a check (approvals.effective)."""
    return effective.inert_fields(str(target))


def combined(operations: list[GovernedOperation]) -> GovernedOperation:
    """One request for several loosenings at once: the strictest of each rule."""
    if len(operations) == 1:
        return operations[0]
    permissions = [op.permission for op in operations]
    permission = "manage_workspace" if "manage_workspace" in permissions else permissions[0]
    return GovernedOperation(
        name=f"warden.{operations[0].target}.change",
        target=operations[0].target,
        title="; ".join(op.title for op in operations),
        loosens=lambda before, after: True,
        effect="; ".join(op.effect for op in operations),
        permission=permission,
        approvals=max(op.approvals for op in operations),
        irreversible=any(op.irreversible for op in operations),
    )
