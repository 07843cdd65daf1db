"""Closed world (DESIGN.md principle 12): does a change provably narrow?

Every concrete field of every policy-bearing model has exactly one rule here:

- **inert**: bookkeeping that the gate, the gateway, the notifications and the evidence
  never read (with the reason);
- part of one **facet** of the object's effective permissions (who may call it, with how
  many humans, what approvers read, what runs upstream, where evidence goes...). A facet
  has one comparator `(before, after) -> bool` over the whole snapshots, True only when
  the change provably narrows that facet. A facet whose comparator is `unchanged` is
  *governed*: any change to it needs a second human.

A change narrows only if no facet it touches grows. Creation and deletion are judged
per target (`CREATION`, `DELETION`). A snapshot key that no rule names counts as
governed, and tests/approvals/test_classification.py fails when a model field has no
rule, so a field added later cannot slip through. Conditions are never evaluated here:
a new or changed condition that could allow without a human is a loosening.

Pure: snapshots in, field names out. `approvals.governance.loosening` turns the result
into governed operations for the door and the guard alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from uuid import UUID

from approvals import projection
from common.scopes import ALL_SCOPES

Snapshot = dict[str, Any] | None
Comparator = Callable[[dict[str, Any], dict[str, Any]], bool]

# Targets (the values of approvals.governance.Target), spelled out to keep this pure.
TOOL = "tool"
KEY = "machine_key"
WORKSPACE = "workspace"
MEMBERSHIP = "membership"
INVITATION = "invitation"
WEBHOOK = "webhook_endpoint"
EXPORT = "export_destination"
AUTOMATION = "automation_settings"
CONNECTOR = "connector"


@dataclass(frozen=True)
class Facet:
    name: str  # what it means for agents and evidence, for people
    fields: tuple[str, ...]  # snapshot keys it covers (model fields and derived keys)
    narrows: Comparator
    rule: str  # the comparator in words (docs table)


@dataclass(frozen=True)
class Inert:
    reason: str


# --- comparators ---------------------------------------------------------------------------


def _get(snap: dict, key: str, default: Any = None) -> Any:
    value = snap.get(key, default)
    return default if value is None and default is not None else value


def unchanged(*keys: str) -> Comparator:
    def same(before: dict, after: dict) -> bool:
        return all(before.get(k) == after.get(k) for k in keys)

    return same


def switched_off(key: str) -> Comparator:
    """True -> False narrows (enabled, writes, outbound...)."""
    return lambda before, after: not after.get(key) or bool(before.get(key))


def switched_on(key: str) -> Comparator:
    """False -> True narrows (floor, two approvals, irreversible...)."""
    return lambda before, after: bool(after.get(key)) or not before.get(key)


def ranked_up(key: str, rank: dict[str, int]) -> Comparator:
    """The rank never drops; an unknown value counts as the lowest after, highest before."""

    def up(before: dict, after: dict) -> bool:
        return rank.get(after.get(key), -1) >= rank.get(before.get(key), len(rank))

    return up


def subset(key: str) -> Comparator:
    """The set after is within the set before (hosts, header names...)."""
    return lambda before, after: set(after.get(key) or []) <= set(before.get(key) or [])


def superset(key: str) -> Comparator:
    """Nothing lost (data classes, secret params, custody)."""
    return lambda before, after: set(before.get(key) or []) <= set(after.get(key) or [])


def _number(value: Any) -> float | None:
    """Instants in whole seconds: forms drop microseconds, which decide nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return float(int(value.timestamp()))
    if isinstance(value, str):
        return float(int(datetime.fromisoformat(value).timestamp()))
    return float(value)


def lower(key: str, *, none_means: float | None = None) -> Comparator:
    """The number (or instant) after is not higher (rate, TTL, expiry: None = never)."""

    def not_higher(before: dict, after: dict) -> bool:
        was, now = _number(before.get(key)), _number(after.get(key))
        was = none_means if was is None else was
        now = none_means if now is None else now
        if now is None:
            return was is None
        return was is None or now <= was

    return not_higher


def higher(key: str) -> Comparator:
    """The number (or instant) after is not lower; None means forever (retention) or
    not set."""

    def not_lower(before: dict, after: dict) -> bool:
        was, now = _number(before.get(key)), _number(after.get(key))
        if now is None:
            return True
        return was is not None and now >= was

    return not_lower


