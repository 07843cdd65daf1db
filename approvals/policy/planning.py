"""`plan`: what applying a policy document would change, object by object and field by
field, and for each change whether it narrows (applies at once) or needs a second human,
with the governed operations it amounts to.

The judgement is approvals.effective and approvals.governance, exactly as for every other
door: a change to one object is split by facet; the facets whose change provably narrows
on their own (and together) are the immediate part, the rest is governed. Pure apart from
reading the workspace's current tools (one query).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from approvals import effective
from approvals.governance import loosening
from approvals.guard import snapshot
from approvals.models import Tool
from approvals.policy.document import (
    AUTOMATION_FIELDS,
    SETTINGS_FIELDS,
    TOOL_FIELDS,
    PolicyDocument,
    automation_entry,
    automation_row,
    invalid,
    settings_entry,
    tool_entry,
)
from approvals.policy_impact import REVIEW_LIMIT, simulate
from approvals.policy_impact import SETTINGS as IMPACT_SETTINGS
from approvals.validation import tool_field_errors
from common.errors import WardenError
from tenants.models import Workspace

CREATE, UPDATE, DELETE = "create", "update", "delete"

# The impact replay window of a plan (days of recorded requests, newest REVIEW_LIMIT).
IMPACT_DAYS = 30


@dataclass
class ObjectChange:
    target: str  # "tool" | "workspace" | "automation_settings"
    verb: str  # create | update | delete
    name: str  # the tool's name, or the workspace slug
    before: dict[str, Any] | None  # document fields as they are
    after: dict[str, Any] | None  # document fields as proposed
    immediate: tuple[str, ...] = ()  # fields that narrow: applied at once
    governed: tuple[str, ...] = ()  # fields that need a second human
    operations: tuple[str, ...] = ()  # the governed operations (names)
    approvals: int = 0
    permission: str = ""
    irreversible: bool = False
    target_id: str | None = None
    # The guard's snapshots, for the judgement (never shown).
    _mid: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.target} {self.name}"

    @property
    def fields(self) -> tuple[str, ...]:
        if self.before is None or self.after is None:
            return ()
        return tuple(f for f in self.after if self.before.get(f) != self.after.get(f))

    @property
    def narrows(self) -> bool:
        return not self.operations

    def diff(self) -> dict[str, dict[str, Any]]:
        if self.verb != UPDATE:
            return {"": {"before": self.before, "after": self.after}}
        return {f: {"before": self.before[f], "after": self.after[f]} for f in self.fields}

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "verb": self.verb,
            "name": self.name,
            "narrows": self.narrows,
            "immediate": list(self.immediate),
            "governed": list(self.governed),
            "operations": list(self.operations),
            "approvals_required": self.approvals,
            "changes": [
                {
                    "field": f or None,
                    "before": c["before"],
                    "after": c["after"],
                    "governed": (f in self.governed) if f else bool(self.operations),
                }
                for f, c in self.diff().items()
            ],
        }


@dataclass
class Plan:
    workspace: str
    changes: list[ObjectChange]
    impact: Any = None

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def immediate(self) -> list[ObjectChange]:
        return [c for c in self.changes if c.immediate or (c.verb != UPDATE and c.narrows)]

    @property
    def governed(self) -> list[ObjectChange]:
        return [c for c in self.changes if c.operations]

    @property
    def operations(self) -> list[str]:
        return sorted({op for c in self.changes for op in c.operations})

    def whole_diff(self, *, governed_only: bool = False) -> dict[str, dict[str, Any]]:
        """{"tool crm.lookup: confirmation": {"before", "after"}}: what a reviewer reads."""
        rows = {}
        for change in self.governed if governed_only else self.changes:
            for name, c in change.diff().items():
                if governed_only and change.verb == UPDATE and name not in change.governed:
                    continue
                key = f"{change.label}: {name}" if name else f"{change.label} ({change.verb})"
                rows[key] = c
        return rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "changes": [c.as_dict() for c in self.changes],
            "narrows": not self.governed,
            "operations": self.operations,
            "approvals_required": max((c.approvals for c in self.changes), default=0),
            "impact": self.impact,
        }


def _tool_snapshot(entry: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """The guard's snapshot of a tool with the document's fields (binding kept)."""
    return {**(base or {}), **entry}


def _split(target: str, before: dict, after: dict) -> tuple[dict, list]:
    """(the narrowing part as a snapshot, the governed operations of the rest)."""
    changed = [k for k in after if before.get(k) != after.get(k)]
    # Inert fields (a shadow rule: recorded, never enforced) change nothing the gate
    # reads: they apply at once, like a narrowing.
    keep: set[str] = set(changed) & effective.inert_fields(target)
    for facet in effective.FACETS[target]:
        keys = [k for k in changed if k in facet.fields]
        if not keys:
            continue
        partial = {**before, **{k: after[k] for k in keys}}
        if not effective.widening(target, before, partial):
            keep.update(keys)
    # Keys no facet covers (derived ones) follow the judgement of the whole.
    mid = {**before, **{k: after[k] for k in keep}}
    if effective.widening(target, before, mid):
        mid = dict(before)
    return mid, loosening(target, mid, after)


def _judge(change: ObjectChange, target: str, before: dict | None, after: dict | None) -> None:
    if before is None or after is None:
        operations = loosening(target, before, after)
        change.governed = () if not operations else ("created" if before is None else "deleted",)
    else:
        mid, operations = _split(target, before, after)
        change._mid = mid
        governed = [f for f in change.fields if mid.get(f) != after.get(f)]
        if target == effective.WORKSPACE and mid.get("confirmation_ttl") != after.get(
            "confirmation_ttl"
        ):
            governed.append("confirmation_ttl")
        change.governed = tuple(sorted(set(governed) & set(change.fields)))
        change.immediate = tuple(f for f in change.fields if f not in change.governed)
    change.operations = tuple(sorted(op.name for op in operations))
    change.approvals = max((op.approvals for op in operations), default=0)
    change.permission = (
        "manage_workspace"
        if any(op.permission == "manage_workspace" for op in operations)
        else ("manage_tools" if operations else "")
    )
    change.irreversible = any(op.irreversible for op in operations)


def _workspace_snapshot(workspace: Workspace, settings: dict[str, Any]) -> dict[str, Any]:
    snap = dict(snapshot(workspace))
    snap.update(settings)
    if "confirmation_ttl" in settings:
        snap["confirmation_ttl_seconds"] = settings["confirmation_ttl"]
    return snap


def _automation_change(workspace: Workspace, values: dict[str, Any]) -> ObjectChange | None:
    """The automation and notification settings, judged on the guard's snapshot of the
    row (the same one the door and the guard compare)."""
    row = automation_row(workspace)
    current = automation_entry(row)
    proposed = {**current, **values}
    if proposed == current:
        return None
    change = ObjectChange(
        effective.AUTOMATION,
        UPDATE,
        workspace.slug,
        {k: current[k] for k in AUTOMATION_FIELDS},
        {k: proposed[k] for k in AUTOMATION_FIELDS},
        target_id=str(workspace.pk),
    )
    before = snapshot(row)
    _judge(change, effective.AUTOMATION, before, {**before, **values})
    return change


def _check_tools(document: PolicyDocument, entries: dict[str, dict[str, Any]]) -> None:
    """The catalog's own validation (names, conditions, schemas) for every tool the
    document creates or changes, so nobody plans or approves a tool that cannot be saved.
    `entries`: today's tools as document entries, by name."""
    problems = []
    for entry in document.tools:
        index = document.positions.get(entry["name"], 0)
        if entries.get(entry["name"]) == entry:
            continue
        for name, messages in sorted(tool_field_errors(Tool(**entry)).items()):
            problems += [
                {"path": f"$.tools[{index}].{name}", "code": "invalid", "message": m}
                for m in messages
            ]
    if problems:
        raise invalid(problems)


