"""What asking for an action came to, in the gate's own terms: allowed, denied (with a
stable code, a message for people and its detail) or pending (with the confirmation a
human must decide). Nothing here knows HTTP: one presenter (approvals.api.presenter)
turns an outcome into status and body, for the first answer and for every idempotent
replay alike. The request row keeps the outcome (`ActionRequest.outcome`, `stored()`),
never a response body, so a replay is presented exactly like the first answer; the
confirmation token is never kept, only re-derived from the confirmation id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from approvals import tokens

if TYPE_CHECKING:
    from approvals.models import ActionRequest, ConfirmationRequest


class OutcomeKind(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    PENDING = "pending"


@dataclass(frozen=True)
class Outcome:
    """One decision on one action request. `action` is the request row, for callers
    that act on it (the gateway executes it, the door reads its result); it is neither
    stored nor compared."""

    kind: OutcomeKind
    action_id: str
    dry_run: bool = False  # allowed: the agent must not act for real
    code: str = ""  # denied: the stable error code
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    confirmation_id: str = ""  # pending: the confirmation a human decides
    summary: str = ""
    irreversible: bool = False
    expires_at: datetime | None = None
    # pending: this call joined a request the same call had already opened (nothing new
    # was filed or announced). Not stored: a replay answers as the first answer did.
    joined: bool = field(default=False, compare=False)
    action: ActionRequest | None = field(default=None, compare=False, repr=False)

    @classmethod
    def allow(cls, action: ActionRequest, *, dry_run: bool) -> Outcome:
        return cls(OutcomeKind.ALLOWED, str(action.pk), dry_run=bool(dry_run), action=action)

    @classmethod
    def deny(
        cls, action: ActionRequest, *, code: str, message: str, detail: dict | None = None
    ) -> Outcome:
        return cls(
            OutcomeKind.DENIED,
            str(action.pk),
            code=code,
            message=message,
            detail=dict(detail or {}),
            action=action,
        )

    @classmethod
    def ask_human(cls, action: ActionRequest, confirmation: ConfirmationRequest) -> Outcome:
        return cls(
            OutcomeKind.PENDING,
            str(action.pk),
            confirmation_id=str(confirmation.pk),
            summary=confirmation.summary,
            irreversible=bool(confirmation.irreversible),
            expires_at=confirmation.expires_at,
            action=action,
        )

    @property
    def allowed(self) -> bool:
        return self.kind == OutcomeKind.ALLOWED

    @property
    def denied(self) -> bool:
        return self.kind == OutcomeKind.DENIED

    @property
    def pending(self) -> bool:
        return self.kind == OutcomeKind.PENDING

    @property
    def confirmation_token(self) -> str:
        """The `ct_` token of a pending outcome, derived again on every call."""
        return tokens.confirmation_token(self.confirmation_id) if self.pending else ""

    def stored(self) -> dict[str, Any]:
        """The outcome as `ActionRequest.outcome` keeps it (JSON, no token)."""
        if self.kind == OutcomeKind.ALLOWED:
            return {"kind": str(self.kind), "dry_run": self.dry_run}
        if self.kind == OutcomeKind.DENIED:
            return {
                "kind": str(self.kind),
                "code": self.code,
                "message": self.message,
                "detail": self.detail,
            }
        # No summary: it is rendered from the params (personal data, sealed on the
        # confirmation); a replay reads it from there.
        return {
            "kind": str(self.kind),
            "confirmation_id": self.confirmation_id,
            "irreversible": self.irreversible,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_stored(cls, action: ActionRequest, data: dict[str, Any]) -> Outcome:
        """The outcome a request row recorded, for an idempotent replay."""
        kind = OutcomeKind(data["kind"])
        if kind == OutcomeKind.ALLOWED:
            return cls(kind, str(action.pk), dry_run=bool(data.get("dry_run")), action=action)
        if kind == OutcomeKind.DENIED:
            return cls(
                kind,
                str(action.pk),
                code=data["code"],
                message=data.get("message", ""),
                detail=dict(data.get("detail") or {}),
                action=action,
            )
        expires_at = data.get("expires_at")
        return cls(
            kind,
            str(action.pk),
            confirmation_id=data["confirmation_id"],
            summary=data["summary"] if "summary" in data else _summary_of(action),
            irreversible=bool(data.get("irreversible")),
            expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
            action=action,
        )


def _summary_of(action: ActionRequest) -> str:
    """The pending request's summary, from its confirmation (erased marker once erased)."""
    confirmation = getattr(action, "confirmation", None)  # reverse one-to-one
    return confirmation.summary if confirmation is not None else ""