def set_once(key: str) -> Comparator:
    """None -> a value narrows (suspended, revoked); the value never goes away."""
    return lambda before, after: not before.get(key) or bool(after.get(key))


def _both(*comparators: Comparator) -> Comparator:
    return lambda before, after: all(c(before, after) for c in comparators)


# --- tools ---------------------------------------------------------------------------------

CONFIRMATION_RANK = {"never": 0, "conditional": 1, "always": 2}
LEVEL_RANK = {"read": 0, "write": 1, "external": 2}


def _humans(before: dict, after: dict) -> bool:
    """How often a human is asked. never < conditional < always; a conditional rule
    narrows only from `never` or with the same condition (never evaluated)."""
    was, now = before.get("confirmation"), after.get("confirmation")
    if now == "always":
        return True
    if now == "never":
        return was == "never"
    if now == "conditional":
        if was == "never":
            return True
        return (
            was == "conditional"
            and (before.get("condition") or "").strip() == (after.get("condition") or "").strip()
        )
    return False


def _deny_rule(before: dict, after: dict) -> bool:
    """Adding a deny rule where there was none narrows; changing or removing one does
    not (conditions are never evaluated)."""
    was = (before.get("deny_condition") or "").strip()
    now = (after.get("deny_condition") or "").strip()
    if was == now:
        return before.get("deny_reason") == after.get("deny_reason") or bool(now)
    return not was and bool(now)


def _unchanged_or_ends_disabled(*keys: str) -> Comparator:
    """Unchanged, or the tool ends disabled: a connector sync flagging an upstream
    change reaches no agent and no approver until re-enabling (governed) is reviewed."""
    same = unchanged(*keys)
    return lambda before, after: same(before, after) or not after.get("enabled")


def _output_read(before: dict, after: dict) -> bool:
    """What of a result the agent reads (approvals.projection): adding a projection, or
    dropping and narrowing its paths, narrows; removing or widening it is governed."""
    return projection.narrows(before.get("output_projection"), after.get("output_projection"))


TOOL_FACETS = (
    Facet("callable", ("enabled",), switched_off("enabled"), "enabled True -> False"),
    Facet(
        "who may call it (allowlists match its name)",
        ("name",),
        unchanged("name"),
        "governed",
    ),
    Facet("level", ("level",), ranked_up("level", LEVEL_RANK), "read < write < external: raised"),
    Facet(
        "how many humans: confirmation",
        ("confirmation", "condition"),
        _humans,
        "never < conditional < always: raised; a condition changed or new from "
        "conditional/always: governed",
    ),
    Facet(
        "sensitivity floor: irreversible",
        ("irreversible",),
        switched_on("irreversible"),
        "False -> True",
    ),
    Facet(
        "sensitivity floor: data classes", ("data_classes",), superset("data_classes"), "superset"
    ),
    Facet(
        "deny rule",
        ("deny_condition", "deny_reason"),
        _deny_rule,
        "added where there was none; any other change governed",
    ),
    Facet("secret parameters", ("secret_params",), superset("secret_params"), "superset"),
    Facet(
        "arguments accepted",
        ("input_schema",),
        _unchanged_or_ends_disabled("input_schema"),
        "governed unless the tool ends disabled",
    ),
    Facet(
        "what approvers read",
        ("summary_template", "description"),
        _unchanged_or_ends_disabled("summary_template", "description"),
        "governed unless the tool ends disabled",
    ),
    Facet(
        "what runs upstream (the connector and upstream tool bound at import)",
        ("connector", "upstream_name"),
        unchanged("connector", "upstream_name"),
        "governed",
    ),
    Facet(
        "the reviewed upstream definition",
        ("upstream_digest", "output_schema", "upstream_annotations"),
        _unchanged_or_ends_disabled("upstream_digest", "output_schema", "upstream_annotations"),
        "governed unless the tool ends disabled",
    ),
    Facet("tenant", ("workspace",), unchanged("workspace"), "governed"),
    Facet(
        "dry run (allowed calls must not run for real)",
        ("dry_run",),
        switched_on("dry_run"),
        "False -> True (into dry run narrows; out of it is governed)",
    ),
    Facet(
        "what of a result the agent reads (output projection)",
        ("output_projection",),
        _output_read,
        "added, or every path covered by one before; removed or widened: governed",
    ),
)
_SHADOW = (
    "a shadow rule is only recorded beside the live decision, never enforced: the gate, "
    "the gateway and approvers act on the live rule alone (promoting it is a change to "
    "confirmation/condition or the deny rule, judged there)"
)
TOOL_INERT = {
    "shadow_confirmation": Inert(_SHADOW),
    "shadow_condition": Inert(_SHADOW),
    "shadow_deny_condition": Inert(_SHADOW),
    "shadow_deny_reason": Inert(_SHADOW),
    "subject_param": Inert(
        "names which parameter's keyed digest finds a data subject for erasure; the gate, "
        "the gateway and approvers never read it, and every value is sealed either way"
    ),
    "id": Inert("identity; never changes"),
    "created_at": Inert("bookkeeping"),
    "updated_at": Inert("bookkeeping"),
}

