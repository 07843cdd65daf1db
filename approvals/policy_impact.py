"""The impact of a policy change, replayed on the workspace's recorded requests.

`simulate(workspace, proposed_tools, proposed_settings, days)` decides every agent
request of the last N days again with the gate (in-process, no writes) under a proposed
policy, and compares each with the decision it actually got (the recorded outcome,
whatever policy version decided it). What is compared is who decides: allowed / needs
N humans / denied (with its code). Dry run is not compared (it changes what an allowed
call means, never what is gated).

Inputs of the replay, decided and documented (docs "Impact of a change"):
- the tools: the proposed catalog (`Tool.snapshot()` dicts; None: today's catalog);
- the keys: as they are today (scopes, allowlist, unattended mode, owner). A key's
  history is not rebuilt: the question is what the proposed policy would do to the
  traffic these keys send (a key changed since the request counts as a change);
- the workspace settings: today's, with `proposed_settings` applied;
- the params: as recorded (secret params are digests; pruned params replay as `{}`).

`drift` counts requests recorded under an *older* policy version whose replay under
today's policy already differs from what they got, so an approver can tell how much of
the change is this proposal's (a key changed since is not drift: it is in the counts).
Platform requests (`warden.*`, human-decided) are skipped.

Speed: rows stream through `values_list(...).iterator()`; a tool whose decision does not
read the params (no condition, deny rule or schema) is decided once per key.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from approvals import arguments, gate, personal_data
from approvals.models import PLATFORM_TOOL_PREFIX, ActionRequest, Tool
from approvals.validation import tool_field_errors
from common.errors import WardenError
from common.scoping import scoped
from keys.models import MachineKey
from tenants.models import Workspace

MAX_DAYS = 365
MAX_TOOLS = 5000
EXAMPLES_PER_TRANSITION = 5
TOP = 5
CHUNK = 5000

# Settings a proposal may change, with their type: those the gate reads.
SETTINGS = {
    "writes_enabled": bool,
    "outbound_allowed": bool,
    "mode": str,
    "require_two_approvals_for_irreversible": bool,
    "sensitivity_floor": bool,
    "plan_rank": int,
}
# Read from a Workspace.settings_snapshot() but decide nothing here: accepted, ignored.
IGNORED_SETTINGS = frozenset(
    {
        "name",
        "live_after",
        "confirmation_ttl_seconds",
        "audit_retention_days",
        "plain_copy_retention_days",
        "deleted",
    }
)
SNAPSHOT_FIELDS = frozenset(Tool.EDITABLE_FIELDS)

ALLOWED, NEEDS_HUMAN, DENIED = "allowed", "needs_human", "denied"


@dataclass
class ImpactReport:
    days: int
    since: str
    scanned: int  # requests replayed
    capped: bool  # True when the window held more than `limit` (newest kept)
    changed: int  # decisions that differ from the recorded ones
    headline: str
    summary: dict[str, int]
    transitions: list[dict[str, Any]]
    examples: list[dict[str, Any]]
    tools: list[dict[str, Any]]  # most affected, with their totals
    keys: list[dict[str, Any]]
    drift: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- inputs ----------------------------------------------------------------------------------


def _invalid(path: str, message: str) -> WardenError:
    return WardenError("validation_error", "Invalid proposed policy.", {path: [message]})


def proposed_catalog(
    workspace: Workspace, proposed_tools: list | None, today: dict[str, Tool] | None = None
) -> dict[str, Tool]:
    """name -> unsaved Tool of the proposed catalog (today's when None). An entry equal
    to today's snapshot of its tool (`today`) is today's tool: saved, so validated."""
    snapshots = {name: tool.snapshot() for name, tool in (today or {}).items()}
    if proposed_tools is None:
        return {t.name: t for t in scoped(Tool.objects.all(), workspace)}
    if not isinstance(proposed_tools, list):
        raise _invalid("tools", "A list of tool snapshots.")
    if len(proposed_tools) > MAX_TOOLS:
        raise _invalid("tools", f"At most {MAX_TOOLS} tools.")
    catalog: dict[str, Tool] = {}
    for i, entry in enumerate(proposed_tools):
        path = f"tools[{i}]"
        if not isinstance(entry, dict):
            raise _invalid(path, "A tool snapshot (JSON object).")
        unknown = sorted(set(entry) - SNAPSHOT_FIELDS)
        if unknown:
            raise _invalid(f"{path}.{unknown[0]}", "Unknown field.")
        if not isinstance(entry.get("name"), str):
            raise _invalid(f"{path}.name", "Required.")
        if entry["name"] in catalog:
            raise _invalid(f"{path}.name", "Twice in the catalog.")
        if snapshots.get(entry["name"]) == entry:
            catalog[entry["name"]] = today[entry["name"]]
            continue
        try:
            tool = Tool(workspace=workspace, **entry)
            errors = tool_field_errors(tool)
        except (TypeError, ValueError, AttributeError):
            raise _invalid(path, "Not a valid tool snapshot.") from None
        if errors:
            name, messages = sorted(errors.items())[0]
            raise _invalid(f"{path}.{name}", messages[0])
        catalog[tool.name] = tool
    return catalog


def proposed_workspace(workspace: Workspace, proposed_settings: dict | None) -> Workspace:
    """A detached copy of the workspace with the proposed settings applied."""
    proposed = copy.copy(workspace)
    proposed._state = copy.copy(workspace._state)
    if proposed_settings is None:
        return proposed
    if not isinstance(proposed_settings, dict):
        raise _invalid("settings", "A JSON object of workspace settings.")
    for name, value in proposed_settings.items():
        if name in IGNORED_SETTINGS:
            continue
        kind = SETTINGS.get(name)
        if kind is None:
            raise _invalid(f"settings.{name}", "Unknown setting.")
        if type(value) is not kind:
            raise _invalid(f"settings.{name}", f"A {kind.__name__}.")
        if name == "mode" and value not in Workspace.Mode.values:
            raise _invalid("settings.mode", f"One of {', '.join(Workspace.Mode.values)}.")
        setattr(proposed, name, value)
    return proposed


# --- deciding --------------------------------------------------------------------------------


def _reads_params(tool: Tool | None) -> bool:
    if tool is None:
        return False
    return bool(
        (tool.confirmation == "conditional" and (tool.condition or "").strip())
        or (tool.deny_condition or "").strip()
        or tool.input_schema
    )


def _state(decision: gate.Decision, workspace: Workspace) -> tuple[str, str, int]:
    if decision.allowed:
        return ALLOWED, "", 0
    if decision.denied:
        return DENIED, decision.code, 0
    two = decision.irreversible and workspace.require_two_approvals_for_irreversible
    return NEEDS_HUMAN, "", 2 if two else 1


class _Decider:
    """Decides (key, tool, params) under one catalog and settings, caching per (tool,
    key) where the decision cannot depend on the params."""

    def __init__(self, workspace: Workspace, catalog: dict[str, Tool]):
        self.workspace, self.catalog = workspace, catalog
        self.cache: dict[tuple[str, Any], tuple] = {}
        self.version = workspace.policy_version

    def __call__(self, key, tool_name: str, params: dict) -> tuple[tuple[str, str, int], str]:
        tool = self.catalog.get(tool_name)
        cacheable = not _reads_params(tool)
        if cacheable:
            hit = self.cache.get((tool_name, key.pk))
            if hit is not None:
                return hit
        decision = gate.decide(key, self.workspace, tool, params, self.version, summary=False)
        decision = arguments.check(decision, tool, params)
        answer = (_state(decision, self.workspace), f"{decision.rule}: {decision.reason}")
        if cacheable:
            self.cache[(tool_name, key.pk)] = answer
        return answer


def _recorded(decision: str, code: str, approvals: int | None) -> tuple[str, str, int]:
    if decision == ActionRequest.Decision.ALLOWED:
        return ALLOWED, "", 0
    if decision == ActionRequest.Decision.DENIED:
        return DENIED, code, 0
    return NEEDS_HUMAN, "", approvals or 1


def label(state: tuple[str, str, int]) -> str:
    kind, code, approvals = state
    if kind == DENIED:
        return f"denied ({code})" if code else "denied"
    if kind == NEEDS_HUMAN:
        return "needs a human" if approvals <= 1 else f"needs {approvals} humans"
    return "allowed"


def _kind(before: tuple, after: tuple) -> str:
    """The summary bucket of a change."""
    if before[0] == NEEDS_HUMAN and after[0] == ALLOWED:
        return "now_allowed_without_human"
    if before[0] == ALLOWED and after[0] == NEEDS_HUMAN:
        return "now_needs_human"
    if after[0] == DENIED and before[0] != DENIED:
        return "now_denied"
    if before[0] == DENIED and after[0] != DENIED:
        return "no_longer_denied"
    if before[0] == after[0] == NEEDS_HUMAN:
        return "more_approvals" if after[2] > before[2] else "fewer_approvals"
    return "other_denial"


SUMMARY_KEYS = (
    "now_allowed_without_human",
    "now_needs_human",
    "now_denied",
    "no_longer_denied",
    "more_approvals",
    "fewer_approvals",
    "other_denial",
)


# --- the replay ------------------------------------------------------------------------------


def simulate(
    workspace: Workspace,
    proposed_tools: list[dict] | None,
    proposed_settings: dict | None = None,
    days: int = 30,
    *,
    now=None,
    limit: int | None = None,
    today: dict[str, Tool] | None = None,
) -> ImpactReport:
    """Replay the last `days` of recorded agent requests under the proposed policy.
    `today`: the workspace's tools by name, when the caller has just read them (a plan)."""
    if type(days) is not int or not 1 <= days <= MAX_DAYS:
        raise _invalid("days", f"A whole number from 1 to {MAX_DAYS}.")
    now = now or timezone.now()
    since = now - timedelta(days=days)
    if today is None:
        today = {t.name: t for t in scoped(Tool.objects.all(), workspace)}
    catalog = (
        today if proposed_tools is None else proposed_catalog(workspace, proposed_tools, today)
    )
    current_ws = proposed_workspace(workspace, None)
    proposed_ws = proposed_workspace(workspace, proposed_settings)
    proposed = _Decider(proposed_ws, catalog)
    current = _Decider(current_ws, today)
    settings_same = proposed_settings is None or all(
        getattr(proposed_ws, n) == getattr(current_ws, n) for n in SETTINGS
    )
    same_tool = {
        name
        for name in set(today) | set(catalog)
        if name in today and name in catalog and catalog[name].snapshot() == today[name].snapshot()
    }
    keys = {
        k.pk: k for k in scoped(MachineKey.objects.select_related("owner"), workspace).iterator()
    }

    window = (
        scoped(ActionRequest.objects.all(), workspace)
        .filter(created_at__gte=since, created_at__lte=now, key__isnull=False)
        .exclude(tool_name__startswith=PLATFORM_TOOL_PREFIX)
    )
    rows = window.values_list(
        "id",
        "key_id",
        "tool_name",
        "plain_params",
        "sealed_params",
        "data_key",
        "decision",
        "denial_code",
        "confirmation__approvals_required",
        "policy_version",
    )
    capped = False
    if limit is not None:
        capped = window.count() > limit
        rows = rows.order_by("-created_at")[:limit]
    else:
        rows = rows.order_by()

    scanned = changed = drift = 0
    version = workspace.policy_version
    per_tool: Counter = Counter()
    changed_tool: Counter = Counter()
    changed_key: Counter = Counter()
    summary: Counter = Counter()
    transitions: Counter = Counter()
    examples: dict[tuple, list] = defaultdict(list)
    for (
        pk,
        key_id,
        tool_name,
        params,
        sealed,
        data_key,
        decision,
        code,
        approvals,
        decided_under,
    ) in rows.iterator(chunk_size=CHUNK):
        key = keys.get(key_id)
        if key is None:
            continue
        if sealed:  # an agent request's params are sealed (approvals.personal_data)
            try:
                params = personal_data.open_sealed(personal_data.unwrap(data_key), sealed)
            except personal_data.Erased:
                continue  # erased: nothing left to replay
        scanned += 1
        per_tool[tool_name] += 1
        if not isinstance(params, dict):
            params = {}
        recorded = _recorded(decision, code, approvals)
        after, why = proposed(key, tool_name, params)
        if decided_under != version:
            # Decided under an older policy: does today's already decide otherwise?
            if settings_same and tool_name in same_tool:
                replayed_today = after
            else:
                replayed_today = current(key, tool_name, params)[0]
            if replayed_today != recorded:
                drift += 1
        if after == recorded:
            continue
        changed += 1
        changed_tool[tool_name] += 1
        changed_key[key_id] += 1
        summary[_kind(recorded, after)] += 1
        transition = (label(recorded), label(after))
        transitions[transition] += 1
        if len(examples[transition]) < EXAMPLES_PER_TRANSITION:
            examples[transition].append(
                {
                    "action_id": str(pk),
                    "tool": tool_name,
                    "key": key.name,
                    "created_at": None,
                    "recorded": label(recorded),
                    "proposed": label(after),
                    "why": why,
                }
            )
    shown = [e for pair in examples for e in examples[pair]]
    when = dict(
        window.filter(pk__in=[e["action_id"] for e in shown]).values_list("id", "created_at")
    )
    for example in shown:
        example["created_at"] = when[uuid.UUID(example["action_id"])].isoformat()
    pruned = window.filter(plain_pruned_at__isnull=False).count() if scanned else 0

    notes = []
    if capped:
        notes.append(f"capped: only the newest {limit} requests of the window were replayed")
    if pruned:
        notes.append(
            f"{pruned} requests of the window had their plain params pruned (data "
            "minimisation) and were replayed without them"
        )
    if drift:
        notes.append(
            f"{drift} requests recorded under an older policy version would already be "
            "decided differently by today's policy"
        )
    ordered = sorted(transitions.items(), key=lambda item: (-item[1], item[0]))
    return ImpactReport(
        days=days,
        since=since.isoformat(),
        scanned=scanned,
        capped=capped,
        changed=changed,
        headline=headline(summary, changed_tool, per_tool, scanned, days),
        summary={k: summary.get(k, 0) for k in SUMMARY_KEYS},
        transitions=[{"from": a, "to": b, "count": n} for (a, b), n in ordered],
        examples=[e for (pair, _) in ordered for e in examples[pair]],
        tools=[
            {"tool": name, "changed": n, "requests": per_tool[name]}
            for name, n in sorted(changed_tool.items(), key=lambda i: (-i[1], i[0]))[:TOP]
        ],
        keys=[
            {"key_id": str(pk), "name": keys[pk].name, "prefix": keys[pk].prefix, "changed": n}
            for pk, n in sorted(changed_key.items(), key=lambda i: (-i[1], str(i[0])))[:TOP]
        ],
        drift=drift,
        notes=notes,
    )


PHRASES = (
    ("now_allowed_without_human", "would have let {n} of {window} {what} through without a human"),
    ("no_longer_denied", "would have let through {n} of {window} {what} that were denied"),
    ("fewer_approvals", "would have needed fewer approvers for {n} of {window} {what}"),
    ("now_needs_human", "would have sent {n} of {window} {what} to a human"),
    ("more_approvals", "would have needed more approvers for {n} of {window} {what}"),
    ("now_denied", "would have denied {n} of {window} {what}"),
    ("other_denial", "would have denied {n} of {window} {what} for another reason"),
)


def _window(days: int) -> str:
    return {30: "last month's", 7: "last week's", 1: "yesterday's"}.get(
        days, f"the last {days} days'"
    )


def headline(summary, changed_tool, per_tool, scanned: int, days: int) -> str:
    """One line for the approver, loosenings first: 'would have let 37 of last month's
    412 crm.refund requests through without a human'."""
    if scanned == 0:
        return f"no recorded requests in {_window(days)} window to replay"
    if not summary:
        return f"would have changed none of {_window(days)} {scanned} decisions"
    parts = []
    one_tool = next(iter(changed_tool)) if len(changed_tool) == 1 else None
    for kind, phrase in PHRASES:
        n = summary.get(kind, 0)
        if not n:
            continue
        what = f"{per_tool[one_tool]} {one_tool} requests" if one_tool else f"{scanned} requests"
        parts.append(phrase.format(n=n, window=_window(days), what=what))
    return "; ".join(parts)


# --- the review page of a governed change ------------------------------------------------------

# A review page replays at most this many of the newest requests (it says so when capped).
REVIEW_LIMIT = 20_000


def proposal_of_request(workspace: Workspace, params: Any) -> tuple[list | None, dict | None]:
    """(proposed catalog, proposed settings) of a governed change filed by the door:
    today's policy with that one change applied. (None, None): not a policy change."""
    if not isinstance(params, dict):
        return None, None
    if isinstance(params.get("policy"), dict):
        return _proposal_of_document(workspace, params["policy"].get("objects"))
    target, verb = params.get("target"), params.get("verb")
    changes = params.get("changes") if isinstance(params.get("changes"), dict) else {}
    after = {
        name: change["after"]
        for name, change in changes.items()
        if isinstance(change, dict) and "after" in change
    }
    if target == "workspace":
        settings = {k: v for k, v in after.items() if k in SETTINGS}
        return (None, settings) if settings else (None, None)
    if target != "tool":
        return None, None
    current = list(scoped(Tool.objects.all(), workspace))
    tools = []
    for tool in current:
        snapshot = tool.snapshot()
        if str(tool.pk) == str(params.get("target_id")):
            if verb == "delete":
                continue
            snapshot.update({k: v for k, v in after.items() if k in SNAPSHOT_FIELDS})
        tools.append(snapshot)
    if verb == "create":
        values = params.get("values") if isinstance(params.get("values"), dict) else {}
        tools.append({k: v for k, v in values.items() if k in SNAPSHOT_FIELDS})
    return tools, None


def _proposal_of_document(workspace: Workspace, objects: Any) -> tuple[list | None, dict | None]:
    """The governed part of a policy document (`warden.policy.apply`): today's policy
    (its narrowing part already applied) with each object's governed fields applied."""
    if not isinstance(objects, list):
        return None, None
    tools = {t.name: t.snapshot() for t in scoped(Tool.objects.all(), workspace)}
    settings: dict[str, Any] = {}
    for item in objects:
        if not isinstance(item, dict) or not isinstance(item.get("fields"), list):
            continue
        after = item.get("after") if isinstance(item.get("after"), dict) else {}
        values = {f: after[f] for f in item["fields"] if f in after}
        if item.get("target") == "workspace":
            settings.update({k: v for k, v in values.items() if k in SETTINGS})
        elif item.get("verb") == "delete":
            tools.pop(item.get("name"), None)
        elif item.get("verb") == "create":
            tools[item.get("name")] = {k: v for k, v in after.items() if k in SNAPSHOT_FIELDS}
        elif item.get("name") in tools:
            tools[item["name"]].update({k: v for k, v in values.items() if k in SNAPSHOT_FIELDS})
    return list(tools.values()), settings or None


def request_impact(
    workspace: Workspace, params: Any, *, days: int = 30, limit: int = REVIEW_LIMIT
) -> ImpactReport | None:
    """The impact a pending governed change would have had on recent traffic (None: it
    is not a change to the catalog or the settings the gate reads)."""
    tools, settings = proposal_of_request(workspace, params)
    if tools is None and settings is None:
        return None
    return simulate(workspace, tools, settings, days, limit=limit)
