"""The decision: a pure function of (key, workspace, tool, params, policy_version).

No I/O and no ORM queries: callers pass loaded objects (a saved Tool, or an unsaved
`Tool(**snapshot)` when replaying an old policy). Rules, in order; the first that
decides wins and is named in `Decision.rule`:

1. allowlist  - the tool is enabled and matches one of the key's allowlist patterns.
                A tool the key may not see answers exactly like a missing tool
                (`tool_not_allowed`, DESIGN.md 1), so this visibility check comes
                before the scope check: otherwise the scope error would reveal that
                a non-allowlisted tool exists.
2. scope      - the key holds `actions:<level>` (`workspace:admin` implies it).
3. writes     - write and external tools need the workspace's writes switch.
4. confirmation rule - never / always / conditional (CEL; an error denies with
                `policy_error`, never allows).
5. outbound   - external tools need confirmation unless the workspace allows outbound.
6. unattended - a key in unattended mode skips the tool's confirmation rule. It never
                lifts the outbound gate (only the workspace setting does, DESIGN.md 5)
                and never the platform's own operations (always confirmed by a human).

Platform tools (`warden.*`, filed by approvals.door) are not in any catalog: their
endpoint checks the caller's control-plane scope and the gate requires `scope` on
the principal; they skip the allowlist and the writes switch (which govern agent
actions) and always need confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from approvals.conditions import ConditionError, evaluate_condition
from approvals.summary import render_summary
from common.scopes import has_scope, scope_for_level

ALLOWED = "allowed"
DENIED = "denied"
REQUIRES_CONFIRMATION = "requires_confirmation"

WRITE_LEVELS = frozenset({"write", "external"})


@dataclass(frozen=True)
class Decision:
    outcome: str  # allowed | denied | requires_confirmation
    rule: str  # the rule that decided
    reason: str  # why, in a sentence (audit rationale)
    policy_version: int
    code: str = ""  # error code when denied
    summary: str = ""
    irreversible: bool = False
    detail: dict = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOWED

    @property
    def denied(self) -> bool:
        return self.outcome == DENIED

    @property
    def requires_confirmation(self) -> bool:
        return self.outcome == REQUIRES_CONFIRMATION


def pattern_matches(pattern: str, name: str) -> bool:
    """`*` matches all, `crm.*` matches crm.x and crm.x.y, anything else is exact."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1]) and len(name) > len(pattern) - 1
    return fnmatchcase(name, pattern) if "*" in pattern else name == pattern


def allowlisted(patterns, name: str) -> bool:
    return any(isinstance(p, str) and pattern_matches(p, name) for p in (patterns or ()))


def is_platform_tool(tool) -> bool:
    return (tool.name or "").startswith("warden.")


def _deny(code, rule, reason, version, **detail) -> Decision:
    return Decision(DENIED, rule, reason, version, code=code, detail=detail)


def confirmation_rule(key, workspace, tool, params) -> tuple[bool, str]:
    """(needs confirmation, why) from the tool's own rule; raises ConditionError."""
    if tool.confirmation == "always":
        return True, "the tool always needs confirmation"
    if tool.confirmation == "conditional":
        if evaluate_condition(
            tool.condition, params=params, key=key, workspace=workspace, tool=tool
        ):
            return True, f"condition holds: {tool.condition}"
        return False, f"condition does not hold: {tool.condition}"
    return False, "the tool needs no confirmation"