# --- machine keys ---------------------------------------------------------------------------


def _scopes(before: dict, after: dict) -> bool:
    """What the scopes allow, not their spelling: `workspace:admin` implies all."""

    def allowed(scopes) -> set[str]:
        granted = set(scopes or [])
        return granted | set(ALL_SCOPES) if "workspace:admin" in granted else granted

    return allowed(after.get("scopes")) <= allowed(before.get("scopes"))


def _pattern_covered(pattern: str, by: list[str]) -> bool:
    for own in by:
        if own in ("*", pattern):
            return True
        if own.endswith(".*") and pattern.startswith(own[:-1]):
            return True
        if "*" in own and "*" not in pattern and fnmatchcase(pattern, own):
            return True
    return False


def _allowlist(before: dict, after: dict) -> bool:
    """Every pattern after is covered by one before (`crm.*` covers `crm.lookup`)."""
    was = list(before.get("tool_allowlist") or [])
    return all(_pattern_covered(p, was) for p in after.get("tool_allowlist") or [])


def _ip_ranges(before: dict, after: dict) -> bool:
    """Every range after lies within one before; empty means any address."""
    was, now = before.get("allowed_ips") or [], after.get("allowed_ips") or []
    if not now:
        return not was
    if not was:
        return True
    try:
        own = [ipaddress.ip_network(c, strict=False) for c in was]
        return all(
            any(
                (n := ipaddress.ip_network(c, strict=False)).version == o.version and n.subnet_of(o)
                for o in own
            )
            for c in now
        )
    except ValueError:
        return False


KEY_FACETS = (
    Facet("scopes", ("scopes",), _scopes, "what they allow is a subset (admin implies all)"),
    Facet(
        "tool allowlist",
        ("tool_allowlist",),
        _allowlist,
        "every pattern covered by one before",
    ),
    Facet(
        "unattended (skips confirmation rules)",
        ("unattended_mode",),
        switched_off("unattended_mode"),
        "True -> False",
    ),
    Facet("expiry", ("expires_at",), lower("expires_at"), "earlier (none: never expires)"),
    Facet("suspension", ("suspended_at",), set_once("suspended_at"), "suspended; lifting governed"),
    Facet("revocation", ("revoked_at",), set_once("revoked_at"), "revoked; never un-revoked"),
    Facet(
        "IP ranges",
        ("allowed_ips",),
        _ip_ranges,
        "every range within one before (empty: any address)",
    ),
    Facet("rate", ("rate_limit_per_minute",), lower("rate_limit_per_minute"), "lower"),
    Facet("name (conditions read key.name)", ("name",), unchanged("name"), "governed"),
    Facet(
        "four eyes: owner",
        ("owner",),
        unchanged("owner"),
        "governed",
    ),
    Facet(
        "four eyes: chain of custody",
        ("custody_user_ids",),
        superset("custody_user_ids"),
        "superset (more people barred from approving)",
    ),
    Facet("tenant", ("workspace",), unchanged("workspace"), "governed"),
    Facet(
        "how it authenticates (a secret, or an OAuth client's tokens)",
        ("credential", "oauth_application"),
        unchanged("credential", "oauth_application"),
        "governed",
    ),
)
_CREDENTIAL = (
    "credential material: which secret authenticates, never what the key may do; "
    "rotation is audited by keys.services"
)
KEY_INERT = {
    "id": Inert("identity; never changes"),
    "prefix": Inert(_CREDENTIAL),
    "digest": Inert(_CREDENTIAL),
    "previous_digest": Inert(_CREDENTIAL),
    "previous_valid_until": Inert(_CREDENTIAL),
    "secret_pending": Inert(_CREDENTIAL),
    "created_by": Inert("label of the creator, for people"),
    "created_by_user": Inert("bookkeeping; four eyes reads custody_user_ids"),
    "minted_by": Inert("bookkeeping; four eyes reads custody_user_ids"),
    "revoked_by": Inert("label of who revoked, for people"),
    "created_at": Inert("bookkeeping"),
    "last_used_at": Inert("bookkeeping (written at most once a minute)"),
}

