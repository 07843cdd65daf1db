"""The tool catalog's writes: create, update, delete and the admin save path.

Kept apart from the gate's request/confirmation flow because every catalog write has
duties of its own: it bumps the workspace's policy version in the same transaction (so
cached catalog rows keyed by version can never go stale), it records the tool's
before/after snapshot in the audit trail, which replay uses to rebuild the catalog as it
was at any recorded policy version, and it reports the document rows it changed to
approvals.policy.versions (a PolicyVersion per applied change, same transaction)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from approvals.models import Tool
from approvals.policy import versions
from approvals.policy.document import tool_entry
from approvals.validation import tool_field_errors
from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import audit_record_change
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Workspace

TOOL_FIELDS = Tool.SERVICE_FIELDS


def _bump_policy(workspace: Workspace) -> Workspace:
    locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
    locked.policy_version += 1
    locked.save(update_fields=["policy_version"])
    workspace.policy_version = locked.policy_version
    return locked


def _validate_tool(tool: Tool) -> None:
    errors = tool_field_errors(tool)
    if errors:
        raise WardenError("validation_error", "Invalid tool.", errors)
    duplicate = (
        Tool.objects.filter(workspace_id=tool.workspace_id, name=tool.name)
        .exclude(pk=tool.pk)
        .exists()
    )
    if duplicate:
        raise WardenError(
            "conflict", "A tool with this name exists.", {"name": ["Already in the catalog."]}
        )


def _audit_tool(tool, workspace, actor, action, before, after, reason=""):
    event = EVENTS[action].change(
        target_id=tool.pk,
        before=before,
        after=after,
        reason=reason,
        policy_version=workspace.policy_version,
        tool=tool.name,
    )
    audit_record_change(event, workspace=workspace, actor=actor)


def check_tool_fields(*, workspace: Workspace, fields: dict, tool: Tool | None = None) -> None:
    """Validate a create or edit before it is applied or filed for approval, so nobody
    is asked to approve a tool that could never be saved."""
    unknown = sorted(set(fields) - set(TOOL_FIELDS))
    if unknown:
        raise WardenError("validation_error", "Unknown tool fields.", {"fields": unknown})
    if tool is None:
        draft = Tool(workspace=workspace, **fields)
    else:
        draft = Tool(**{f.attname: getattr(tool, f.attname) for f in Tool._meta.concrete_fields})
        for name, value in fields.items():
            setattr(draft, name, value)
    _validate_tool(draft)


@transaction.atomic
def tool_create(*, workspace: Workspace, actor: Actor, reason: str = "", **fields) -> Tool:
    unknown = sorted(set(fields) - set(TOOL_FIELDS))
    if unknown:
        raise WardenError("validation_error", "Unknown tool fields.", {"fields": unknown})
    locked = _bump_policy(workspace)
    tool = Tool(workspace=locked, **fields)
    if isinstance(tool.condition, str):
        tool.condition = tool.condition.strip()
    _validate_tool(tool)
    tool.save(force_insert=True)
    _audit_tool(tool, locked, actor, AuditAction.TOOL_CREATED, None, tool.snapshot(), reason)
    versions.changed(locked, actor, versions.tool_rows(tool.name, None, tool_entry(tool)), reason)
    return tool


@transaction.atomic
def tool_update(*, tool: Tool, actor: Actor, changes: dict, reason: str = "") -> Tool:
    unknown = sorted(set(changes) - set(TOOL_FIELDS))
    if unknown:
        raise WardenError("validation_error", "Unknown tool fields.", {"fields": unknown})
    locked = _bump_policy(tool.workspace)
    tool = Tool.objects.select_for_update().get(pk=tool.pk)
    before = tool.snapshot()
    was = (before["name"], tool_entry(tool))
    for field, value in changes.items():
        setattr(
            tool, field, value.strip() if field == "condition" and isinstance(value, str) else value
        )
    tool.workspace = locked
    _validate_tool(tool)
    tool.updated_at = timezone.now()
    tool.save()
    _audit_tool(tool, locked, actor, AuditAction.TOOL_UPDATED, before, tool.snapshot(), reason)
    now = tool_entry(tool)
    if was[0] == tool.name:
        rows = versions.tool_rows(tool.name, was[1], now)
    else:  # renamed: the document loses one entry and gains another
        rows = {
            **versions.tool_rows(was[0], was[1], None),
            **versions.tool_rows(tool.name, None, now),
        }
    versions.changed(locked, actor, rows, reason)
    return tool


@transaction.atomic
def tool_delete(*, tool: Tool, actor: Actor, reason: str = "") -> None:
    locked = _bump_policy(tool.workspace)
    tool = Tool.objects.select_for_update().get(pk=tool.pk)
    before = tool.snapshot()
    was = tool_entry(tool)
    pk = tool.pk
    tool.delete()
    tool.pk = pk
    _audit_tool(tool, locked, actor, AuditAction.TOOL_DELETED, before, None, reason)
    versions.changed(locked, actor, versions.tool_rows(tool.name, was, None), reason)
