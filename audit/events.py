"""Typed audit events: one definition per audit action (which targets it names, which
fields its `input` may carry), and the event object made from it. An event is checked
against its definition when it is made, so an entry whose shape nobody declared never
reaches the chain (and a reader of the evidence knows what each action's input holds):

    audit_record(
        EVENTS[AuditAction.ATTACHMENT_ADDED].event(target_type=..., target_id=..., input=...),
        workspace=workspace,
        actor=actor,
    )
    audit_record_change(
        EVENTS[AuditAction.KEY_REVOKED].change(target_id=key.pk, before=..., after=...),
        workspace=workspace,
        actor=actor,
    )
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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


class UndeclaredEvent(ValueError):
    """An audit event whose action, target or input fields are not declared below: a
    programming error, refused where the event is made, before anything is written."""


def check_event(action: str, target_type: str, input: dict | None) -> None:
    definition = EVENTS[action]
    if target_type not in definition.targets:
        raise UndeclaredEvent(f"audit action {action!r} does not name a {target_type!r}")
    if not definition.open_fields:
        extra = set(input or ()) - definition.fields
        if extra:
            raise UndeclaredEvent(f"audit action {action!r} has no fields {sorted(extra)}")


@dataclass(frozen=True)
class AuditEvent:
    """What one audit entry says, apart from who (the actor) and where (the workspace).
    Made by its action's definition (`EVENTS[action].event(...)` / `.change(...)`) and
    checked against it when made: a wrong action, target or field fails at the call
    site, before any write. `audit_record(event, workspace=..., actor=...)` appends it."""

    action: str
    target_type: str
    target_id: Any = ""
    input: dict = field(default_factory=dict, repr=False)  # agent data: kept out of reprs
    tool: str = ""
    decision: str = ""
    rationale: str = ""
    policy_version: int | None = None
    outcome: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", dict(self.input or {}))  # checked = recorded
        check_event(self.action, self.target_type, self.input)

    @property
    def is_change(self) -> bool:
        """A config change: recorded with its version log (audit_record_change)."""
        return EVENTS[self.action].config_change


@dataclass(frozen=True)
class EventType:
    """One audit action's definition: the targets it may name, the fields its input
    may carry, and the constructor of its events."""

    action: str
    targets: frozenset[TargetType]
    fields: frozenset[str]
    open_fields: bool = False  # True: further keys are named at run time (see below)
    config_change: bool = False  # input is before/after/reason, with a VersionLog

    def _target(self, target_type: TargetType | None) -> TargetType:
        if target_type is not None:
            return target_type
        if len(self.targets) != 1:
            raise UndeclaredEvent(
                f"audit action {self.action!r} names one of {sorted(self.targets)}: say which"
            )
        return next(iter(self.targets))

    def event(
        self,
        *,
        target_id: Any = "",
        target_type: TargetType | None = None,
        input: dict | None = None,
        tool: str = "",
        decision: str = "",
        rationale: str = "",
        policy_version: int | None = None,
        outcome: str = "",
    ) -> AuditEvent:
        """An event of this action. `target_type` may be left out when the action
        names only one."""
        if self.config_change:
            raise UndeclaredEvent(f"audit action {self.action!r} is a config change: use .change()")
        return AuditEvent(
            action=self.action,
            target_type=self._target(target_type),
            target_id=target_id,
            input=input,
            tool=tool,
            decision=decision,
            rationale=rationale,
            policy_version=policy_version,
            outcome=outcome,
        )

    def change(
        self,
        *,
        target_id: Any,
        before: dict | None,
        after: dict | None,
        reason: str = "",
        target_type: TargetType | None = None,
        policy_version: int | None = None,
        tool: str = "",
    ) -> AuditEvent:
        """A config change of this action (None before: created; None after: removed),
        for audit_record_change, which also writes its version log."""
        if not self.config_change:
            raise UndeclaredEvent(f"audit action {self.action!r} is not a config change")
        return AuditEvent(
            action=self.action,
            target_type=self._target(target_type),
            target_id=target_id,
            input={"before": before, "after": after, "reason": reason},
            tool=tool,
            rationale=reason,
            policy_version=policy_version,
            outcome="applied",
        )


def _targets(targets: TargetType | tuple[TargetType, ...]) -> frozenset[TargetType]:
    return frozenset((targets,) if isinstance(targets, TargetType) else targets)


def _event(action, targets, *fields: str, open_fields: bool = False) -> EventType:
    return EventType(action, _targets(targets), frozenset(fields), open_fields)


def _change(action, targets) -> EventType:
    """A config change: its before/after snapshots and the reason (plus a VersionLog)."""
    return EventType(action, _targets(targets), frozenset(CHANGE), config_change=True)


def _exception(action) -> EventType:
    """An exception record's entry (exception_record)."""
    return _event(action, T.EXCEPTION, *EXCEPTION)


