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
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q

from approvals import gate
from approvals.models import ActionRequest, Tool
from approvals.params import canonical_json
from audit.models import AuditAction, AuditEntry, VersionLog
from common.errors import WardenError
from gateway.models import Execution


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


# --- a run: many decisions, in order ------------------------------------------------------
#
# `manage.py audit_replay_run` replays a recorded run (one key's calls in a time window,
# or the calls of one OpenTelemetry trace) step by step: each step is `replay_action`
# above (the decision under the policy of its time and under today's), held against
# what was recorded: the decision, and the output the run saw (the result the agent
# reported, or the output Warden observed executing it), whose plain copy, while kept,
# must still hash to the digest the chain holds. Nothing is executed: the recorded
# outputs stand in for the tools, as in a sandbox.

MAX_RUN_STEPS = 1000
TRACE_ID_LENGTH = 32


@dataclass
class Divergence:
    kind: str  # then_differs_from_record | now_differs | output_missing | output_mismatch
    detail: str


@dataclass
class RunStep:
    index: int
    replay: ReplayReport
    output: dict  # what the run saw: source, status, digest, plain copy
    divergences: list[Divergence] = field(default_factory=list)


@dataclass
class RunReplay:
    run: dict  # how the run was chosen
    steps: list[RunStep]
    notes: list[str] = field(default_factory=list)

    @property
    def divergences(self) -> int:
        return sum(len(step.divergences) for step in self.steps)

    @property
    def first_divergence(self) -> int | None:
        return next((s.index for s in self.steps if s.divergences), None)

    def as_dict(self) -> dict:
        return {
            "run": self.run,
            "steps": [
                {
                    "index": step.index,
                    **asdict(step.replay),
                    "changed": step.replay.changed,
                    "matches_record": step.replay.matches_record,
                    "output": step.output,
                    "divergences": [asdict(d) for d in step.divergences],
                }
                for step in self.steps
            ],
            "divergences": self.divergences,
            "first_divergence": self.first_divergence,
            "notes": self.notes,
        }


def trace_id_of(value: str) -> str:
    """The 32-hex trace id of a trace id or a W3C traceparent; '' when neither."""
    text = (value or "").strip().lower()
    parts = text.split("-")
    if len(parts) == 4:
        text = parts[1]
    if len(text) != TRACE_ID_LENGTH or any(c not in "0123456789abcdef" for c in text):
        return ""
    return "" if text == "0" * TRACE_ID_LENGTH else text


def run_actions(
    *,
    workspace=None,
    key_id=None,
    since=None,
    until=None,
    trace_id: str = "",
    limit: int = MAX_RUN_STEPS,
) -> list[ActionRequest]:
    """The recorded calls of a run, oldest first: a key's in [since, until), or those
    whose confirmation recorded a `traceparent` of `trace_id` (approvals.0011; only
    calls that waited for a human carry one)."""
    actions = ActionRequest.objects.all()
    if workspace is not None:
        actions = actions.filter(workspace=workspace)
    if trace_id:
        actions = actions.filter(confirmation__trace_parent__contains=f"-{trace_id}-")
    if key_id is not None:
        actions = actions.filter(key_id=key_id)
    if since is not None:
        actions = actions.filter(created_at__gte=since)
    if until is not None:
        actions = actions.filter(created_at__lt=until)
    return list(actions.order_by("created_at", "id")[:limit])


def _sha256(encoded: bytes) -> str:
    return hashlib.sha256(encoded).hexdigest()


def _chain_digests(actions: list[ActionRequest]) -> dict[str, str]:
    """target id -> output_sha256 of the result and execution entries in the chain."""
    targets = [str(a.pk) for a in actions]
    targets += [
        str(e)
        for e in Execution.objects.filter(action_request__in=actions).values_list("pk", flat=True)
    ]
    entries = AuditEntry.objects.filter(
        action__in=(AuditAction.ACTION_RESULT_REPORTED, AuditAction.EXECUTION_RECORDED),
        target_id__in=targets,
    ).values_list("target_id", "input")
    return {
        target: (entry_input or {}).get("output_sha256", "")
        for target, entry_input in entries
        if isinstance(entry_input, dict)
    }


