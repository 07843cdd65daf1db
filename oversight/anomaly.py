"""Anomaly detection per machine key: the last hour against the key's own history.

Findings (each one ExceptionRecord with the numbers behind it, one notification, and
at most one per key, kind and window):
- volume:    requests in the window > max(3 x hourly mean, mean + 4 sd, floor of 20),
             the baseline counting every hour since the key's first request (quiet
             hours included) within the last 30 days;
- new_tool:  a tool name the key has never asked for before;
- new_level: a tool level (read/write/external) the key has never used before;
- new_hour:  activity at an hour of the day (UTC) at which the key was never active.

A key needs a real history before anything is flagged: its first request at least 7
days before the window and at least 50 requests in the history period. A new key (or
one with no history) therefore raises nothing, instead of a storm of "new tool" and
"new hour" alarms on its first day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Min
from django.db.models.functions import ExtractHour, TruncHour
from django.utils import timezone

from approvals.models import ActionRequest
from audit.models import ExceptionRecord
from audit.services import exception_record
from common.actor import Actor
from keys.models import MachineKey
from keys.services import key_set_suspended
from notifications.selectors import automation_settings_for
from notifications.services import notify_anomaly
from oversight.models import AnomalyFinding
from tenants.models import Workspace

ACTOR = Actor.system("anomaly-detection")


@dataclass(frozen=True)
class Thresholds:
    window: timedelta = timedelta(hours=1)
    history: timedelta = timedelta(days=30)
    min_history_age: timedelta = timedelta(days=7)
    min_history_requests: int = 50
    volume_factor: float = 3.0
    volume_sigmas: float = 4.0
    volume_floor: int = 20


DEFAULT = Thresholds()


@dataclass
class Finding:
    kind: str
    severity: str
    what: str
    why: str
    evidence: dict = field(default_factory=dict)


def window_ending(now: datetime, thresholds: Thresholds = DEFAULT) -> tuple[datetime, datetime]:
    """The last complete window: [end - window, end) with end on the hour."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return end - thresholds.window, end


def _requests(key: MachineKey):
    # order_by(): the model's default ordering would leak into DISTINCT and GROUP BY.
    return ActionRequest.objects.filter(workspace_id=key.workspace_id, key=key).order_by()