def plan(workspace: Workspace, document: PolicyDocument, *, impact: bool = True) -> Plan:
    """The diff, judged; with `impact`, the proposed document replayed on history."""
    if document.workspace != workspace.slug:
        raise WardenError(
            "workspace_mismatch",
            "The document names another workspace.",
            {"workspace": document.workspace},
        )
    changes: list[ObjectChange] = []

    current = settings_entry(workspace)
    proposed = {**current, **document.settings}
    if proposed != current:
        change = ObjectChange(
            effective.WORKSPACE,
            UPDATE,
            workspace.slug,
            {k: current[k] for k in SETTINGS_FIELDS},
            {k: proposed[k] for k in SETTINGS_FIELDS},
            target_id=str(workspace.pk),
        )
        _judge(
            change,
            effective.WORKSPACE,
            _workspace_snapshot(workspace, {}),
            _workspace_snapshot(workspace, document.settings),
        )
        changes.append(change)

    if document.automation:
        change = _automation_change(workspace, document.automation)
        if change is not None:
            changes.append(change)

    tools = {t.name: t for t in Tool.objects.filter(workspace=workspace).order_by("name")}
    wanted = {entry["name"]: entry for entry in document.tools}
    entries = {name: tool_entry(tool) for name, tool in tools.items()}
    _check_tools(document, entries)
    for name in sorted(set(tools) | set(wanted)):
        tool, entry = tools.get(name), wanted.get(name)
        if tool is None:
            change = ObjectChange(effective.TOOL, CREATE, name, None, dict(entry))
            _judge(change, effective.TOOL, None, _tool_snapshot(entry, {"workspace": None}))
        elif entry is None:
            before = entries[name]
            change = ObjectChange(
                effective.TOOL, DELETE, name, before, None, target_id=str(tool.pk)
            )
            _judge(change, effective.TOOL, snapshot(tool), None)
        else:
            before = entries[name]
            if before == entry:
                continue
            change = ObjectChange(
                effective.TOOL, UPDATE, name, before, dict(entry), target_id=str(tool.pk)
            )
            base = snapshot(tool)
            _judge(change, effective.TOOL, base, _tool_snapshot(entry, base))
        changes.append(change)

    result = Plan(workspace.slug, changes)
    if changes and impact:
        result.impact = document_impact(workspace, document, today=tools)
    return result


def document_impact(
    workspace: Workspace,
    document: PolicyDocument,
    days: int = IMPACT_DAYS,
    *,
    today: dict[str, Tool] | None = None,
) -> dict[str, Any]:
    """The proposed document replayed on the last `days` of recorded requests
    (approvals.policy_impact): headline, counts, examples, most affected tools and keys."""
    settings = {k: v for k, v in document.settings.items() if k in IMPACT_SETTINGS}
    report = simulate(
        workspace,
        [dict(t) for t in document.tools],
        settings or None,
        days,
        limit=REVIEW_LIMIT,
        today=today,
    )
    return report.as_dict()


__all__ = [
    "CREATE",
    "DELETE",
    "TOOL_FIELDS",
    "UPDATE",
    "ObjectChange",
    "Plan",
    "document_impact",
    "plan",
]
