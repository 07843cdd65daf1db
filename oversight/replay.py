"""Replay a recorded action: the decision under the policy recorded at the time, and
under today's policy, side by side (`python manage.py audit_replay ACTION_ID`).

"The policy at the time" is rebuilt from VersionLog rows, never from current state:
- the tool: the latest version log of a tool by that name with
  policy_version <= the action's recorded policy_version (`after` is
  `Tool.snapshot()`, so `Tool(**after)` is a valid input to decide());
- the key and the workspace settings: their latest version log written at or before
  the action (`MachineKey.snapshot()` / `Workspace.settings_snapshot()`).
When no version log survives (retention), the current object stands in and the
report says so. Params are the stored ones: secret params are digests, which only
matters to a condition that reads a secret param (also reported).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q

from approvals import gate
from approvals.models import ActionRequest, Tool
from audit.models import VersionLog
from common.errors import WardenError


@dataclass
class ReplayedDecision:
    label: str
    policy_version: int | None
    outcome: str
    code: str = ""
    rule: str = ""
    reason: str = ""
    tool: dict | None = None  # the tool snapshot used; None: not in the catalog
    sources: dict = field(default_factory=dict)  # what each input was rebuilt from


@dataclass
class ReplayReport:
    action_id: str
    tool_name: str
    requested_by: str
    created_at: str
    recorded: dict
    then: ReplayedDecision | None
    now: ReplayedDecision | None
    notes: list[str] = field(default_factory=list)
    # What the params were replayed from: "sealed copy" (opened; its digest is the one in
    # the chain), "erased" (data key destroyed), "pruned" (minimisation), "plain", "none".
    params: str = "plain"

    @property
    def changed(self) -> bool:
        if self.then is None or self.now is None:
            return False
        return (self.then.outcome, self.then.code) != (self.now.outcome, self.now.code)

    @property
    def matches_record(self) -> bool:
        if self.then is None:
            return False
        return (self.then.outcome, self.then.code) == (
            self.recorded["decision"],
            self.recorded["denial_code"],
        )


def _latest_log(workspace, target_type: str, **filters) -> VersionLog | None:
    return (
        VersionLog.objects.filter(workspace=workspace, target_type=target_type, **filters)
        .order_by("-created_at", "-id")
        .first()
    )


def tool_snapshot_as_of(workspace, tool_name: str, policy_version: int) -> tuple[dict | None, str]:
    """(snapshot or None, source) of the tool named `tool_name` at `policy_version`."""
    named = Q(after__name=tool_name) | Q(before__name=tool_name)
    log = (
        VersionLog.objects.filter(
            named, workspace=workspace, target_type="tool", policy_version__lte=policy_version
        )
        .order_by("-policy_version", "-id")
        .first()
    )
    if log is None:
        return None, "no version log"
    after = log.after
    if isinstance(after, dict) and after.get("name") == tool_name:
        return after, f"version log #{log.audit_entry.seq} (policy v{log.policy_version})"
    return None, f"removed or renamed by version log #{log.audit_entry.seq}"


def _tool_from_snapshot(workspace, snapshot: dict | None):
    if snapshot is None:
        return None
    known = {f.name for f in Tool._meta.get_fields()}
    return Tool(workspace=workspace, **{k: v for k, v in snapshot.items() if k in known})


def key_as_of(key, when) -> tuple[Any, str]:
    """A detached copy of `key` carrying its recorded state at `when`."""
    log = _latest_log(key.workspace, "machine_key", target_id=str(key.pk), created_at__lte=when)
    if log is None or not isinstance(log.after, dict):
        return key, "current key (no version log)"
    then = copy.copy(key)
    then._state = copy.copy(key._state)
    for name in ("name", "scopes", "tool_allowlist", "unattended_mode", "allowed_ips"):
        if name in log.after:
            setattr(then, name, log.after[name])
    return then, f"version log #{log.audit_entry.seq}"


def workspace_as_of(workspace, when) -> tuple[Any, str]:
    log = _latest_log(workspace, "workspace", target_id=str(workspace.pk), created_at__lte=when)
    if log is None or not isinstance(log.after, dict):
        return workspace, "current settings (no version log)"
    then = copy.copy(workspace)
    then._state = copy.copy(workspace._state)
    for name in ("name", "writes_enabled", "mode", "outbound_allowed", "plan_rank"):
        if name in log.after:
            setattr(then, name, log.after[name])
    if "confirmation_ttl_seconds" in log.after:
        then.confirmation_ttl = timedelta(seconds=log.after["confirmation_ttl_seconds"])
    return then, f"version log #{log.audit_entry.seq}"


def _decision(label, decision, tool, sources) -> ReplayedDecision:
    return ReplayedDecision(
        label=label,
        policy_version=getattr(decision, "policy_version", None),
        outcome=str(getattr(decision, "outcome", decision)),
        code=getattr(decision, "code", ""),
        rule=getattr(decision, "rule", ""),
        reason=getattr(decision, "reason", ""),
        tool=tool,
        sources=sources,
    )


def replay_action(action_id) -> ReplayReport:
    try:
        action = ActionRequest.objects.select_related("workspace", "key", "key__owner").get(
            pk=action_id
        )
    except (ActionRequest.DoesNotExist, ValidationError, ValueError):
        raise WardenError("not_found", f"No action request {action_id}.") from None
    workspace = action.workspace
    report = ReplayReport(
        action_id=str(action.pk),
        tool_name=action.tool_name,
        requested_by=getattr(action, "requested_by", "") or f"key:{action.key_id}",
        created_at=action.created_at.isoformat(),
        recorded={
            "decision": action.decision,
            "denial_code": action.denial_code,
            "rationale": action.rationale,
            "policy_version": action.policy_version,
            "status": action.status,
        },
        then=None,
        now=None,
    )
    if action.key is None or getattr(action, "is_platform", False):
        report.notes.append(
            "platform operation: always decided by a human, not replayable through the catalog"
        )
        return report

    snapshot, tool_source = tool_snapshot_as_of(workspace, action.tool_name, action.policy_version)
    tool_then = _tool_from_snapshot(workspace, snapshot)
    current_tool = Tool.objects.filter(workspace=workspace, name=action.tool_name).first()
    if snapshot is None and tool_source == "no version log" and current_tool is not None:
        # History pruned (or predates version logs) and nothing newer: today's tool it is.
        newer = VersionLog.objects.filter(
            workspace=workspace,
            target_type="tool",
            target_id=str(current_tool.pk),
            policy_version__gt=action.policy_version,
        ).exists()
        if not newer:
            tool_then, tool_source = current_tool, "current tool (unchanged since)"
            snapshot = current_tool.snapshot()
        else:
            report.notes.append("the tool's history before this action is gone (retention)")
    key_then, key_source = key_as_of(action.key, action.created_at)
    workspace_then, workspace_source = workspace_as_of(workspace, action.created_at)
    params = action.params if isinstance(action.params, dict) else {}
    report.params = _params_state(action)
    if report.params == "erased":
        report.notes.append(
            f"the params were erased ({action.erased_at:%Y-%m-%d}, personal data erasure): "
            "replayed without them; the chain keeps their digest only"
        )
    elif action.plain_pruned_at is not None:
        report.notes.append(
            "the plain params were pruned (data minimisation); replayed without them"
        )
    secret = set((snapshot or {}).get("secret_params") or [])
    if secret and (snapshot or {}).get("condition"):
        report.notes.append(
            "secret params are replayed as their digests; a condition reading them may differ"
        )

    then = gate.decide(key_then, workspace_then, tool_then, params, action.policy_version)
    report.then = _decision(
        f"then (policy v{action.policy_version})",
        then,
        snapshot,
        {"tool": tool_source, "key": key_source, "workspace": workspace_source},
    )
    workspace.refresh_from_db()
    now = gate.decide(action.key, workspace, current_tool, params, workspace.policy_version)
    report.now = _decision(
        f"now (policy v{workspace.policy_version})",
        now,
        current_tool.snapshot() if current_tool else None,
        {"tool": "current catalog", "key": "current key", "workspace": "current settings"},
    )
    if not report.matches_record:
        report.notes.append("the replayed decision differs from the one recorded at the time")
    return report


def _params_state(action: ActionRequest) -> str:
    if action.is_erased:
        return "erased"
    if action.plain_pruned_at is not None:
        return "pruned"
    return "sealed copy" if action.sealed_params else ("plain" if action.params else "none")


def _rows(report: ReplayReport) -> list[tuple[str, str, str]]:
    then, now = report.then, report.now

    def tool_text(d, name):
        t = d.tool
        if t is None:
            return "(not in catalog)"
        bits = [t.get("level", "?"), f"confirm={t.get('confirmation', '?')}"]
        if t.get("condition"):
            bits.append(f"if {t['condition']}")
        if not t.get("enabled", True):
            bits.append("disabled")
        return " ".join(bits)

    return [
        ("policy version", str(then.policy_version), str(now.policy_version)),
        ("decision", then.outcome, now.outcome),
        ("code", then.code or "-", now.code or "-"),
        ("rule", then.rule or "-", now.rule or "-"),
        ("reason", then.reason or "-", now.reason or "-"),
        ("tool", tool_text(then, report.tool_name), tool_text(now, report.tool_name)),
        ("tool from", then.sources.get("tool", ""), now.sources.get("tool", "")),
        ("key from", then.sources.get("key", ""), now.sources.get("key", "")),
        ("workspace from", then.sources.get("workspace", ""), now.sources.get("workspace", "")),
    ]


def render_side_by_side(report: ReplayReport, width: int = 44) -> str:
    recorded = report.recorded
    lines = [
        f"action {report.action_id}: {report.tool_name} by {report.requested_by}"
        f" at {report.created_at}",
        f"recorded: {recorded['decision']}"
        + (f" ({recorded['denial_code']})" if recorded["denial_code"] else "")
        + f" under policy v{recorded['policy_version']}, status {recorded['status']}",
        f"params: {report.params}",
    ]
    if report.then is not None and report.now is not None:
        lines.append("")
        lines.append(f"{'':16}{report.then.label:<{width}}  {report.now.label}")
        for name, left, right in _rows(report):
            marker = "*" if left != right and name in ("decision", "code") else " "
            left = left if len(left) <= width else left[: width - 1] + "…"
            lines.append(f"{marker}{name:<15}{left:<{width}}  {right}")
        lines.append("")
        lines.append("decision changed since" if report.changed else "same decision today")
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines)
