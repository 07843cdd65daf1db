"""The schema of every audit entry: which target an action names and which fields its
`input` may carry. audit_record() checks each entry against it before appending, so an
entry whose shape nobody declared never reaches the chain (and a reader of the evidence
knows what each action's input holds)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from audit.models import AuditAction


class TargetType(StrEnum):
    """What an audit entry is about (`AuditEntry.target_type`)."""

    WORKSPACE = "workspace"
    MEMBERSHIP = "membership"
    INVITATION = "invitation"
    USER = "user"
    MACHINE_KEY = "machine_key"
    TOOL = "tool"
    ACTION_REQUEST = "action_request"
    CONFIRMATION = "confirmation"
    EXCEPTION = "exception"
    AUDIT_CHAIN = "audit_chain"
    AUDIT_EXPORT_BATCH = "audit_export_batch"
    AUDIT_EXPORT_DESTINATION = "audit_export_destination"
    AUTOMATION_SETTINGS = "automation_settings"
    WEBHOOK_ENDPOINT = "webhook_endpoint"
    PRIVACY_SUMMARY = "privacy_summary"
    CONNECTOR = "connector"
    EXECUTION = "execution"
    APPROVAL_RECORD = "approval_record"
    EXCEPTION_RECORD = "exception_record"
    VERSION_LOG = "version_log"


@dataclass(frozen=True)
class EventType:
    targets: frozenset[TargetType]
    fields: frozenset[str]
    open_fields: bool = False  # True: further keys are named at run time (see below)


def _event(targets, *fields: str, open_fields: bool = False) -> EventType:
    targets = (targets,) if isinstance(targets, TargetType) else targets
    return EventType(frozenset(targets), frozenset(fields), open_fields)


T = TargetType
# A config change (audit_record_change): the VersionLog's before/after and the reason.
CHANGE = ("before", "after", "reason")
# An exception record (audit_record's exception_record).
EXCEPTION = ("kind", "severity", "what", "evidence")

EVENTS: dict[str, EventType] = {
    AuditAction.WORKSPACE_CREATED: _event(T.WORKSPACE, *CHANGE),
    AuditAction.WORKSPACE_SETTINGS_CHANGED: _event(
        (T.WORKSPACE, T.AUTOMATION_SETTINGS, T.AUDIT_EXPORT_DESTINATION), *CHANGE
    ),
    AuditAction.WORKSPACE_DELETED: _event(T.WORKSPACE, *CHANGE),
    AuditAction.MEMBER_ADDED: _event(T.MEMBERSHIP, *CHANGE),
    AuditAction.MEMBER_ROLE_CHANGED: _event(T.MEMBERSHIP, *CHANGE),
    AuditAction.MEMBER_REMOVED: _event(T.MEMBERSHIP, *CHANGE),
    AuditAction.MEMBER_INVITED: _event(T.INVITATION, *CHANGE),
    AuditAction.MEMBER_INVITATION_DECLINED: _event(T.INVITATION, *CHANGE),
    AuditAction.KEY_CREATED: _event(T.MACHINE_KEY, *CHANGE),
    AuditAction.KEY_UPDATED: _event(T.MACHINE_KEY, *CHANGE),
    AuditAction.KEY_ROTATED: _event(T.MACHINE_KEY, *CHANGE),
    AuditAction.KEY_REVOKED: _event(T.MACHINE_KEY, *CHANGE),
    AuditAction.KEY_SUSPENDED: _event(T.MACHINE_KEY, *CHANGE),
    AuditAction.KEY_UNSUSPENDED: _event(T.MACHINE_KEY, *CHANGE),
    AuditAction.TOOL_CREATED: _event(T.TOOL, *CHANGE),
    AuditAction.TOOL_UPDATED: _event(T.TOOL, *CHANGE),
    AuditAction.TOOL_DELETED: _event(T.TOOL, *CHANGE),
    AuditAction.WEBHOOK_CHANGED: _event(T.WEBHOOK_ENDPOINT, *CHANGE),
    AuditAction.CONNECTOR_CREATED: _event(T.CONNECTOR, *CHANGE),
    AuditAction.CONNECTOR_UPDATED: _event(T.CONNECTOR, *CHANGE),
    AuditAction.CONNECTOR_DELETED: _event(T.CONNECTOR, *CHANGE),
    # The gate
    AuditAction.ACTION_DECIDED: _event(T.ACTION_REQUEST, "params", "reason", "dry_run"),
    AuditAction.ACTION_RESULT_REPORTED: _event(
        T.ACTION_REQUEST, "status", "output_bytes", "output_sha256"
    ),
    AuditAction.CONFIRMATION_APPROVED: _event(
        T.CONFIRMATION, "action_request", "approvals", "approvals_required"
    ),
    AuditAction.CONFIRMATION_DENIED: _event(
        T.CONFIRMATION, "action_request", "approvals", "approvals_required"
    ),
    AuditAction.CONFIRMATION_EXPIRED: _event(T.CONFIRMATION, "action_request", "expires_at"),
    AuditAction.CONFIRMATION_USED: _event(T.CONFIRMATION, "action_request", "dry_run"),
    AuditAction.CONNECTOR_SYNCED: _event(T.CONNECTOR, "created", "changed", "removed", "skipped"),
    AuditAction.EXECUTION_RECORDED: _event(
        T.EXECUTION,
        "action_request",
        "params",
        "connector",
        "upstream_tool",
        "output_bytes",
        "output_sha256",
        "latency_ms",
        "error",
    ),
    # Exception records
    AuditAction.ANOMALY_DETECTED: _event(T.EXCEPTION, *EXCEPTION),
    AuditAction.POLICY_ERROR: _event(T.EXCEPTION, *EXCEPTION),
    AuditAction.DENIAL_RECORDED: _event(T.EXCEPTION, *EXCEPTION),
    AuditAction.GOVERNANCE_BREAK_GLASS: _event(T.EXCEPTION, *EXCEPTION),
    AuditAction.WEBHOOK_DISABLED: _event(T.EXCEPTION, *EXCEPTION),
    AuditAction.CREDENTIAL_IN_PARAMS: _event(T.EXCEPTION, *EXCEPTION),
    AuditAction.EXCEPTION_RESOLVED: _event(T.EXCEPTION, "kind", "mitigation", "reason"),
    # Reserved: reminders are sent as notifications and not recorded in the chain yet.
    AuditAction.EXCEPTION_REMINDED: _event(T.EXCEPTION),
    # The evidence itself
    AuditAction.AUDIT_VERIFIED: _event(
        T.AUDIT_CHAIN,
        "workspace",
        "ok",
        "entries_checked",
        "first_bad_seq",
        "problem",
        "detail",
        "seconds",
        "last_signed_seq",
        "checkpoints_checked",
        "quarantined",
    ),
    # A manual export (audit_record_export), a scheduled batch, or a failed delivery.
    AuditAction.AUDIT_EXPORTED: _event(
        (T.AUDIT_CHAIN, T.AUDIT_EXPORT_BATCH, T.EXCEPTION),
        "entries",
        "first_seq",
        "last_seq",
        "destination",
        "kind",
        "target",
        "sha256",
        *EXCEPTION,
    ),
    AuditAction.AUDIT_PRUNED: _event(
        T.AUDIT_CHAIN,
        "pruned_from_seq",
        "pruned_through_seq",
        "pruned_through_hash",
        "pruned_entries",
        "retention_days",
        "cutoff",
        "signature",
    ),
    # Plus one list of pruned ids per registered pruner ("action_requests",
    # "executions", ...), named at run time.
    AuditAction.PLAIN_COPIES_PRUNED: _event(
        T.WORKSPACE, "retention_days", "cutoff", "kept", open_fields=True
    ),
    AuditAction.ATTACHMENT_ADDED: _event(
        (T.APPROVAL_RECORD, T.EXCEPTION_RECORD, T.VERSION_LOG),
        "attachment",
        "url",
        "sha256",
        "title",
    ),
    AuditAction.PRIVACY_SUMMARY_DOWNLOADED: _event(
        T.PRIVACY_SUMMARY, "format", "generated_at", "chain_head_seq", "chain_head_hash"
    ),
    AuditAction.SECURITY_LOGIN_THROTTLED: _event(T.USER, "throttled", "failures", "window_seconds"),
    AuditAction.SECURITY_KEY_GUESSING_THROTTLED: _event(
        T.MACHINE_KEY, "throttled", "prefix", "failures", "window_seconds"
    ),
}


class UndeclaredEvent(ValueError):
    """An audit entry whose action, target or input fields are not in EVENTS: a
    programming error, refused before anything is written."""


def check_event(action: str, target_type: str, input: dict | None) -> None:
    event = EVENTS.get(action)
    if event is None:
        raise UndeclaredEvent(f"audit action {action!r} has no schema in audit/events.py")
    if target_type not in event.targets:
        raise UndeclaredEvent(f"audit action {action!r} does not name a {target_type!r}")
    if not event.open_fields:
        extra = set(input or ()) - event.fields
        if extra:
            raise UndeclaredEvent(f"audit action {action!r} has no fields {sorted(extra)}")