class _Events(dict):
    def __missing__(self, action):
        raise UndeclaredEvent(f"audit action {action!r} has no schema in audit/events.py")


def _declare(*definitions: EventType) -> dict[str, EventType]:
    events = _Events()
    for definition in definitions:
        if definition.action in events:
            raise ValueError(f"audit action {definition.action!r} is declared twice")
        events[definition.action] = definition
    return events


A = AuditAction
T = TargetType
CHANGE = ("before", "after", "reason")
EXCEPTION = ("kind", "severity", "what", "evidence")
# Agent requests' entries hold digests of personal data, never the values
# (approvals.personal_data): params_sha256, summary_sha256; "params" and "summary" remain
# for platform requests (configuration changes) and for entries written before.
DECIDED = ("action_request", "summary", "summary_sha256", "params_digest")

# One definition per action. To declare a new one: add it to AuditAction, then one line
# here (a config change: _change; an exception record: _exception; else _event with its
# target types and input fields). tests/audit/test_events.py holds every action to one.
EVENTS: dict[str, EventType] = _declare(
    _change(A.WORKSPACE_CREATED, T.WORKSPACE),
    _change(
        A.WORKSPACE_SETTINGS_CHANGED,
        (T.WORKSPACE, T.AUTOMATION_SETTINGS, T.AUDIT_EXPORT_DESTINATION),
    ),
    _change(A.WORKSPACE_DELETED, T.WORKSPACE),
    _change(A.MEMBER_ADDED, T.MEMBERSHIP),
    _change(A.MEMBER_ROLE_CHANGED, T.MEMBERSHIP),
    _change(A.MEMBER_REMOVED, T.MEMBERSHIP),
    _change(A.MEMBER_INVITED, T.INVITATION),
    _change(A.MEMBER_INVITATION_DECLINED, T.INVITATION),
    _change(A.KEY_CREATED, T.MACHINE_KEY),
    _change(A.KEY_UPDATED, T.MACHINE_KEY),
    _change(A.KEY_ROTATED, T.MACHINE_KEY),
    _change(A.KEY_REVOKED, T.MACHINE_KEY),
    _change(A.KEY_SUSPENDED, T.MACHINE_KEY),
    _change(A.KEY_UNSUSPENDED, T.MACHINE_KEY),
    _change(A.TOOL_CREATED, T.TOOL),
    _change(A.TOOL_UPDATED, T.TOOL),
    _change(A.TOOL_DELETED, T.TOOL),
    _change(A.WEBHOOK_CHANGED, T.WEBHOOK_ENDPOINT),
    _change(A.CONNECTOR_CREATED, T.CONNECTOR),
    _change(A.CONNECTOR_UPDATED, T.CONNECTOR),
    _change(A.CONNECTOR_DELETED, T.CONNECTOR),
    # The gate
    _event(
        A.ACTION_DECIDED,
        T.ACTION_REQUEST,
        "params",
        "params_sha256",
        "reason",
        "dry_run",
        "shadow",
    ),
    _event(A.ACTION_RESULT_REPORTED, T.ACTION_REQUEST, "status", "output_bytes", "output_sha256"),
    # What was approved, readable on its own: the summary the approver read and the digest
    # of the exact parameters (entries written before these fields lack them).
    _event(
        A.CONFIRMATION_APPROVED, T.CONFIRMATION, *DECIDED, "approvals", "approvals_required", "via"
    ),
    _event(
        A.CONFIRMATION_DENIED, T.CONFIRMATION, *DECIDED, "approvals", "approvals_required", "via"
    ),
    _event(A.CONFIRMATION_EXPIRED, T.CONFIRMATION, *DECIDED, "expires_at"),
    _event(A.CONFIRMATION_USED, T.CONFIRMATION, "action_request", "dry_run"),
    _event(A.CONFIRMATION_REMINDED, T.CONFIRMATION, "action_request", "waited_minutes", "notified"),
    _event(
        A.CONFIRMATION_ESCALATED, T.CONFIRMATION, "action_request", "waited_minutes", "notified"
    ),
    _event(A.CONFIRMATION_DIGEST_SENT, T.USER, "confirmations", "recipient", "every_minutes"),
    _event(A.CONNECTOR_SYNCED, T.CONNECTOR, "created", "changed", "removed", "skipped"),
    _event(
        A.EXECUTION_RECORDED,
        T.EXECUTION,
        "action_request",
        "params",
        "params_sha256",
        "connector",
        "upstream_tool",
        "output_bytes",
        "output_sha256",
        "latency_ms",
        "error",
        "withheld",
    ),
    # Exception records
    _exception(A.ANOMALY_DETECTED),
    _exception(A.POLICY_ERROR),
    _exception(A.DENIAL_RECORDED),
    _exception(A.GOVERNANCE_BREAK_GLASS),
    _exception(A.GOVERNANCE_OVERRIDE),
    _exception(A.WEBHOOK_DISABLED),
    _exception(A.CREDENTIAL_IN_PARAMS),
    _exception(A.ACTION_RESULT_MISSING),
    _event(A.EXCEPTION_RESOLVED, T.EXCEPTION, "kind", "mitigation", "reason"),
    # Open exceptions brought to the workspace's admins (notifications, once a period).
    _event(A.EXCEPTION_REMINDED, T.WORKSPACE, "open", "older_than_days", "exception_ids"),
    # The evidence itself
    _event(
        A.AUDIT_VERIFIED,
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
        "pending",
        "pending_age_seconds",
    ),
    # A manual export (audit_record_export), a scheduled batch, or a failed delivery.
    _event(
        A.AUDIT_EXPORTED,
        (T.AUDIT_CHAIN, T.AUDIT_EXPORT_BATCH, T.EXCEPTION),
        "entries",
        "first_seq",
        "last_seq",
        "destination",
        "kind",
        "format",
        "target",
        "sha256",
        *EXCEPTION,
    ),
    _event(
        A.AUDIT_PRUNED,
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
    _event(
        A.PLAIN_COPIES_PRUNED, T.WORKSPACE, "retention_days", "cutoff", "kept", open_fields=True
    ),
    # Crypto-shredding (approvals.erasure): the requests whose data keys were destroyed,
    # how they were found and why; never the erased value (a subject by keyed digest).
    _event(
        A.PERSONAL_DATA_ERASED,
        T.WORKSPACE,
        "by",
        "subject_digest",
        "action_requests",
        "reason",
        "copies",
    ),
    # Rows from before sealing moved into the sealed store (approvals.erasure), with the
    # chain head they were sealed under.
    _event(
        A.PERSONAL_DATA_SEALED,
        T.WORKSPACE,
        "action_requests",
        "chain_head_seq",
        "chain_head_hash",
        "entries_with_plain_values",
    ),
    _event(
        A.ATTACHMENT_ADDED,
        (T.APPROVAL_RECORD, T.EXCEPTION_RECORD, T.VERSION_LOG),
        "attachment",
        "url",
        "sha256",
        "title",
    ),
    _event(
        A.PRIVACY_SUMMARY_DOWNLOADED,
        T.PRIVACY_SUMMARY,
        "format",
        "generated_at",
        "chain_head_seq",
        "chain_head_hash",
    ),
    _event(A.SECURITY_LOGIN_THROTTLED, T.USER, "throttled", "failures", "window_seconds"),
    _event(
        A.SECURITY_KEY_GUESSING_THROTTLED,
        T.MACHINE_KEY,
        "throttled",
        "prefix",
        "failures",
        "window_seconds",
    ),
)