def analyze_key(
    key: MachineKey, *, window_start: datetime, window_end: datetime, t: Thresholds = DEFAULT
) -> list[Finding]:
    """The findings for one key and window (reads only)."""
    window = _requests(key).filter(created_at__gte=window_start, created_at__lt=window_end)
    window_count = window.count()
    if not window_count:
        return []
    before = _requests(key).filter(created_at__lt=window_start)
    first_seen = before.aggregate(first=Min("created_at"))["first"]
    history_start = window_start - t.history
    history = before.filter(created_at__gte=history_start)
    history_count = history.count()
    if (
        first_seen is None
        or first_seen > window_start - t.min_history_age
        or history_count < t.min_history_requests
    ):
        return []  # not enough history to know what "normal" is
    maturity = {
        "first_seen": first_seen.isoformat(),
        "history_requests": history_count,
        "history_days": t.history.days,
    }
    findings = []

    # Volume: every window-sized bucket since max(history start, first seen), zeros too.
    baseline_from = max(history_start, first_seen.replace(minute=0, second=0, microsecond=0))
    buckets = max(1, math.ceil((window_start - baseline_from) / t.window))
    counts = [
        row["n"]
        for row in history.filter(created_at__gte=baseline_from)
        .annotate(bucket=TruncHour("created_at"))
        .values("bucket")
        .annotate(n=Count("id"))
        .values("bucket", "n")
    ]
    total = sum(counts)
    mean = total / buckets
    variance = (sum((c - mean) ** 2 for c in counts) + (buckets - len(counts)) * mean**2) / buckets
    sd = math.sqrt(variance)
    threshold = max(t.volume_factor * mean, mean + t.volume_sigmas * sd, t.volume_floor)
    if window_count > threshold:
        ratio = window_count / mean if mean else None
        findings.append(
            Finding(
                kind="volume",
                severity=(
                    ExceptionRecord.Severity.HIGH
                    if ratio is None or ratio >= 10
                    else ExceptionRecord.Severity.MEDIUM
                ),
                what=f"{window_count} requests in one hour, baseline {mean:.1f}/h",
                why="Request volume far above this key's own hourly baseline.",
                evidence={
                    **maturity,
                    "window_requests": window_count,
                    "baseline_mean_per_hour": round(mean, 3),
                    "baseline_sd_per_hour": round(sd, 3),
                    "baseline_hours": buckets,
                    "threshold": round(threshold, 3),
                    "ratio_to_mean": round(ratio, 2) if ratio is not None else None,
                },
            )
        )

    # A tool never asked for before (all time, not just the history period).
    known_tools = set(before.values_list("tool_name", flat=True).distinct())
    window_tools = dict(
        window.values("tool_name").annotate(n=Count("id")).values_list("tool_name", "n")
    )
    new_tools = {name: n for name, n in sorted(window_tools.items()) if name not in known_tools}
    if new_tools:
        findings.append(
            Finding(
                kind="new_tool",
                severity=ExceptionRecord.Severity.MEDIUM,
                what=f"First use of {len(new_tools)} tool(s): {', '.join(new_tools)}"[:300],
                why="This key asked for tools it has never asked for before.",
                evidence={
                    **maturity,
                    "new_tools": new_tools,
                    "known_tools": len(known_tools),
                    "window_requests": window_count,
                },
            )
        )

    known_levels = set(
        before.exclude(tool__isnull=True).values_list("tool__level", flat=True).distinct()
    )
    window_levels = dict(
        window.exclude(tool__isnull=True)
        .values("tool__level")
        .annotate(n=Count("id"))
        .values_list("tool__level", "n")
    )
    new_levels = {lvl: n for lvl, n in sorted(window_levels.items()) if lvl not in known_levels}
    if new_levels:
        risky = {"write", "external"} & set(new_levels)
        findings.append(
            Finding(
                kind="new_level",
                severity=ExceptionRecord.Severity.HIGH
                if risky
                else ExceptionRecord.Severity.MEDIUM,
                what=f"First use of level(s): {', '.join(new_levels)}",
                why="This key used a tool level it has never used before.",
                evidence={
                    **maturity,
                    "new_levels": new_levels,
                    "known_levels": sorted(known_levels),
                },
            )
        )

    known_hours = set(
        before.annotate(hour=ExtractHour("created_at")).values_list("hour", flat=True).distinct()
    )
    window_hours = dict(
        window.annotate(hour=ExtractHour("created_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .values_list("hour", "n")
    )
    new_hours = {h: n for h, n in sorted(window_hours.items()) if h not in known_hours}
    if new_hours:
        findings.append(
            Finding(
                kind="new_hour",
                severity=ExceptionRecord.Severity.LOW,
                what="Activity at hour(s) never active before: "
                + ", ".join(f"{h:02d}:00 UTC" for h in new_hours),
                why="This key was active at an hour of the day it has never been active.",
                evidence={
                    **maturity,
                    "new_hours_utc": {str(h): n for h, n in new_hours.items()},
                    "known_hours_utc": sorted(known_hours),
                },
            )
        )
    return findings


def _record(
    key: MachineKey, finding: Finding, window_start: datetime, window_end: datetime
) -> tuple[object, bool] | None:
    """Record one finding (deduped), notify, and auto-suspend if the workspace says so."""
    with transaction.atomic():
        # Serialize detectors on the key row, so the dedupe check below is race-free.
        key = MachineKey.objects.select_for_update().select_related("workspace").get(pk=key.pk)
        if AnomalyFinding.objects.filter(
            key=key, kind=finding.kind, window_start=window_start
        ).exists():
            return None
        evidence = {
            **finding.evidence,
            "key_id": str(key.pk),
            "key_name": key.name,
            "window_start": window_start.isoformat(),
            "window_end": window_end.isoformat(),
        }
        record = exception_record(
            workspace=key.workspace,
            actor=ACTOR,
            kind=ExceptionRecord.Kind.ANOMALY,
            severity=finding.severity,
            what=f"Key {key.name}: {finding.what}"[:300],
            why=finding.why,
            evidence=evidence,
            mitigation="Check the key's recent requests; suspend or revoke it if the "
            "activity is not expected.",
            subject=f"key:{key.pk}",
        )
        saved = AnomalyFinding.objects.create(
            workspace=key.workspace,
            key=key,
            kind=finding.kind,
            window_start=window_start,
            window_end=window_end,
            evidence=evidence,
            exception_record=record,
        )
        suspended = False
        if automation_settings_for(key.workspace).anomaly_auto_suspend and key.revoked_at is None:
            key_set_suspended(
                key=key,
                suspended=True,
                actor=ACTOR,
                reason=f"auto-suspended: anomaly {finding.kind} (exception {record.pk})",
            )
            suspended = True
        notify_anomaly(finding=saved, suspended=suspended)
        return saved, suspended


def anomalies_detect(
    *, workspace: Workspace, now: datetime | None = None, thresholds: Thresholds = DEFAULT
) -> list:
    """Detect and record the findings of the last complete window for a workspace.
    Running it again for the same window records nothing new."""
    window_start, window_end = window_ending(now or timezone.now(), thresholds)
    key_ids = (
        ActionRequest.objects.filter(
            workspace=workspace,
            key__isnull=False,
            created_at__gte=window_start,
            created_at__lt=window_end,
        )
        .order_by()
        .values_list("key_id", flat=True)
        .distinct()
    )
    recorded = []
    keys = MachineKey.objects.filter(pk__in=list(key_ids), revoked_at__isnull=True).order_by("pk")
    for key in keys:
        for finding in analyze_key(
            key, window_start=window_start, window_end=window_end, t=thresholds
        ):
            result = _record(key, finding, window_start, window_end)
            if result is not None:
                recorded.append(result[0])
    return recorded


def workspaces_with_activity(*, now: datetime | None = None) -> list:
    window_start, window_end = window_ending(now or timezone.now())
    return list(
        ActionRequest.objects.filter(
            created_at__gte=window_start,
            created_at__lt=window_end,
            workspace__deleted_at__isnull=True,
        )
        .order_by()
        .values_list("workspace_id", flat=True)
        .distinct()
    )
