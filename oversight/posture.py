"""Posture: the risk knobs made real (issue 13, part 6).

From a workspace's real configuration and its recent traffic, how sensitive is the
data its agents touch and how autonomously may they act; the policy decision that
follows (data sensitivity x autonomy, as in the process-automation guide: "allow with
approvals: require approval gates and capture evidence"), a 0-100 risk score and the
concrete mitigations that would lower it, each naming the setting that applies it.

Reads only (a selector): six queries whatever the size of the workspace (two of
them count unreported results, shown beside the score). The score
is a pure function of `PostureInputs`, so each mitigation's effect is computed by
scoring the inputs with that one setting changed: the number shown is exactly what
applying it does (docs "Posture" documents the formula)."""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from approvals import gate
from approvals.models import ActionRequest, Tool
from keys.models import MachineKey
from oversight.unreported import unreported_results_counts
from tenants.models import Workspace
from tenants.scoping import scoped

WINDOW = timedelta(days=30)
SENSITIVE_CLASSES = ("pii", "secrets", "financial", "regulated")
ACTING_LEVELS = (Tool.Level.WRITE, Tool.Level.EXTERNAL)

# Points each exposure adds to the 0-100 risk score (docs "Posture").
WEIGHTS: dict[str, int] = {
    # data sensitivity, 50 points
    "sensitive_tools": 25,  # x share of enabled tools declaring a sensitive data class
    "sensitive_traffic": 25,  # x share of recent decisions on such tools
    # autonomy, 50 points
    "writes_enabled": 8,
    "outbound_allowed": 10,
    "live": 7,
    "floor_off": 10,
    "unattended_keys": 7,  # x share of active keys in unattended mode
    "unconfirmed_tools": 8,  # x share of enabled write/external tools with confirmation never
}
LEVELS = ("low", "high")  # of each axis, in the decision
SENSITIVITY_HIGH = 20  # of 50: sensitivity points at or above this count as "high"
AUTONOMY_HIGH = 25  # of 50: autonomy points at or above this count as "high"

DECISIONS = {
    ("low", "low"): (
        "allow",
        "Allow",
        "Little sensitive data and little autonomy: agents may act within their keys' "
        "scopes; keep the audit trail.",
    ),
    ("high", "low"): (
        "allow_with_approvals",
        "Allow with approvals",
        "Sensitive data, limited autonomy: require approval gates and capture evidence.",
    ),
    ("low", "high"): (
        "allow_with_approvals",
        "Allow with approvals",
        "Broad autonomy over mostly non-sensitive data: require approval gates for "
        "writes and outbound actions and capture evidence.",
    ),
    ("high", "high"): (
        "deny",
        "Deny",
        "Sensitive data and broad autonomy: do not run agents like this; apply the "
        "mitigations below until autonomy or sensitivity comes down.",
    ),
}


@dataclass(frozen=True)
class PostureInputs:
    """Everything the score depends on: counts and switches, no rows."""

    writes_enabled: bool
    outbound_allowed: bool
    dry_run: bool
    sensitivity_floor: bool
    active_keys: int
    unattended_keys: int
    enabled_tools: int
    sensitive_tools: int
    acting_tools: int
    unconfirmed_acting_tools: int
    decisions: int
    sensitive_decisions: int


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def traffic_share(inputs: PostureInputs) -> float:
    """Share of recent decisions touching sensitive classes; with no traffic in the
    window, the share of sensitive tools stands in (traffic follows the catalog)."""
    if inputs.decisions:
        return _share(inputs.sensitive_decisions, inputs.decisions)
    return _share(inputs.sensitive_tools, inputs.enabled_tools)