# --- workspace settings ----------------------------------------------------------------------

WORKSPACE_FACETS = (
    Facet("writes switch", ("writes_enabled",), switched_off("writes_enabled"), "True -> False"),
    Facet(
        "outbound without confirmation",
        ("outbound_allowed",),
        switched_off("outbound_allowed"),
        "True -> False",
    ),
    Facet(
        "mode",
        ("mode",),
        lambda before, after: after.get("mode") != "live" or before.get("mode") == "live",
        "live -> dry_run",
    ),
    Facet("end of the dry run", ("live_after",), higher("live_after"), "later"),
    Facet(
        "confirmation TTL",
        ("confirmation_ttl", "confirmation_ttl_seconds"),
        lower("confirmation_ttl_seconds"),
        "shorter",
    ),
    Facet(
        "two approvals for irreversible actions",
        ("require_two_approvals_for_irreversible",),
        switched_on("require_two_approvals_for_irreversible"),
        "False -> True",
    ),
    Facet(
        "sensitivity floor",
        ("sensitivity_floor",),
        switched_on("sensitivity_floor"),
        "False -> True",
    ),
    Facet(
        "audit retention",
        ("audit_retention_days",),
        higher("audit_retention_days"),
        "longer (empty: forever)",
    ),
    Facet(
        "plain-copy retention",
        ("plain_copy_retention_days",),
        higher("plain_copy_retention_days"),
        "longer (empty: forever)",
    ),
    Facet(
        "condition inputs (workspace.slug, workspace.plan_rank)",
        ("slug", "plan_rank"),
        unchanged("slug", "plan_rank"),
        "governed (conditions are never evaluated)",
    ),
    Facet("existence", ("deleted_at", "deleted"), unchanged("deleted_at", "deleted"), "governed"),
)
WORKSPACE_INERT = {
    "id": Inert("identity; never changes"),
    "name": Inert("label for people; no condition, rule or summary reads it"),
    "created_at": Inert("bookkeeping"),
    "policy_version": Inert("bumped on every catalog change; recorded, never compared"),
}

# --- members and invitations --------------------------------------------------------------------

# What each role may do, highest first (tenants.models.ROLE_PERMISSIONS, as ranks).
ROLE_RANK = {"member": 0, "auditor": 1, "approver": 2, "admin": 3, "owner": 4}

PRIVILEGED = frozenset({"owner", "admin"})
# Roles that may approve what agents ask and governed changes: "who may approve".
APPROVING = frozenset({"owner", "admin", "approver"})


def _role(before: dict, after: dict) -> bool:
    """Lowered, or to a role that may not approve; raising someone to approver, admin or
    owner grows who may approve (four eyes counts on that person) and is governed."""
    now, was = after.get("role"), before.get("role")
    return ROLE_RANK.get(now, 9) <= ROLE_RANK.get(was, -1) or now not in APPROVING


MEMBERSHIP_FACETS = (
    Facet("role", ("role",), _role, "lowered, or to a role that may not approve"),
    Facet("who", ("user", "workspace"), unchanged("user", "workspace"), "governed"),
)
MEMBERSHIP_INERT = {"id": Inert("identity"), "created_at": Inert("bookkeeping")}


