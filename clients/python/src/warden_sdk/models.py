"""Typed answers. Each keeps the raw JSON in `raw` for fields added later."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class Identity:
    principal: str
    workspace: str
    mode: str
    dry_run: bool
    writes_enabled: bool
    scopes: list[str]
    key_id: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Identity:
        workspace = body.get("workspace") or {}
        return cls(
            principal=str(body.get("principal", "")),
            workspace=str(workspace.get("slug", "")),
            mode=str(body.get("mode", "")),
            dry_run=bool(body.get("dry_run")),
            writes_enabled=bool(body.get("writes_enabled")),
            scopes=list(body.get("scopes") or []),
            key_id=(body.get("key") or {}).get("id"),
            raw=body,
        )


@dataclass(frozen=True)
class Tool:
    id: str
    name: str
    description: str
    level: str
    confirmation: str
    irreversible: bool
    data_classes: list[str]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Tool:
        return cls(
            id=str(body.get("id", "")),
            name=str(body.get("name", "")),
            description=str(body.get("description", "")),
            level=str(body.get("level", "")),
            confirmation=str(body.get("confirmation", "")),
            irreversible=bool(body.get("irreversible")),
            data_classes=list(body.get("data_classes") or []),
            raw=body,
        )


@dataclass(frozen=True)
class Allowed:
    """Go ahead. In dry-run (`dry_run` true) the agent must not perform it for real."""

    id: str
    dry_run: bool

    allowed = True


@dataclass(frozen=True)
class Pending:
    """A human must confirm: wait, then re-call with `token` (shown once)."""

    id: str
    token: str = field(repr=False)
    summary: str
    expires_at: datetime | None
    irreversible: bool

    allowed = False


AskResult = Allowed | Pending


@dataclass(frozen=True)
class Action:
    id: str
    tool: str
    status: str  # allowed, pending, approved, denied, expired, executed, simulated, failed
    decision: str
    denial_code: str
    dry_run: bool
    denial_reason: str | None
    decided_by: list[str]
    expires_at: datetime | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Action:
        confirmation = body.get("confirmation") or {}
        return cls(
            id=str(body.get("id", "")),
            tool=str(body.get("tool", "")),
            status=str(body.get("status", "")),
            decision=str(body.get("decision", "")),
            denial_code=str(body.get("denial_code") or ""),
            dry_run=bool(body.get("dry_run")),
            denial_reason=body.get("denial_reason"),
            decided_by=list(body.get("decided_by") or []),
            expires_at=_when(confirmation.get("expires_at")),
            raw=body,
        )

    @property
    def pending(self) -> bool:
        return self.status == "pending"


@dataclass(frozen=True)
class Authorisation:
    """What guard() established before running the wrapped call."""

    action_id: str
    dry_run: bool
    approved_by: list[str]


def ask_result(status: int, body: dict[str, Any]) -> AskResult:
    if status == 202:
        return Pending(
            id=str(body["id"]),
            token=str(body["confirmation_token"]),
            summary=str(body.get("summary", "")),
            expires_at=_when(body.get("expires_at")),
            irreversible=bool(body.get("irreversible")),
        )
    return Allowed(id=str(body["id"]), dry_run=bool(body.get("dry_run")))


@dataclass(frozen=True)
class ToolCall:
    """A tool call Warden executed itself (a connector-backed tool, `execute: true`):
    the upstream's answer, and Warden's record of the execution. In dry-run nothing
    was called and `result` is None."""

    id: str
    dry_run: bool
    result: Any
    execution: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ToolCall:
        return cls(
            id=str(body.get("id", "")),
            dry_run=bool(body.get("dry_run")),
            result=body.get("result"),
            execution=body.get("execution"),
            raw=body,
        )