def score_parts(inputs: PostureInputs) -> dict[str, float]:
    """Points per exposure (unrounded); their sum, rounded, is the score."""
    return {
        "sensitive_tools": WEIGHTS["sensitive_tools"]
        * _share(inputs.sensitive_tools, inputs.enabled_tools),
        "sensitive_traffic": WEIGHTS["sensitive_traffic"] * traffic_share(inputs),
        "writes_enabled": WEIGHTS["writes_enabled"] * inputs.writes_enabled,
        "outbound_allowed": WEIGHTS["outbound_allowed"] * inputs.outbound_allowed,
        "live": WEIGHTS["live"] * (not inputs.dry_run),
        "floor_off": WEIGHTS["floor_off"] * (not inputs.sensitivity_floor),
        "unattended_keys": WEIGHTS["unattended_keys"]
        * _share(inputs.unattended_keys, inputs.active_keys),
        "unconfirmed_tools": WEIGHTS["unconfirmed_tools"]
        * _share(inputs.unconfirmed_acting_tools, inputs.acting_tools),
    }


SENSITIVITY_PARTS = ("sensitive_tools", "sensitive_traffic")


def score(inputs: PostureInputs) -> int:
    """The 0-100 risk score: higher means more sensitive data under more autonomy."""
    return round(sum(score_parts(inputs).values()))


def decision(inputs: PostureInputs) -> dict[str, str]:
    parts = score_parts(inputs)
    sensitivity = sum(v for k, v in parts.items() if k in SENSITIVITY_PARTS)
    autonomy = sum(v for k, v in parts.items() if k not in SENSITIVITY_PARTS)
    key = (
        "high" if sensitivity >= SENSITIVITY_HIGH else "low",
        "high" if autonomy >= AUTONOMY_HIGH else "low",
    )
    code, label, meaning = DECISIONS[key]
    return {
        "code": code,
        "label": label,
        "meaning": meaning,
        "sensitivity": key[0],
        "autonomy": key[1],
    }


# --- reading the workspace ---------------------------------------------------------


def _active_keys(workspace: Workspace, now: datetime):
    return scoped(MachineKey.objects.all(), workspace).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        revoked_at__isnull=True,
        suspended_at__isnull=True,
    )


def _never_waits(workspace: Workspace, tool: Tool) -> bool:
    """The effective rule (floor and outbound applied), as the gate and GET /tools say."""
    return gate.tool_confirmation(workspace, tool).rule == "never"


def _is_sensitive(tool: Tool) -> bool:
    return any(dc in SENSITIVE_CLASSES for dc in tool.data_classes or [])


@dataclass(frozen=True)
class _Observed:
    inputs: PostureInputs
    tools: list[Tool]
    unattended: list[MachineKey]
    traffic_by_tool: dict[Any, int]


def _observe(workspace: Workspace, now: datetime) -> _Observed:
    tools = list(
        scoped(Tool.objects.all(), workspace)
        .filter(enabled=True)
        .only("id", "name", "level", "data_classes", "confirmation", "condition", "irreversible")
        .order_by("name")
    )
    keys = list(_active_keys(workspace, now).only("id", "name", "unattended_mode").order_by("name"))
    traffic_by_tool = dict(
        scoped(ActionRequest.objects.all(), workspace)
        .filter(created_at__gte=now - WINDOW, created_at__lte=now)
        .order_by()
        .values_list("tool_id")
        .annotate(n=Count("pk"))
        .values_list("tool_id", "n")
    )
    sensitive_ids = {t.pk for t in tools if _is_sensitive(t)}
    acting = [t for t in tools if t.level in ACTING_LEVELS]
    unattended = [k for k in keys if k.unattended_mode]
    inputs = PostureInputs(
        writes_enabled=workspace.writes_enabled,
        outbound_allowed=workspace.outbound_allowed,
        dry_run=workspace.is_dry_run,
        sensitivity_floor=workspace.sensitivity_floor,
        active_keys=len(keys),
        unattended_keys=len(unattended),
        enabled_tools=len(tools),
        sensitive_tools=len(sensitive_ids),
        acting_tools=len(acting),
        unconfirmed_acting_tools=sum(1 for t in acting if _never_waits(workspace, t)),
        decisions=sum(traffic_by_tool.values()),
        sensitive_decisions=sum(n for pk, n in traffic_by_tool.items() if pk in sensitive_ids),
    )
    return _Observed(inputs, tools, unattended, traffic_by_tool)


