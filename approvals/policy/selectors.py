"""Reads of policy versions, always scoped to a workspace."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from approvals.models import PolicyVersion
from tenants.models import Workspace
from tenants.scoping import scoped


def policy_version_list(*, workspace: Workspace) -> QuerySet[PolicyVersion]:
    return scoped(PolicyVersion.objects.all(), workspace).order_by("-number")


def policy_version_get(*, workspace: Workspace, number: int) -> PolicyVersion | None:
    return policy_version_list(workspace=workspace).filter(number=number).first()


def policy_version_for(*, workspace: Workspace, policy_version: int) -> PolicyVersion | None:
    """The latest version applied at or before a catalog counter value (what an audit
    entry recorded): the policy a decision was made under, when it came from a file."""
    return (
        policy_version_list(workspace=workspace)
        .filter(policy_version__lte=policy_version)
        .order_by("-policy_version", "-number")
        .first()
    )


def policy_version_neighbours(
    *, version: PolicyVersion
) -> tuple[PolicyVersion | None, PolicyVersion | None]:
    """The versions just before and after `version`, in its own workspace."""
    versions = PolicyVersion.objects.filter(workspace_id=version.workspace_id)
    before = versions.filter(number__lt=version.number).order_by("-number").first()
    after = versions.filter(number__gt=version.number).order_by("number").first()
    return before, after


def document_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Two documents compared, as `{"tool x: field": {"before", "after"}}` rows."""
    rows: dict[str, dict[str, Any]] = {}
    for section in ("settings", "automation"):
        was, now = before.get(section) or {}, after.get(section) or {}
        for name in sorted(set(was) | set(now)):
            if was.get(name) != now.get(name):
                rows[f"{section}: {name}"] = {"before": was.get(name), "after": now.get(name)}
    old = {t["name"]: t for t in before.get("tools") or []}
    new = {t["name"]: t for t in after.get("tools") or []}
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            rows[f"tool {name}"] = {"before": a, "after": b}
            continue
        for field in a:
            if a.get(field) != b.get(field):
                rows[f"tool {name}: {field}"] = {"before": a.get(field), "after": b.get(field)}
    return rows