def decide(
    key, workspace, tool, params, policy_version: int, *, scope: str = "", summary: bool = True
) -> Decision:
    """Allowed, denied(code) or requires_confirmation(summary, irreversible).

    `tool` None means the tool does not exist: the same answer as a tool the key may not
    see. `scope` is the control-plane scope a platform tool needs. `summary=False` skips
    rendering the approver's summary (a replay that only counts decisions)."""
    v = policy_version
    if tool is None or not tool.enabled:
        return _deny("tool_not_allowed", "allowlist", "tool unknown or disabled", v)
    platform = is_platform_tool(tool)
    if not isinstance(params, dict):
        return _deny("validation_error", "params", "params must be a JSON object", v)

    if platform:
        if not scope or not has_scope(key.scopes, scope):
            return _deny("forbidden_by_scope", "scope", f"lacks {scope}", v, required_scope=scope)
    else:
        if not allowlisted(key.tool_allowlist, tool.name):
            return _deny("tool_not_allowed", "allowlist", "not on the key's allowlist", v)
        needed = scope_for_level(tool.level)
        if not has_scope(key.scopes, needed):
            return _deny("forbidden_by_scope", "scope", f"lacks {needed}", v, required_scope=needed)
        if tool.level in WRITE_LEVELS and not workspace.writes_enabled:
            return _deny("writes_disabled", "writes", "the workspace's writes switch is off", v)

    if not platform and (getattr(tool, "deny_condition", "") or "").strip():
        try:
            refused = evaluate_condition(
                tool.deny_condition, params=params, key=key, workspace=workspace, tool=tool
            )
        except ConditionError as exc:
            return _deny("policy_error", "deny_condition", f"deny rule failed: {exc}", v)
        if refused:
            stated = tool.deny_reason or "The tool's policy refuses this call."
            return _deny("denied_by_policy", "deny_condition", stated, v, stated=stated)

    if platform:
        needs, why, rule = True, "the platform's own operations always need a human", "platform"
    else:
        try:
            needs, why = confirmation_rule(key, workspace, tool, params)
        except ConditionError as exc:
            return _deny("policy_error", "condition", f"condition failed: {exc}", v)
        rule = "confirmation"
    if needs and key.unattended_mode and not platform:
        needs, why, rule = False, "unattended key skips the confirmation rule", "unattended"
    if not needs and tool.level == "external" and not workspace.outbound_allowed:
        needs, why, rule = True, "external effects need confirmation (outbound off)", "outbound"
    if not needs and not platform:
        floor = floor_reason(workspace, tool)
        if floor:
            needs, why, rule = True, floor, "floor"
        elif "pii" in (tool.data_classes or ()):
            why = f"{why}; reads personal data (pii): allowed and recorded"

    if not needs:
        return Decision(ALLOWED, rule, why, v)
    text = (
        render_summary(
            tool.summary_template, params, tool_name=tool.name, secret_params=tool.secret_params
        )
        if summary
        else ""
    )
    return Decision(
        REQUIRES_CONFIRMATION, rule, why, v, summary=text, irreversible=bool(tool.irreversible)
    )


SENSITIVE_WRITE_CLASSES = frozenset({"pii", "secrets", "regulated", "financial"})
SENSITIVE_READ_CLASSES = frozenset({"secrets", "regulated"})


def floor_reason(workspace, tool) -> str:
    """Why the sensitivity floor sends this call to a human ('' when it does not).
    Holds for every key, unattended ones included (DESIGN.md 10)."""
    if not getattr(workspace, "sensitivity_floor", True):
        return ""
    classes = set(tool.data_classes or ())
    if tool.irreversible:
        return "sensitivity floor: irreversible actions always reach a human"
    if tool.level in WRITE_LEVELS and classes & SENSITIVE_WRITE_CLASSES:
        touched = ", ".join(sorted(classes & SENSITIVE_WRITE_CLASSES))
        return f"sensitivity floor: {tool.level} touching {touched} reaches a human"
    if classes & SENSITIVE_READ_CLASSES:
        touched = ", ".join(sorted(classes & SENSITIVE_READ_CLASSES))
        return f"sensitivity floor: reading {touched} reaches a human"
    return ""


@dataclass(frozen=True)
class EffectiveConfirmation:
    """The rule a tool is decided under once every workspace rule is applied, and why.

    The one answer for every screen (admin tools list, posture, `GET /tools`): a tool's
    own `confirmation` field is only one input, and the floor or the outbound switch can
    make a "never" tool wait for a human every time."""

    rule: str  # never | conditional | always
    reason: str


def tool_confirmation(workspace, tool, *, unattended: bool = False) -> EffectiveConfirmation:
    """What `decide` does with this tool before seeing any params (same order of rules)."""
    if is_platform_tool(tool):
        return EffectiveConfirmation("always", "the platform's own operations need a human")
    own = tool.confirmation
    if own == "always":
        rule, reason = "always", "the tool always needs confirmation"
    elif own == "conditional":
        rule, reason = "conditional", f"when the tool's condition holds: {tool.condition}"
    else:
        rule, reason = "never", "the tool needs no confirmation"
    if unattended and rule != "never":
        rule, reason = "never", "unattended key skips the tool's confirmation rule"
    if rule != "always" and tool.level == "external" and not workspace.outbound_allowed:
        return EffectiveConfirmation(
            "always", "external effects need a human (unattended outbound is off)"
        )
    floor = floor_reason(workspace, tool)
    if rule != "always" and floor:
        return EffectiveConfirmation("always", floor)
    return EffectiveConfirmation(rule, reason)


def effective_confirmation(key, workspace, tool) -> str:
    """What GET /tools tells the key: never / always / conditional, all rules applied."""
    return tool_confirmation(workspace, tool, unattended=key.unattended_mode).rule


def scope_for_level_held(key, level: str) -> bool:
    return has_scope(key.scopes, scope_for_level(level))
