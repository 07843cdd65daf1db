"""The shadow report: where a tool's shadow rule disagreed with the live decision.

The gate records the shadow rule's would-be decision on the request
(`ActionRequest.shadow`, approvals.asking.shadow_decision); this reads them back,
per tool: how many were shadowed, how many disagreed and how (live -> shadow), with a
few examples. Read-only; scoped to one workspace."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from django.utils import timezone

from approvals.models import ActionRequest
from common.errors import WardenError
from common.scoping import scoped
from tenants.models import Workspace

MAX_DAYS = 365
EXAMPLES_PER_TOOL = 5


def _label(outcome: str, code: str) -> str:
    if outcome == "denied":
        return f"denied ({code})" if code else "denied"
    return "needs a human" if outcome == "requires_confirmation" else outcome


def shadow_report(*, workspace: Workspace, days: int = 30, now=None) -> dict[str, Any]:
    if type(days) is not int or not 1 <= days <= MAX_DAYS:
        raise WardenError(
            "validation_error",
            "Invalid window.",
            {"days": [f"A whole number from 1 to {MAX_DAYS}."]},
        )
    now = now or timezone.now()
    since = now - timedelta(days=days)
    rows = (
        scoped(ActionRequest.objects.all(), workspace)
        .filter(created_at__gte=since, shadow__isnull=False)
        .order_by("-created_at")
        .values_list("id", "tool_name", "decision", "denial_code", "shadow", "created_at")
    )
    shadowed: Counter = Counter()
    disagreed: Counter = Counter()
    transitions: dict[str, Counter] = defaultdict(Counter)
    examples: dict[str, list] = defaultdict(list)
    rules: dict[str, str] = {}
    for pk, tool, decision, code, shadow, created in rows.iterator(chunk_size=2000):
        if not isinstance(shadow, dict):
            continue
        shadowed[tool] += 1
        rules.setdefault(tool, str(shadow.get("rule_checked", "")))
        if shadow.get("agrees"):
            continue
        disagreed[tool] += 1
        live = _label(decision, code)
        would = _label(str(shadow.get("outcome", "")), str(shadow.get("code", "")))
        transitions[tool][(live, would)] += 1
        if len(examples[tool]) < EXAMPLES_PER_TOOL:
            examples[tool].append(
                {
                    "action_id": str(pk),
                    "created_at": created.isoformat(),
                    "live": live,
                    "shadow": would,
                }
            )
    tools = [
        {
            "tool": tool,
            "shadow_rule": rules.get(tool, ""),
            "shadowed": shadowed[tool],
            "disagreements": disagreed[tool],
            "transitions": [
                {"live": live, "shadow": would, "count": n}
                for (live, would), n in sorted(
                    transitions[tool].items(), key=lambda i: (-i[1], i[0])
                )
            ],
            "examples": examples[tool],
        }
        for tool in sorted(shadowed, key=lambda t: (-disagreed[t], t))
    ]
    return {
        "days": days,
        "since": since.isoformat(),
        "shadowed": sum(shadowed.values()),
        "disagreements": sum(disagreed.values()),
        "tools": tools,
    }
