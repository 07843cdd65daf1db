"""Applying a policy document through the same door as every other change.

`policy_apply`: the parts that provably narrow apply at once, in one transaction with
their audit entries (written by the catalog and workspace services) and a policy
version; the rest becomes ONE pending governed request, `warden.policy.apply`, whose
review page lists the whole diff. The proposer (and their custody set) cannot approve it;
on approval the base is checked again (the objects must still be as they were when it
was proposed) and the rest applies in the approval's transaction, with a policy version
naming the approvers. A rollback proposes an earlier version's document the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import catalog, confirmations, door
from approvals.asking import platform_request_submit
from approvals.governance import Target
from approvals.guard import Grant, granted
from approvals.models import ActionRequest, PolicyVersion, Tool
from approvals.outcome import Outcome
from approvals.policy import versions
from approvals.policy.document import (
    TOOL_FIELDS,
    PolicyDocument,
    automation_entry,
    automation_row,
    parse_document,
    settings_entry,
    tool_entry,
)
from approvals.policy.planning import CREATE, DELETE, UPDATE, ObjectChange, Plan, plan
from audit.models import ExceptionRecord
from audit.services import exception_record
from common.actor import Actor
from common.errors import WardenError
from tenants import services as tenant_services
from tenants.models import Workspace

OPERATION = "warden.policy.apply"
# Targets that are the workspace's settings: changing them needs `workspace:admin`
# (humans: manage_workspace); the catalog alone needs `tools:write` (manage_tools).
SETTINGS_TARGETS = frozenset({Target.WORKSPACE, Target.AUTOMATION})
# The gate asks platform requests for a scope; the endpoint has checked the proposer's.
DOOR_SCOPE = "workspace:admin"


@dataclass
class ApplyResult:
    plan: Plan
    applied: list[str] = field(default_factory=list)  # labels applied at once
    version: PolicyVersion | None = None
    outcome: Outcome | None = None  # the pending request, when part of it is governed
    pending: list[str] = field(default_factory=list)  # labels waiting for a human

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "plan": self.plan.as_dict(),
            "applied": self.applied,
            "pending": self.pending,
            "version": self.version.number if self.version else None,
            "request": None,
        }
        if self.outcome is not None:
            body["request"] = {
                "id": str(self.outcome.action_id),
                "decision": "requires_confirmation"
                if self.outcome.pending
                else str(self.outcome.kind),
                "confirmation_token": self.outcome.confirmation_token,
                "summary": self.outcome.summary,
                "expires_at": self.outcome.expires_at.isoformat()
                if self.outcome.expires_at
                else None,
                "governed_operations": self.plan.operations,
            }
        return body


# --- applying one object's change -----------------------------------------------------------


def _settings_changes(values: dict[str, Any]) -> dict[str, Any]:
    changes = dict(values)
    if "confirmation_ttl" in changes:
        changes["confirmation_ttl"] = timedelta(seconds=int(changes["confirmation_ttl"]))
    if "live_after" in changes:
        changes["live_after"] = timezone.datetime.fromisoformat(changes["live_after"])
    return changes


def _apply_object(
    workspace: Workspace, actor: Actor, item: dict[str, Any], fields: list[str], reason: str
) -> None:
    """`item`: {target, verb, name, target_id, after}; `fields`: which of `after` to set."""
    target, verb, after = item["target"], item["verb"], item["after"]
    if target == Target.AUTOMATION:
        # Through the applier notifications registered with the door (its service
        # validates and audits); a document speaks for the workspace, as the door's
        # PATCH /workspace does, so the host list is not the admin form's operator-only.
        apply = door.registered_applier(Target.AUTOMATION, "update")
        if apply is None:  # pragma: no cover - notifications registers it at start
            raise WardenError("validation_error", "No way to update the automation settings.")
        apply(
            workspace=workspace,
            actor=actor,
            target_id=str(workspace.pk),
            values={"changes": {f: after[f] for f in fields}, "operator": True},
            reason=reason,
            custody=[],
        )
        return
    if target == Target.WORKSPACE:
        tenant_services.workspace_update(
            workspace=workspace,
            actor=actor,
            changes=_settings_changes({f: after[f] for f in fields}),
            reason=reason,
        )
        return
    if verb == CREATE:
        catalog.tool_create(workspace=workspace, actor=actor, reason=reason, **after)
        return
    tool = Tool.objects.filter(workspace=workspace, name=item["name"]).first()
    if tool is None:  # pragma: no cover - the base check runs first
        raise _moved(item["name"])
    if verb == DELETE:
        catalog.tool_delete(tool=tool, actor=actor, reason=reason)
    else:
        catalog.tool_update(
            tool=tool, actor=actor, changes={f: after[f] for f in fields}, reason=reason
        )


def _item(change: ObjectChange) -> dict[str, Any]:
    return {
        "target": change.target,
        "verb": change.verb,
        "name": change.name,
        "target_id": change.target_id,
        "after": change.after,
    }


def _moved(name: str) -> WardenError:
    return WardenError(
        "policy_base_moved",
        "The policy changed since this was proposed; deny this request and plan again.",
        {"object": name},
    )


def _custody(actor: Actor) -> list:
    if actor.key is not None:
        return sorted(set(actor.key.custody_user_ids or []) | {actor.key.owner_id})
    if actor.user is not None:
        return [actor.user.pk]
    return []


def _request_tool(p: Plan) -> Tool:
    return Tool(
        name=OPERATION,
        description="Apply the governed part of a policy document",
        level="write",
        irreversible=any(c.irreversible for c in p.governed),
        confirmation="always",
        enabled=True,
    )


def _summary(p: Plan, reason: str) -> str:
    labels = ", ".join(c.label for c in p.governed[:10])
    more = f" and {len(p.governed) - 10} more" if len(p.governed) > 10 else ""
    text = (
        f"Apply policy to {labels}{more}: {len(p.whole_diff(governed_only=True))} governed "
        f"change(s) ({', '.join(p.operations)})"
    )
    return (text + (f". Reason: {reason}" if reason else "."))[:2000]


# --- the entry points -------------------------------------------------------------------------


def policy_apply(
    *,
    workspace: Workspace,
    document: PolicyDocument | dict | str,
    actor: Actor,
    reason: str = "",
    break_glass: str = "",
    may_change_settings: bool = True,
) -> ApplyResult:
    """Narrowing parts at once, the rest as one pending request (or, for an operator at
    a shell with `break_glass`, everything now, recorded as an override).

    `may_change_settings`: whether the proposer holds `workspace:admin` (the API passes
    its principal's answer). A document whose settings differ from the workspace's is
    refused whole without it; one that changes the catalog only needs `tools:write`."""
    if not isinstance(document, PolicyDocument):
        document = parse_document(document)
    reason = (reason or "").strip()[:2000]
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
        p = plan(locked, document, impact=False)
        result = ApplyResult(p)
        if p.empty:
            return result
        if not may_change_settings:
            _require_settings_scope(p)
        if p.governed and not break_glass and actor.key is None and actor.user is None:
            raise WardenError(
                "approval_required",
                "Part of this policy loosens governance. Apply it through the API (a human "
                'then approves it), or as an operator with --break-glass "reason".',
                {"operations": p.operations},
            )
        if break_glass:
            return _break_glass(locked, actor, p, reason, break_glass)
        note = f"policy apply: {reason}" if reason else "policy apply"
        with versions.recording(
            locked, source=PolicyVersion.Source.APPLIED, author=actor.label, reason=reason
        ) as recorded:
            for change in p.changes:
                if change.verb == UPDATE and change.immediate:
                    _apply_object(locked, actor, _item(change), list(change.immediate), note)
                elif change.verb != UPDATE and change.narrows:
                    _apply_object(locked, actor, _item(change), list(TOOL_FIELDS), note)
                else:
                    continue
                result.applied.append(change.label)
        result.version = recorded.version
        if p.governed:
            result.outcome = _file(locked, actor, p, reason)
            result.pending = [c.label for c in p.governed]
    return result


def _require_settings_scope(p: Plan) -> None:
    touched = sorted({c.label for c in p.changes if c.target in SETTINGS_TARGETS})
    if touched:
        raise WardenError(
            "forbidden_by_scope",
            "Changing the workspace's settings needs workspace:admin (humans: "
            "manage_workspace); leave `settings` as exported to change the catalog only.",
            {"required_scope": "workspace:admin", "objects": touched},
        )


def _base(change: ObjectChange) -> dict[str, Any] | None:
    """The object's document fields as the approver's change starts from."""
    if change.before is None:
        return None
    if change.verb == DELETE:
        return change.before
    return {f: (change.after[f] if f in change.immediate else v) for f, v in change.before.items()}


def _file(workspace: Workspace, actor: Actor, p: Plan, reason: str) -> Outcome:
    objects = [
        {
            **_item(c),
            "base": _base(c),
            "fields": list(c.governed) if c.verb == UPDATE else list(TOOL_FIELDS),
            "operations": list(c.operations),
        }
        for c in p.governed
    ]
    approvals = max(c.approvals for c in p.governed)
    permission = (
        "manage_workspace"
        if any(c.permission == "manage_workspace" for c in p.governed)
        else "manage_tools"
    )
    params = {
        "policy": {"workspace": workspace.slug, "objects": objects},
        "label": f"policy of workspace {workspace.slug}",
        "changes": p.whole_diff(governed_only=True),
        "operations": p.operations,
        "effect": "agents could do more without a human: see each governed operation",
        "approve_permission": permission,
        "approvals_required": approvals,
    }
    return platform_request_submit(
        workspace=workspace,
        actor=actor,
        tool=_request_tool(p),
        params=params,
        binding={"target": "policy", "objects": objects},
        summary=_summary(p, reason),
        approvals_required=approvals,
        custody=_custody(actor),
        scope=DOOR_SCOPE,
        reason=reason,
    )


def _current(workspace: Workspace, item: dict[str, Any]) -> dict[str, Any] | None:
    if item["target"] == Target.WORKSPACE:
        return settings_entry(workspace)
    if item["target"] == Target.AUTOMATION:
        return automation_entry(automation_row(workspace))
    tool = Tool.objects.filter(workspace=workspace, name=item["name"]).first()
    return tool_entry(tool) if tool is not None else None


def _apply_governed(workspace, actor, objects: list[dict], reason: str) -> None:
    for item in objects:
        current = _current(workspace, item)
        if current != item["base"]:
            raise _moved(item["name"])
        pk = None if item["verb"] == CREATE else item.get("target_id")
        with granted(Grant(item["target"], pk, frozenset(item["operations"]))):
            _apply_object(workspace, actor, item, item["fields"], reason)


def apply_approved(*, confirmation, action: ActionRequest, actor: Actor) -> None:
    """Approval hook: the threshold is met; re-check the base and apply, in the
    approval's transaction, with the approvers on the version."""
    params = action.params or {}
    if action.tool_name != OPERATION or "policy" not in params:
        return
    workspace = Workspace.objects.select_for_update().get(pk=confirmation.workspace_id)
    note = f"policy request {action.pk} by {action.requested_by}, approved"
    with versions.recording(
        workspace,
        source=PolicyVersion.Source.APPROVED,
        author=action.requested_by,
        approvers=versions.approvers_of(confirmation),
        reason=action.reason,
        operations=list(params.get("operations") or ()),
        request=action,
    ):
        _apply_governed(workspace, actor, params["policy"]["objects"], note)
    ActionRequest.objects.filter(pk=action.pk).update(
        status=ActionRequest.Status.EXECUTED,
        result_status="succeeded",
        result_reported_at=timezone.now(),
    )
    action.status = ActionRequest.Status.EXECUTED


def _break_glass(workspace, actor, p: Plan, reason: str, why: str) -> ApplyResult:
    if actor.key is not None or actor.user is not None:
        raise WardenError("humans_only", "Break-glass is for operators at a shell only.")
    why = why.strip()
    if not why:
        raise WardenError("validation_error", "Break-glass needs a reason.")
    note = f"break-glass: {why}"
    with versions.recording(
        workspace,
        source=PolicyVersion.Source.BREAK_GLASS,
        author=actor.label,
        reason=reason or why,
        operations=p.operations,
    ) as recorded:
        _break_glass_apply(workspace, actor, p, note, why)
    return ApplyResult(p, applied=[c.label for c in p.changes], version=recorded.version)


def _break_glass_apply(workspace, actor, p: Plan, note: str, why: str) -> None:
    objects = []
    for change in p.changes:
        fields = list(change.fields) if change.verb == UPDATE else list(TOOL_FIELDS)
        objects.append(
            {
                **_item(change),
                "base": change.before,
                "fields": fields,
                "operations": list(change.operations),
            }
        )
    _apply_governed(workspace, actor, objects, note)
    if p.governed:
        exception_record(
            workspace=workspace,
            actor=actor,
            kind=ExceptionRecord.Kind.OVERRIDE,
            severity=ExceptionRecord.Severity.HIGH,
            what=f"Break-glass policy apply: {', '.join(p.operations)}"[:300],
            why=why,
            evidence={"operations": p.operations, "changes": p.whole_diff(governed_only=True)},
            mitigation="Review the change; file it through the approval queue next time.",
            subject=actor.label,
            action="governance.break_glass",
        )


def policy_rollback(
    *,
    workspace: Workspace,
    number: int,
    actor: Actor,
    reason: str = "",
    break_glass: str = "",
    may_change_settings: bool = True,
) -> ApplyResult:
    """Propose an earlier version's document again: a change like any other."""
    version = PolicyVersion.objects.filter(workspace=workspace, number=number).first()
    if version is None:
        raise WardenError("not_found", "Not found.")
    document = {**version.document, "workspace": workspace.slug}
    return policy_apply(
        workspace=workspace,
        document=document,
        actor=actor,
        reason=reason or f"rollback to version {number}",
        break_glass=break_glass,
        may_change_settings=may_change_settings,
    )


def register() -> None:
    if apply_approved not in confirmations.APPROVAL_HOOKS:
        confirmations.APPROVAL_HOOKS.append(apply_approved)
