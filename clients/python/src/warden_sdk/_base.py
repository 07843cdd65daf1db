"""What the sync and async clients share: no I/O here."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from warden_sdk.errors import (
    ApprovalTimeout,
    Denied,
    Expired,
    WardenError,
    error_from_response,
)
from warden_sdk.models import Action

__version__ = "0.1.0"
MAX_WAIT_SECONDS = 30  # the server's long-poll ceiling per request
DEFAULT_APPROVAL_TIMEOUT = 300.0
MAX_FAILURE_TEXT = 2000
# Answers that wrote nothing and carry Retry-After: rate_limited (429) and
# unavailable (503: a lock wait ran out or the database blinked).
RETRIED_STATUSES = (429, 503)

Params = Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None


def base_url(url: str) -> str:
    return url.rstrip("/") + "/api/v1/"


def headers(key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json",
        "User-Agent": f"warden-sdk/{__version__}",
    }


def retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", "1")), 0.0)
    except ValueError:
        return 1.0


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    raise error_from_response(response.status_code, body, retry_after(response))


def check_after_wait(action: Action) -> None:
    """Raise for a terminal human outcome; return when a confirmed re-call is due
    (approved, or still pending: the server then says pending or expired)."""
    if action.status == "denied":
        raise Denied(action.denial_reason, decided_by=action.decided_by, action_id=action.id)
    if action.status == "expired":
        raise Expired(action_id=action.id)
    if action.status not in ("approved", "pending"):
        raise WardenError("conflict", f"This action is {action.status}.", {"status": action.status})


def call_params(params: Params, fn: Callable[..., Any], args: tuple, kwargs: dict) -> dict:
    """The params sent to Warden for one call of a guarded function: given, computed
    from the call, or (by default) the call's bound arguments."""
    if callable(params):
        return dict(params(*args, **kwargs))
    if params is not None:
        return dict(params)
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def success_output(value: Any) -> Any:
    """The return value when it is JSON, else nothing (never a repr that may leak)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def failure_output(exc: BaseException) -> dict[str, str]:
    return {"error": str(exc)[:MAX_FAILURE_TEXT], "type": type(exc).__name__}


def raise_timeout_if_pending(exc: WardenError, action_id: str) -> None:
    """A confirmed re-call answering confirmation_pending means nobody decided in time."""
    from_pending = exc.code == "confirmation_pending"
    if from_pending:
        raise ApprovalTimeout(action_id) from exc


def tool_call_body(tool: str, arguments, reason: str, token: str = "") -> dict:
    """POST /actions for a call Warden executes through its gateway."""
    body = {"tool": tool, "params": dict(arguments or {}), "reason": reason, "execute": True}
    if token:
        body.update(confirmed=True, confirmation_token=token)
    return body
