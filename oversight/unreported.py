"""Unreported results are findings (issue 27, item 1).

On the ask-only path the agent asks, Warden allows, and the agent acts with its own
credentials; what happened is known only if it reports it (`POST /actions/{id}/result`).
An allowed action with no reported result and no gateway execution, once the
workspace's window (`unreported_result_window_minutes`, automation settings) has
passed, opens one exception record (kind `unreported_result`, subject
`action:<id>`) and reminds the key's owner, in one transaction per key and run.

Never twice for the same action: the rows are locked and re-checked, and a partial
unique constraint on (workspace, subject) for this kind holds even against a
concurrent run. Dry-run answers and platform operations are not flagged (nothing was
to be done for real by an agent). An action older than its window plus `LOOKBACK` is
no longer looked at, so switching the check on flags at most a week of history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from approvals.models import ActionRequest, Tool
from audit.models import AuditAction, ExceptionRecord
from audit.services import exception_record
from common.actor import Actor
from keys.models import MachineKey
from notifications.selectors import automation_settings_for
from notifications.services import MAX_UNREPORTED_WINDOW_MINUTES, notify_unreported_results
from tenants.models import Workspace

ACTOR = Actor.system("unreported-results")
LOOKBACK = timedelta(days=7)
PER_RUN = 500  # actions flagged per workspace and run; the next run takes the rest
KIND = ExceptionRecord.Kind.UNREPORTED_RESULT


def subject_of(action_id) -> str:
    return f"action:{action_id}"


def _unreported(queryset: QuerySet) -> QuerySet:
    """Allowed agent actions, live, with no result and no gateway execution."""
    return queryset.filter(
        status=ActionRequest.Status.ALLOWED,
        key__isnull=False,
        dry_run=False,
        result_reported_at__isnull=True,
        execution__isnull=True,
    )


def workspaces_with_unreported(*, now: datetime | None = None) -> list:
    """Ids of active workspaces holding an action that may be due (whatever their
    window): the fan-out, one task per workspace."""
    now = now or timezone.now()
    oldest = now - LOOKBACK - timedelta(minutes=MAX_UNREPORTED_WINDOW_MINUTES)
    return list(
        _unreported(ActionRequest.objects.all())
        .filter(created_at__gte=oldest, workspace__deleted_at__isnull=True)
        .order_by()
        .values_list("workspace_id", flat=True)
        .distinct()
    )


def unreported_due(
    *, workspace: Workspace, window_minutes: int, now: datetime, limit: int = PER_RUN
) -> list[ActionRequest]:
    """The workspace's actions past the window and not flagged yet, oldest first."""
    deadline = now - timedelta(minutes=window_minutes)
    oldest = deadline - LOOKBACK
    if workspace.audit_retention_days:
        # Nothing older than the retention horizon: a resolved record pruned with the
        # audit log must not let its action be flagged a second time.
        oldest = max(oldest, now - timedelta(days=workspace.audit_retention_days))
    candidates = list(
        _unreported(ActionRequest.objects.filter(workspace=workspace))
        .filter(created_at__lte=deadline, created_at__gte=oldest)
        # Allowed at once, or allowed when its confirmation was used: the window runs
        # from then (a human may have taken longer than the window to approve).
        .filter(Q(confirmation__isnull=True) | Q(confirmation__used_at__lte=deadline))
        .order_by("created_at", "id")
        .only("id", "key_id", "tool_name", "tool_id", "created_at", "params_digest")[: limit * 2]
    )
    flagged = set(
        ExceptionRecord.objects.filter(
            workspace=workspace,
            kind=KIND,
            subject__in=[subject_of(a.pk) for a in candidates],
        ).values_list("subject", flat=True)
    )
    return [a for a in candidates if subject_of(a.pk) not in flagged][:limit]


@dataclass(frozen=True)
class FlagRun:
    flagged: int
    keys_reminded: int


def unreported_results_flag(*, workspace: Workspace, now: datetime | None = None) -> FlagRun:
    """Open the exception records due in `workspace` and remind each key's owner once
    per run. Idempotent: a repeated or concurrent run flags nothing twice."""
    window = automation_settings_for(workspace).unreported_result_window_minutes
    if not window:
        return FlagRun(0, 0)
    now = now or timezone.now()
    by_key: dict = defaultdict(list)
    for action in unreported_due(workspace=workspace, window_minutes=window, now=now):
        by_key[action.key_id].append(action.pk)
    keys = MachineKey.objects.select_related("owner").in_bulk(list(by_key))
    flagged = reminded = 0
    for key_id, action_ids in by_key.items():
        try:
            count = _flag_key(workspace, keys[key_id], action_ids, window, now)
        except IntegrityError:  # a concurrent run flagged one of them first
            count = 0
        flagged += count
        reminded += count > 0
    return FlagRun(flagged, reminded)


@transaction.atomic
def _flag_key(workspace, key, action_ids, window: int, now: datetime) -> int:
    """One key's batch: lock, re-check, record, remind; all or nothing."""
    locked = list(
        _unreported(ActionRequest.objects.filter(pk__in=action_ids))
        .select_related("tool", "confirmation")
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("created_at", "id")
    )
    already = set(
        ExceptionRecord.objects.filter(
            workspace=workspace, kind=KIND, subject__in=[subject_of(a.pk) for a in locked]
        ).values_list("subject", flat=True)
    )
    items = []
    for action in locked:
        if subject_of(action.pk) in already:
            continue
        confirmation = getattr(action, "confirmation", None)
        allowed_at = (confirmation.used_at if confirmation else None) or action.created_at
        decided_at = allowed_at.isoformat()
        record = exception_record(
            workspace=workspace,
            actor=ACTOR,
            kind=KIND,
            severity=(
                ExceptionRecord.Severity.LOW
                if action.tool is not None and action.tool.level == Tool.Level.READ
                else ExceptionRecord.Severity.MEDIUM
            ),
            what=f"No result reported for {action.tool_name} within {window} minutes"[:300],
            why=(
                "The action was allowed, but the agent never reported what happened "
                "(POST /api/v1/actions/{id}/result) and Warden did not execute it: the "
                "evidence does not show whether, or how, it was carried out."
            ),
            evidence={
                "action_id": str(action.pk),
                "tool": action.tool_name,
                "key": str(key.pk),
                "key_prefix": key.prefix,
                "decided_at": decided_at,
                "window_minutes": window,
                "params_digest": action.params_digest,
            },
            mitigation="Have the agent report the result, or record here what happened.",
            subject=subject_of(action.pk),
            action=AuditAction.ACTION_RESULT_MISSING,
        )
        items.append(
            {
                "id": str(action.pk),
                "tool": action.tool_name,
                "decided_at": decided_at,
                "exception_id": record.pk,
            }
        )
    notify_unreported_results(workspace=workspace, key=key, items=items, window_minutes=window)
    return len(items)


def unreported_results_counts(workspace: Workspace) -> dict:
    """For the privacy summary and posture (two queries): the window, and how many
    actions were flagged (and are still open)."""
    figures = ExceptionRecord.objects.filter(workspace=workspace, kind=KIND).aggregate(
        flagged=Count("pk"), open=Count("pk", filter=Q(resolved_at__isnull=True))
    )
    return {
        "window_minutes": automation_settings_for(workspace).unreported_result_window_minutes,
        "flagged": figures["flagged"],
        "open": figures["open"],
    }
