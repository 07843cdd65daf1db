"""Every applied policy-bearing change records a policy version, in its own transaction.

The commit points are the catalog's writes (approvals.catalog: tool create, update,
delete, whoever calls them: the admin, the API, the door, a connector sync, a policy
document), the workspace's settings (tenants.services.workspace_update, which calls
`settings_changed` through its hook) and its automation and notification settings
(notifications.services.automation_settings_update calls `automation_changed`). Each
reports the document rows it changed (`{"tool crm.lookup: confirmation": {"before",
"after"}}`, the rows of approvals.policy.selectors.document_diff) to `changed()`:

- outside a `recording()` block, the change is one version on its own (source
  `applied`, the actor as author);
- inside one (a policy document's apply, a request approved through the queue, a
  break-glass), the rows are gathered and the block records ONE version when it ends,
  with its source, author, approvers, operations and request.

A write that changes no document field records nothing (export -> apply -> export stays
a no-op). The version holds the whole document afterwards (export_document).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from approvals.models import ActionRequest, ApprovalRecord, PolicyVersion, Tool
from approvals.policy.document import (
    automation_values,
    export_document,
    settings_entry,
    tool_entry,
)
from common.actor import Actor
from tenants.models import Workspace

Rows = dict[str, dict[str, Any]]


@dataclass
class Recording:
    workspace_id: Any
    source: str
    author: str
    reason: str = ""
    approvers: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    request: ActionRequest | None = None
    rows: Rows = field(default_factory=dict)
    version: PolicyVersion | None = None


_OPEN: ContextVar[Recording | None] = ContextVar("policy_recording", default=None)


def record(
    workspace: Workspace,
    *,
    source: str,
    author: str,
    reason: str = "",
    diff: Rows,
    operations: list[str] | None = None,
    approvers: list[str] | None = None,
    request: ActionRequest | None = None,
) -> PolicyVersion:
    """One version, numbered under the workspace's row lock (callers are in a
    transaction with the change itself)."""
    locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
    last = PolicyVersion.objects.filter(workspace=locked).order_by("-number").first()
    return PolicyVersion.objects.create(
        workspace=locked,
        number=(last.number if last else 0) + 1,
        source=source,
        author=author[:254],
        approvers=approvers or [],
        reason=reason,
        diff=diff,
        operations=operations or [],
        document=export_document(locked),
        policy_version=locked.policy_version,
        request=request,
    )


@contextlib.contextmanager
def recording(
    workspace: Workspace,
    *,
    source: str,
    author: str,
    reason: str = "",
    approvers: list[str] | None = None,
    operations: list[str] | None = None,
    request: ActionRequest | None = None,
) -> Iterator[Recording]:
    """Gather the changes made inside into one version (recorded when the block ends
    without an error; nothing when nothing changed). Nested blocks of the same
    workspace belong to the outermost one."""
    outer = _OPEN.get()
    if outer is not None and outer.workspace_id == workspace.pk:
        yield outer
        return
    current = Recording(
        workspace.pk,
        source,
        author,
        reason,
        list(approvers or []),
        list(operations or []),
        request,
    )
    token = _OPEN.set(current)
    try:
        yield current
    finally:
        _OPEN.reset(token)
    if current.rows:
        current.version = record(
            workspace,
            source=source,
            author=author,
            reason=reason,
            diff=current.rows,
            operations=current.operations,
            approvers=current.approvers,
            request=request,
        )


def _merge(rows: Rows, new: Rows) -> None:
    for key, change in new.items():
        before = rows[key]["before"] if key in rows else change["before"]
        if before == change["after"]:
            rows.pop(key, None)
        else:
            rows[key] = {"before": before, "after": change["after"]}


def changed(workspace: Workspace, actor: Actor, rows: Rows, reason: str = "") -> None:
    """A commit point changed these document rows (in its transaction)."""
    if not rows:
        return
    current = _OPEN.get()
    if current is not None and current.workspace_id == workspace.pk:
        _merge(current.rows, rows)
        return
    record(
        workspace,
        source=PolicyVersion.Source.APPLIED,
        author=actor.label,
        reason=reason,
        diff=rows,
    )


# --- the rows of one object --------------------------------------------------------------------


def entry(tool: Tool | None) -> dict[str, Any] | None:
    return tool_entry(tool) if tool is not None else None


def tool_rows(name: str, before: dict | None, after: dict | None) -> Rows:
    if before is None or after is None:
        return {} if before == after else {f"tool {name}": {"before": before, "after": after}}
    return {
        f"tool {name}: {f}": {"before": before[f], "after": after[f]}
        for f in after
        if before.get(f) != after[f]
    }


def settings_changed(*, workspace: Workspace, before: Workspace, actor: Actor, reason: str):
    """tenants.services.workspace_update's hook: the settings the document holds."""
    was, now = settings_entry(before), settings_entry(workspace)
    rows = {
        f"settings: {name}": {"before": was[name], "after": now[name]}
        for name in now
        if was[name] != now[name]
    }
    changed(workspace, actor, rows, reason)


def automation_changed(
    *, workspace: Workspace, before: dict, after: dict, actor: Actor, reason: str = ""
) -> None:
    """notifications' automation settings service: the row's snapshot() before and after
    (the document holds no secret: the bot token is never a row here)."""
    was, now = automation_values(before), automation_values(after)
    rows = {
        f"automation: {name}": {"before": was[name], "after": now[name]}
        for name in now
        if was[name] != now[name]
    }
    changed(workspace, actor, rows, reason)


def approvers_of(confirmation) -> list[str]:
    return list(
        ApprovalRecord.objects.filter(
            confirmation=confirmation, verdict=ApprovalRecord.Verdict.APPROVE
        )
        .order_by("created_at")
        .values_list("approver", flat=True)
    )