def _answered(before: dict, after: dict) -> bool:
    """An open invitation answered once closes it (it can no longer be accepted); the
    membership accepting creates was judged when the invitation was offered. Re-opening
    or re-answering is governed."""
    return all(
        not before.get(k) or before.get(k) == after.get(k) for k in ("accepted_at", "declined_at")
    ) and not (after.get("accepted_at") and after.get("declined_at"))


INVITATION_FACETS = (
    Facet("role offered", ("role",), _role, "lowered, or to a role that may not approve"),
    Facet("who", ("user", "workspace"), unchanged("user", "workspace"), "governed"),
    Facet("open until", ("expires_at",), lower("expires_at"), "earlier"),
    Facet(
        "answered",
        ("accepted_at", "declined_at"),
        _answered,
        "answered once (accepting joins with the role already judged); never re-opened",
    ),
)
INVITATION_INERT = {
    "id": Inert("identity"),
    "invited_by": Inert("label for people"),
    "created_at": Inert("bookkeeping"),
}

# --- where notifications and evidence go -------------------------------------------------

WEBHOOK_FACETS = (
    Facet("destination", ("url",), unchanged("url"), "governed"),
    Facet("events sent", ("events",), unchanged("events"), "governed"),
    Facet("switched on", ("enabled",), unchanged("enabled"), "governed"),
    Facet("tenant", ("workspace",), unchanged("workspace"), "governed"),
)
_DELIVERY_FAULT = "set by delivery after repeated failures (a fault, not a choice)"
_SIGNING = (
    "signing secret: rotation changes how deliveries are signed, never where they go; "
    "issued once and audited"
)
WEBHOOK_INERT = {
    "id": Inert("identity"),
    "name": Inert("label for people"),
    "secret": Inert(_SIGNING),
    "consecutive_failures": Inert(_DELIVERY_FAULT),
    "disabled_at": Inert(_DELIVERY_FAULT),
    "disabled_reason": Inert(_DELIVERY_FAULT),
    "created_by": Inert("label for people"),
    "created_at": Inert("bookkeeping"),
}

EXPORT_FACETS = (
    Facet(
        "destination of signed checkpoints",
        ("kind", "directory", "url"),
        unchanged("kind", "directory", "url"),
        "governed",
    ),
    Facet("switched on", ("enabled",), unchanged("enabled"), "governed"),
    # Every format keeps the chained row, but the customer's collector and verification
    # are set up for one: switching it changes what their copy can check and ingest.
    Facet(
        "format of the customer's copy (JSONL, OCSF, syslog)",
        ("format",),
        unchanged("format"),
        "governed",
    ),
    Facet("tenant", ("workspace",), unchanged("workspace"), "governed"),
)
_CURSOR = "export progress, written by the exporter"
EXPORT_INERT = {
    "batch_size": Inert("rows per batch: how, not where or whether"),
    "secret": Inert(_SIGNING),
    "last_exported_seq": Inert(_CURSOR),
    "last_success_at": Inert(_CURSOR),
    "last_attempt_at": Inert(_CURSOR),
    "last_error": Inert(_CURSOR),
    "consecutive_failures": Inert(_CURSOR),
    "created_at": Inert("bookkeeping"),
}

