"""One exception per outcome an agent must handle differently."""

from __future__ import annotations

from typing import Any

from warden_sdk.codes import ERROR_CODES


class WardenError(Exception):
    """Base: a refusal or failure with Warden's stable `code` (see codes.py)."""

    def __init__(
        self,
        code: str,
        message: str = "",
        detail: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.detail = detail or {}
        self.status = status if status is not None else ERROR_CODES.get(code)


class NotAllowed(WardenError):
    """The gate refused (tool_not_allowed, forbidden_by_scope, writes_disabled, ...)."""


class Denied(WardenError):
    """A human denied the request; `reason` is the approver's reason when known."""

    def __init__(
        self,
        reason: str | None = None,
        *,
        decided_by: list[str] | None = None,
        action_id: str | None = None,
    ) -> None:
        super().__init__("confirmation_denied", reason or "A human denied this request.")
        self.reason = reason
        self.decided_by = decided_by or []
        self.action_id = action_id


class Expired(WardenError):
    """Nobody approved before the confirmation expired; ask again if still needed."""

    def __init__(self, message: str = "The confirmation expired.", action_id: str | None = None):
        super().__init__("confirmation_expired", message)
        self.action_id = action_id


class RateLimited(WardenError):
    """Still rate-limited after the client's retries; `retry_after` in seconds."""

    def __init__(self, retry_after: float, message: str = "Rate limit exceeded.") -> None:
        super().__init__("rate_limited", message, {"retry_after": retry_after})
        self.retry_after = retry_after


class ApprovalTimeout(WardenError):
    """The caller's overall timeout passed while a human had not decided yet."""

    def __init__(self, action_id: str) -> None:
        super().__init__(
            "confirmation_pending", "No human decision within the timeout.", {"id": action_id}
        )
        self.action_id = action_id


def error_from_response(status: int, body: Any, retry_after: float | None = None) -> WardenError:
    """The exception for an error answer `{"error": {"code", "message", "detail"}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return WardenError(
            "internal_error", f"HTTP {status} without a Warden error body", {}, status
        )
    code = str(error.get("code", "internal_error"))
    message = str(error.get("message", ""))
    detail = error.get("detail") if isinstance(error.get("detail"), dict) else {}
    if code == "rate_limited":
        return RateLimited(retry_after if retry_after is not None else 1.0, message)
    if code == "confirmation_denied":
        return Denied(None)
    if code == "confirmation_expired":
        return Expired(message)
    if status == 403:
        return NotAllowed(code, message, detail, status)
    return WardenError(code, message, detail, status)
