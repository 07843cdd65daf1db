"""Evidence reads, always workspace-scoped. The API and the admin audit browser use
the same filters, so what a compliance officer sees in one they can fetch from the
other.

Filters (all optional; unknown keys are ignored so a view can pass its query params):
- actor_prefix: "key:" / "user:" / "system:" (the colon is optional) -> indexed
  `actor_type` column, never a LIKE scan;
- actor: exact actor label ("key:<uuid>", "user:<email>");
- action, tool, decision, request_id: exact;
- since / until: created_at >= since, < until (ISO 8601 strings or datetimes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.models import (
    AuditEntry,
    AuditPending,
    EvidenceAttachment,
    ExceptionRecord,
    VersionLog,
)
from common.errors import WardenError
from common.scoping import scoped

if TYPE_CHECKING:
    from tenants.models import Workspace

ACTOR_TYPES = ("key", "user", "system")


def workspace_model():
    """The workspace model, reached through the evidence's own foreign key: audit names
    the workspace only by lazy reference, its commands included."""
    return AuditEntry._meta.get_field("workspace").related_model


def _invalid(field: str, message: str) -> WardenError:
    return WardenError("validation_error", "Invalid filter.", {field: [message]})


# Explicit bounds for time filters: a date near year 1 or 9999 with a UTC offset
# overflows when converted to UTC (OverflowError, a 500 on SQLite), and nothing in the
# evidence predates 1900 or follows 9998.
EARLIEST_WHEN = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_WHEN = datetime(9999, 1, 1, tzinfo=UTC)
_BOUNDS_MESSAGE = "Use a date between 1900-01-01 and 9998-12-31 (UTC)."
MAX_POLICY_VERSION = 2**31 - 1  # the column's range, as the schema declares it


def parse_when(value: Any, field: str) -> datetime | None:
    """A datetime from a datetime, an ISO 8601 timestamp or a date (midnight UTC),
    in UTC and within [EARLIEST_WHEN, LATEST_WHEN)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        when = value
    else:
        text = str(value).strip()
        try:
            when = parse_datetime(text)
            if when is None and (day := parse_date(text)) is not None:
                when = datetime(day.year, day.month, day.day)
        except ValueError:
            when = None
        if when is None:
            raise _invalid(field, "Use an ISO 8601 date or timestamp.")
    if timezone.is_naive(when):
        when = timezone.make_aware(when, UTC)
    try:
        when = when.astimezone(UTC)
    except OverflowError:
        raise _invalid(field, _BOUNDS_MESSAGE) from None
    if not EARLIEST_WHEN <= when < LATEST_WHEN:
        raise _invalid(field, _BOUNDS_MESSAGE)
    return when


def _text(filters: dict, field: str, max_length: int) -> str | None:
    value = filters.get(field)
    if value in (None, ""):
        return None
    value = str(value)
    if len(value) > max_length:
        raise _invalid(field, f"At most {max_length} characters.")
    return value


def _time_range(queryset: QuerySet, filters: dict) -> QuerySet:
    since = parse_when(filters.get("since"), "since")
    until = parse_when(filters.get("until"), "until")
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset


def audit_entries(*, workspace: Workspace, filters: dict | None = None) -> QuerySet[AuditEntry]:
    """The workspace's audit entries matching `filters`, newest first."""
    filters = filters or {}
    queryset = scoped(AuditEntry.objects.all(), workspace)
    prefix = _text(filters, "actor_prefix", 16)
    if prefix is not None:
        kind = prefix.rstrip(":")
        if kind not in ACTOR_TYPES:
            raise _invalid("actor_prefix", "One of key:, user:, system:.")
        queryset = queryset.filter(actor_type=kind)
    for field, max_length in (
        ("actor", 254),
        ("action", 48),
        ("tool", 200),
        ("decision", 32),
        ("request_id", 64),
    ):
        value = _text(filters, field, max_length)
        if value is not None:
            queryset = queryset.filter(**{field: value})
    return _time_range(queryset, filters).order_by("-seq")


def exception_records(
    *, workspace: Workspace, filters: dict | None = None
) -> QuerySet[ExceptionRecord]:
    """Exception records matching `filters` (kind, severity, subject, resolved=true|false,
    since, until), newest first."""
    filters = filters or {}
    queryset = scoped(ExceptionRecord.objects.select_related("audit_entry"), workspace)
    for field, choices in (
        ("kind", ExceptionRecord.Kind.values),
        ("severity", ExceptionRecord.Severity.values),
    ):
        value = _text(filters, field, 24)
        if value is not None:
            if value not in choices:
                raise _invalid(field, f"One of {', '.join(choices)}.")
            queryset = queryset.filter(**{field: value})
    subject = _text(filters, "subject", 254)
    if subject is not None:
        queryset = queryset.filter(subject=subject)
    resolved = filters.get("resolved")
    if resolved not in (None, ""):
        flag = str(resolved).lower()
        if flag not in ("true", "false", "1", "0"):
            raise _invalid("resolved", "true or false.")
        queryset = queryset.filter(resolved_at__isnull=flag in ("false", "0"))
    return _time_range(queryset, filters).order_by("-id")


def version_logs(*, workspace: Workspace, filters: dict | None = None) -> QuerySet[VersionLog]:
    """Version logs matching `filters` (target_type, target_id, actor, policy_version,
    since, until), newest first."""
    filters = filters or {}
    queryset = scoped(VersionLog.objects.select_related("audit_entry"), workspace)
    for field, max_length in (("target_type", 48), ("target_id", 64), ("actor", 254)):
        value = _text(filters, field, max_length)
        if value is not None:
            queryset = queryset.filter(**{field: value})
    version = filters.get("policy_version")
    if version not in (None, ""):
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise _invalid("policy_version", "An integer.") from None
        if not 0 <= number <= MAX_POLICY_VERSION:
            raise _invalid("policy_version", f"An integer from 0 to {MAX_POLICY_VERSION}.")
        queryset = queryset.filter(policy_version=number)
    return _time_range(queryset, filters).order_by("-id")


def exception_record_get(*, workspace: Workspace, pk) -> ExceptionRecord | None:
    return (
        scoped(ExceptionRecord.objects.select_related("audit_entry"), workspace)
        .filter(pk=pk)
        .first()
    )


def attachments_of(*, workspace: Workspace, target_type: str, target_id) -> QuerySet:
    """The attachment links of one evidence object of `workspace`, oldest first."""
    return scoped(EvidenceAttachment.objects.all(), workspace).filter(
        target_type=target_type, target_id=str(target_id)
    )


def version_log_get(*, workspace: Workspace, pk) -> VersionLog | None:
    return scoped(VersionLog.objects.all(), workspace).filter(pk=pk).first()


def sealer_lag_seconds(*, now=None) -> float:
    """Age of the oldest entry still queued for the chain across all workspaces (group
    commit), 0 when the queue is empty: the operator's sealer-lag gauge."""
    oldest = AuditPending.objects.order_by("created_at").values_list("created_at", flat=True)
    first = oldest.first()
    if first is None:
        return 0.0
    return max(((now or timezone.now()) - first).total_seconds(), 0.0)