AUTOMATION_FACETS = (
    Facet(
        "outbound hosts",
        ("webhook_host_allowlist",),
        subset("webhook_host_allowlist"),
        "subset",
    ),
    Facet(
        "anomaly auto-suspend",
        ("anomaly_auto_suspend",),
        switched_on("anomaly_auto_suspend"),
        "False -> True",
    ),
    Facet(
        "approver e-mail",
        ("email_notifications",),
        switched_on("email_notifications"),
        "False -> True",
    ),
    Facet(
        "reminding approvers of an undecided request",
        ("approval_remind_after_minutes",),
        lower("approval_remind_after_minutes"),
        "sooner (empty: never)",
    ),
    Facet(
        "escalating an undecided request",
        ("approval_escalate_after_minutes",),
        lower("approval_escalate_after_minutes"),
        "sooner (empty: never)",
    ),
    Facet(
        # Per-request e-mail (empty) is the promptest; a digest, or a longer interval,
        # makes approvers hear later: governed like turning approver e-mail off.
        "approver e-mail as a digest",
        ("approval_digest_minutes",),
        lower("approval_digest_minutes", none_means=0),
        "shorter interval, or back to one e-mail per request",
    ),
    Facet(
        # The evidence of what happened on the ask-only path: flagging later, or never,
        # lets an agent that does not report go unnoticed for longer.
        "flagging an allowed action whose result is never reported",
        ("unreported_result_window_minutes",),
        lower("unreported_result_window_minutes"),
        "sooner (empty: never)",
    ),
    Facet(
        "who an escalation reaches",
        ("approval_escalate_to",),
        unchanged("approval_escalate_to"),
        "governed",
    ),
    # Slack: where approver messages go and whose presses count. Switching it off
    # narrows (an incident kill switch; the queue and e-mail still reach approvers);
    # turning it on, re-pointing it or replacing the bot token is governed.
    Facet("Slack approvals", ("slack_enabled",), switched_off("slack_enabled"), "True -> False"),
    Facet(
        "where Slack approver messages go and whose presses count",
        ("slack_team_id", "slack_channel", "slack_dm_approvers", "slack_bot_token_encrypted"),
        unchanged(
            "slack_team_id", "slack_channel", "slack_dm_approvers", "slack_bot_token_encrypted"
        ),
        "governed",
    ),
    Facet("tenant", ("workspace",), unchanged("workspace"), "governed"),
)
AUTOMATION_INERT = {"updated_at": Inert("bookkeeping")}

# --- connectors ---------------------------------------------------------------------------------


def _credentials(before: dict, after: dict) -> bool:
    """Only dropping headers narrows: a value added or replaced is another principal."""
    was = before.get("_header_fingerprints") or {}
    now = after.get("_header_fingerprints") or {}
    return all(was.get(name) == digest for name, digest in now.items()) and set(
        after.get("header_names") or []
    ) <= set(before.get("header_names") or [])


def _declared(before: dict, after: dict) -> bool:
    was = before.get("declared_tools") or []
    return all(t in was for t in after.get("declared_tools") or [])


CONNECTOR_FACETS = (
    Facet(
        "what runs upstream (its name prefixes its tools)",
        ("name", "kind", "url"),
        unchanged("name", "kind", "url"),
        "governed",
    ),
    Facet(
        "upstream credentials",
        (
            "headers_encrypted",
            "header_names",
            "_header_fingerprints",
            "new_credentials",
            "credential_references",
        ),
        _credentials,
        "headers dropped only",
    ),
    Facet("tools it offers", ("declared_tools",), _declared, "subset"),
    Facet("callable", ("enabled",), switched_off("enabled"), "True -> False"),
    Facet("tenant", ("workspace",), unchanged("workspace"), "governed"),
)
CONNECTOR_INERT = {
    "id": Inert("identity"),
    "created_at": Inert("bookkeeping"),
    "updated_at": Inert("bookkeeping"),
    "last_synced_at": Inert("bookkeeping"),
}

# --- the table -----------------------------------------------------------------------------------

FACETS: dict[str, tuple[Facet, ...]] = {
    TOOL: TOOL_FACETS,
    KEY: KEY_FACETS,
    WORKSPACE: WORKSPACE_FACETS,
    MEMBERSHIP: MEMBERSHIP_FACETS,
    INVITATION: INVITATION_FACETS,
    WEBHOOK: WEBHOOK_FACETS,
    EXPORT: EXPORT_FACETS,
    AUTOMATION: AUTOMATION_FACETS,
    CONNECTOR: CONNECTOR_FACETS,
}
INERT: dict[str, dict[str, Inert]] = {
    TOOL: TOOL_INERT,
    KEY: KEY_INERT,
    WORKSPACE: WORKSPACE_INERT,
    MEMBERSHIP: MEMBERSHIP_INERT,
    INVITATION: INVITATION_INERT,
    WEBHOOK: WEBHOOK_INERT,
    EXPORT: EXPORT_INERT,
    AUTOMATION: AUTOMATION_INERT,
    CONNECTOR: CONNECTOR_INERT,
}
# Snapshot keys that are context for the named operations' predicates (how many others
# may approve, how many other destinations are active), or labels: never a change.
# `active` is `enabled` minus a delivery fault (`disabled_at`): judged through those.
CONTEXT_KEYS = frozenset({"other_approvers", "other_members", "other_active", "prefix", "active"})