def recorded_output(action: ActionRequest, chain: dict[str, str]) -> tuple[dict, list[Divergence]]:
    """What the run saw at this step, read only through this function (outputs may
    move to another store: the plain copy is optional, the digests are not)."""
    execution = Execution.objects.filter(action_request=action).first()
    if execution is not None:
        plain = execution.output
        seen = {
            "source": "gateway",
            "status": execution.status,
            "sha256": execution.output_sha256,
            "bytes": execution.output_bytes,
            "chain_sha256": chain.get(str(execution.pk), ""),
            "plain_copy": "kept" if plain is not None else "not kept",
        }
        # The gateway's own encoding (gateway.execution._digest).
        encoded = json.dumps(plain, sort_keys=True, separators=(",", ":"), default=str).encode()
    elif action.result_reported_at is not None:
        pruned = action.plain_pruned_at is not None
        plain = None if pruned else action.result_output
        stored = action.result_output_sha256 or (
            _sha256(canonical_json(plain)) if plain is not None else ""
        )
        seen = {
            "source": "agent",
            "status": action.result_status,
            "sha256": stored,
            "bytes": action.result_output_bytes,
            "chain_sha256": chain.get(str(action.pk), ""),
            "plain_copy": "pruned" if pruned else "kept",
        }
        encoded = canonical_json(plain)
    else:
        seen = {"source": "none", "status": "", "sha256": "", "bytes": None}
        # Allowed to act (at once, or once confirmed) and live: the run went on with an
        # output nobody recorded.
        if action.status == ActionRequest.Status.ALLOWED and not action.dry_run:
            return seen, [
                Divergence(
                    "output_missing",
                    "allowed, but no result was reported and Warden did not execute it: "
                    "the run's output at this step is unknown",
                )
            ]
        return seen, []
    divergences = []
    if seen["chain_sha256"] and seen["sha256"] and seen["chain_sha256"] != seen["sha256"]:
        divergences.append(
            Divergence("output_mismatch", "the stored output digest differs from the chain's")
        )
    elif plain is not None and seen["chain_sha256"] and _sha256(encoded) != seen["chain_sha256"]:
        divergences.append(
            Divergence(
                "output_mismatch", "the stored output no longer hashes to the chain's digest"
            )
        )
    return seen, divergences


def _decision_text(outcome: str, code: str) -> str:
    return f"{outcome} ({code})" if code else outcome


def replay_run(actions: list[ActionRequest], *, run: dict) -> RunReplay:
    """Each recorded call replayed in order (`replay_action`), against the record."""
    report = RunReplay(run=run, steps=[])
    if not actions:
        report.notes.append("no recorded call matches")
        return report
    if len(actions) >= MAX_RUN_STEPS:
        report.notes.append(f"only the first {MAX_RUN_STEPS} calls were replayed")
    chain = _chain_digests(actions)
    for index, action in enumerate(actions, start=1):
        replayed = replay_action(action.pk)
        step = RunStep(index=index, replay=replayed, output={})
        recorded = replayed.recorded
        then, now = replayed.then, replayed.now
        if then is not None and not replayed.matches_record:
            step.divergences.append(
                Divergence(
                    "then_differs_from_record",
                    f"recorded {_decision_text(recorded['decision'], recorded['denial_code'])}, "
                    f"replayed under policy v{recorded['policy_version']}: "
                    f"{_decision_text(then.outcome, then.code)}",
                )
            )
        if then is not None and now is not None and replayed.changed:
            step.divergences.append(
                Divergence(
                    "now_differs",
                    f"{_decision_text(then.outcome, then.code)} then, "
                    f"{_decision_text(now.outcome, now.code)} under today's policy "
                    f"(v{now.policy_version})",
                )
            )
        step.output, output_divergences = recorded_output(action, chain)
        step.divergences.extend(output_divergences)
        report.steps.append(step)
    return report


def render_run(report: RunReplay) -> str:
    """Readable text: one line per call, each divergence under it, a verdict last."""
    described = ", ".join(f"{k} {v}" for k, v in report.run.items() if v)
    lines = [f"run: {described}: {len(report.steps)} call(s)"]
    for step in report.steps:
        replayed = step.replay
        recorded = replayed.recorded
        then = replayed.then
        now = replayed.now
        output = step.output
        seen = output.get("source", "none")
        if seen != "none":
            seen = (
                f"{seen} {output.get('status') or '?'} sha256 {(output.get('sha256') or '-')[:12]}"
            )
        lines.append(
            f"#{step.index} {replayed.created_at} {replayed.tool_name}: recorded "
            f"{_decision_text(recorded['decision'], recorded['denial_code'])}"
            + (f", then {_decision_text(then.outcome, then.code)}" if then else "")
            + (f", now {_decision_text(now.outcome, now.code)}" if now else "")
            + f"; output: {seen}"
        )
        lines.extend(f"   ! {d.kind}: {d.detail}" for d in step.divergences)
        lines.extend(f"   note: {note}" for note in replayed.notes)
    lines.extend(f"note: {note}" for note in report.notes)
    if report.divergences:
        lines.append(
            f"{report.divergences} divergence(s), first at #{report.first_divergence}: "
            "later calls may not have happened, or not the same way, under that policy"
        )
    else:
        lines.append("no divergence")
    return "\n".join(lines)