def _admin(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def _mitigations(workspace: Workspace, observed: _Observed) -> list[dict[str, Any]]:
    """What would lower the score, biggest effect first. `points` is the exact drop:
    the score recomputed with that one change applied."""
    inputs = observed.inputs
    current = score(inputs)
    workspace_admin = _admin("tenants_workspace_change", workspace.pk)
    candidates: list[tuple[str, str, PostureInputs, dict[str, str], list[dict[str, str]]]] = []

    def add(code, title, changed, api, targets=()):
        candidates.append((code, title, changed, api, list(targets)))

    def unconfirmed_if(**settings) -> int:
        """How many acting tools would still never wait, with these workspace settings."""
        changed = copy(workspace)
        for name, value in settings.items():
            setattr(changed, name, value)
        return sum(
            1 for t in observed.tools if t.level in ACTING_LEVELS and _never_waits(changed, t)
        )

    if not inputs.sensitivity_floor:
        add(
            "sensitivity_floor_on",
            "Turn the sensitivity floor back on: irreversible actions and writes on "
            "sensitive data always reach a human.",
            replace(
                inputs,
                sensitivity_floor=True,
                unconfirmed_acting_tools=unconfirmed_if(sensitivity_floor=True),
            ),
            {
                "method": "PATCH",
                "path": "/api/v1/workspace",
                "body": '{"sensitivity_floor": true, "reason": "posture: sensitivity floor on"}',
            },
        )
    if inputs.outbound_allowed:
        add(
            "outbound_off",
            "Turn unattended outbound off: external actions (send, pay, publish) wait for a human.",
            replace(
                inputs,
                outbound_allowed=False,
                unconfirmed_acting_tools=unconfirmed_if(outbound_allowed=False),
            ),
            {
                "method": "PATCH",
                "path": "/api/v1/workspace",
                "body": '{"outbound_allowed": false, "reason": "posture: outbound off"}',
            },
        )
    unconfirmed = [
        t for t in observed.tools if t.level in ACTING_LEVELS and _never_waits(workspace, t)
    ]
    if unconfirmed:
        add(
            "confirm_acting_tools",
            "Require confirmation on the write and external tools that never ask for it.",
            replace(inputs, unconfirmed_acting_tools=0),
            {
                "method": "PATCH",
                "path": "/api/v1/tools/{id}",
                "body": '{"confirmation": "always", "reason": "posture: confirm acting tools"}',
            },
            [
                {"name": t.name, "admin_url": _admin("approvals_tool_change", t.pk)}
                for t in unconfirmed
            ],
        )
    if observed.unattended:
        add(
            "retire_unattended_keys",
            "Revoke the keys in unattended mode (create attended replacements): their "
            "requests then follow each tool's confirmation rule.",
            replace(inputs, unattended_keys=0),
            {
                "method": "POST",
                "path": "/api/v1/keys/{id}/revoke",
                "body": '{"reason": "posture: no unattended keys"}',
            },
            [
                {"name": k.name, "admin_url": _admin("keys_machinekey_change", k.pk)}
                for k in observed.unattended
            ],
        )
    # Idle relative to the rest of the workspace: without any traffic in the window
    # every tool would look idle, and "disable everything" is no advice.
    idle_sensitive = [
        t
        for t in observed.tools
        if inputs.decisions and _is_sensitive(t) and not observed.traffic_by_tool.get(t.pk)
    ]
    if idle_sensitive:
        add(
            "disable_idle_sensitive_tools",
            "Disable the tools touching sensitive data that had no traffic in the last "
            f"{WINDOW.days} days (a smaller tool boundary).",
            replace(
                inputs,
                enabled_tools=inputs.enabled_tools - len(idle_sensitive),
                sensitive_tools=inputs.sensitive_tools - len(idle_sensitive),
                acting_tools=inputs.acting_tools
                - sum(1 for t in idle_sensitive if t.level in ACTING_LEVELS),
                unconfirmed_acting_tools=inputs.unconfirmed_acting_tools
                - sum(1 for t in idle_sensitive if t in unconfirmed),
            ),
            {
                "method": "PATCH",
                "path": "/api/v1/tools/{id}",
                "body": '{"enabled": false, "reason": "posture: idle sensitive tool"}',
            },
            [
                {"name": t.name, "admin_url": _admin("approvals_tool_change", t.pk)}
                for t in idle_sensitive
            ],
        )
    if not inputs.dry_run:
        add(
            "back_to_dry_run",
            "Return the workspace to dry run: allowed actions are answered "
            '"dry_run": true and nothing is done for real.',
            replace(inputs, dry_run=True),
            {
                "method": "PATCH",
                "path": "/api/v1/workspace",
                "body": '{"mode": "dry_run", "reason": "posture: back to dry run"}',
            },
        )
    if inputs.writes_enabled:
        add(
            "writes_off",
            "Turn the writes switch off: write and external tools are refused (writes_disabled).",
            replace(inputs, writes_enabled=False),
            {
                "method": "PATCH",
                "path": "/api/v1/workspace",
                "body": '{"writes_enabled": false, "reason": "posture: writes off"}',
            },
        )
    mitigations = []
    for code, title, changed, api, targets in candidates:
        points = current - score(changed)
        if points <= 0:
            continue
        mitigations.append(
            {
                "code": code,
                "title": title,
                "points": points,
                "score_after": current - points,
                "admin_url": workspace_admin if not targets else targets[0]["admin_url"],
                "api": api,
                "targets": targets,
            }
        )
    mitigations.sort(key=lambda m: (-m["points"], m["code"]))
    return mitigations


def posture_build(*, workspace: Workspace, now: datetime | None = None) -> dict[str, Any]:
    """The workspace's posture as JSON-ready data (API, admin page, privacy PDF)."""
    now = now or timezone.now()
    observed = _observe(workspace, now)
    inputs = observed.inputs
    parts = score_parts(inputs)
    by_class = {dc: [] for dc in (*SENSITIVE_CLASSES, "none")}
    for tool in observed.tools:
        classes = [dc for dc in tool.data_classes or [] if dc in SENSITIVE_CLASSES]
        for dc in classes or ["none"]:
            by_class[dc].append(tool.name)
    acting = [t for t in observed.tools if t.level in ACTING_LEVELS]
    return {
        "workspace": {"id": str(workspace.pk), "slug": workspace.slug, "name": workspace.name},
        "computed_at": now.isoformat(),
        "window_days": WINDOW.days,
        "score": score(inputs),
        "decision": decision(inputs),
        "sensitivity": {
            "points": round(sum(parts[k] for k in SENSITIVITY_PARTS), 1),
            "tools_by_data_class": [
                {"data_class": dc, "tools": names} for dc, names in by_class.items()
            ],
            "enabled_tools": inputs.enabled_tools,
            "sensitive_tools": inputs.sensitive_tools,
            "decisions": inputs.decisions,
            "sensitive_decisions": inputs.sensitive_decisions,
            "sensitive_traffic_share": round(traffic_share(inputs), 4),
        },
        "autonomy": {
            "points": round(sum(v for k, v in parts.items() if k not in SENSITIVITY_PARTS), 1),
            "writes_enabled": inputs.writes_enabled,
            "outbound_allowed": inputs.outbound_allowed,
            "dry_run": inputs.dry_run,
            "sensitivity_floor": inputs.sensitivity_floor,
            "active_keys": inputs.active_keys,
            "unattended_keys": [{"id": str(k.pk), "name": k.name} for k in observed.unattended],
            "acting_tools": inputs.acting_tools,
            "tools_confirmation_never": [t.name for t in acting if _never_waits(workspace, t)],
        },
        "score_parts": [
            {"factor": name, "weight": WEIGHTS[name], "points": round(points, 2)}
            for name, points in parts.items()
        ],
        "mitigations": _mitigations(workspace, observed),
        # Evidence gaps, beside the score (they do not change it): allowed actions whose
        # result was never reported (oversight.unreported).
        "unreported_results": unreported_results_counts(workspace),
    }