# Creating an object: True when the new object grows no facet. A target missing here is
# judged on creation only by its named operations (approvals.governance): a key is
# never wider than its minter (keys.services.check_mintable) and governance scopes or
# unattended mode are governed; a membership with a privileged role is governed.
CREATION: dict[str, Callable[[dict[str, Any]], bool]] = {
    TOOL: lambda after: not after.get("enabled", True),
    # A new destination sends notifications or evidence somewhere new: it narrows only
    # when it is created switched off (it sends nothing). The doors create it off at once
    # (its signing secret reaches the proposer) and file switching it on for a second
    # human (notifications.admin, approvals.effective_doors).
    WEBHOOK: lambda after: not after.get("enabled", True),
    EXPORT: lambda after: not after.get("enabled", True),
    AUTOMATION: lambda after: True,  # the row holds the defaults; changes are judged as edits
    # Who may approve grows with a member or an invitation whose role may approve; the
    # founding owner of a new workspace (no other member) excepted.
    MEMBERSHIP: lambda after: (
        after.get("role") not in APPROVING or after.get("other_members", 1) == 0
    ),
    INVITATION: lambda after: after.get("role") not in APPROVING,
}
# Deleting an object: True when it narrows (it can no longer be called or used).
# Removing where notifications or evidence go is governed.
DELETION: dict[str, bool] = {
    TOOL: True,
    KEY: True,
    WORKSPACE: False,
    MEMBERSHIP: True,  # the last approver is a named operation
    INVITATION: True,
    WEBHOOK: False,
    EXPORT: False,
    AUTOMATION: False,
    CONNECTOR: True,
}


def json_value(value: Any) -> Any:
    """A field value as the JSON snapshots hold (instants ISO, durations in seconds)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, UUID):
        return str(value)
    return value


# Snapshot keys computed from fields (not fields themselves): left out of the table.
DERIVED_KEYS = frozenset({"active", "deleted", "confirmation_ttl_seconds", "new_credentials"})


def facet_of(target: str, key: str) -> Facet | None:
    for facet in FACETS.get(target, ()):
        if key in facet.fields:
            return facet
    return None


def inert_fields(target: str) -> frozenset[str]:
    return frozenset(INERT.get(target, {}))


def widening(target: str, before: Snapshot, after: Snapshot) -> tuple[str, ...]:
    """The snapshot keys whose change does not provably narrow, sorted; empty when the
    change narrows (or changes nothing the gate, gateway, notifications or evidence
    read). `created` / `deleted` stand for a creation or deletion that does not narrow."""
    if before is None and after is None:
        return ()
    if before is None:
        judge = CREATION.get(target)
        return () if judge is None or judge(after) else ("created",)
    if after is None:
        return () if DELETION.get(target, False) else ("deleted",)
    grown: set[str] = set()
    inert = inert_fields(target)
    for key in set(before) | set(after):
        if key in inert or key in CONTEXT_KEYS or before.get(key) == after.get(key):
            continue
        facet = facet_of(target, key)
        if facet is None or not facet.narrows(before, after):
            grown.add(key)  # what is not classified is governed
    return tuple(sorted(grown))


def classification_rows() -> list[tuple[str, str, str, str]]:
    """(target, field, facet or "inert", rule or reason): the documentation table."""
    rows = []
    for target, facets in FACETS.items():
        for facet in facets:
            for key in facet.fields:
                if key.startswith("_") or key in (
                    "active",
                    "deleted",
                    "confirmation_ttl_seconds",
                    "new_credentials",
                ):
                    continue
                rows.append((target, key, facet.name, facet.rule))
        for key, inert in INERT[target].items():
            rows.append((target, key, "inert", inert.reason))
    return rows


def classification_markdown() -> str:
    """The documentation's classification table, generated (a test holds the docs to it)."""
    lines = ["| target | field | facet | narrows when (or why inert) |", "|---|---|---|---|"]
    lines += [f"| {t} | `{f}` | {facet} | {rule} |" for t, f, facet, rule in classification_rows()]
    return "\n".join(lines)
