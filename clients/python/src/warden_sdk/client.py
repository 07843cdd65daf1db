"""The synchronous client and its guard."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import httpx

from warden_sdk import _base
from warden_sdk.errors import Denied, RateLimited, WardenError
from warden_sdk.models import (
    Action,
    Allowed,
    AskResult,
    Authorisation,
    Identity,
    Pending,
    Tool,
    ToolCall,
    ask_result,
)

log = logging.getLogger("warden_sdk")
P = ParamSpec("P")
R = TypeVar("R")


class Warden:
    """`Warden(url, key)`: ask before acting, wait for a human, report what happened.

    429 (rate_limited) and 503 (unavailable) answers are retried up to `max_retries`
    times after the server's Retry-After; then RateLimited / WardenError("unavailable").
    `transport`, `sleep` and `clock` are for tests."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        approval_timeout: float = _base.DEFAULT_APPROVAL_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = httpx.Client(
            base_url=_base.base_url(url),
            headers=_base.headers(key),
            timeout=timeout,
            transport=transport,
        )
        self._timeout = timeout
        self.max_retries = max_retries
        self.approval_timeout = approval_timeout
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Warden:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP ----------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            response = self._http.request(method, path, **kwargs)
            if response.status_code not in _base.RETRIED_STATUSES:
                return response
            wait = _base.retry_after(response)
            if attempt == self.max_retries:
                if response.status_code == 429:
                    raise RateLimited(wait)
                return response  # 503 unavailable: raised as WardenError by the caller
            self._sleep(wait)
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = self._send(method, path, **kwargs)
        _base.raise_for_error(response)
        return response.status_code, response.json()

    # --- the API -------------------------------------------------------------------

    def whoami(self) -> Identity:
        return Identity.from_json(self._json("GET", "whoami")[1])

    def tools(self) -> list[Tool]:
        return [Tool.from_json(t) for t in self._json("GET", "tools")[1]["results"]]

    def ask(
        self,
        tool: str,
        params: Mapping[str, Any] | None = None,
        *,
        reason: str = "",
        idempotency_key: str = "",
    ) -> AskResult:
        """Allowed, or Pending (a human must confirm). Refusals raise NotAllowed."""
        body = {
            "tool": tool,
            "params": dict(params or {}),
            "reason": reason,
            "idempotency_key": idempotency_key,
        }
        status, answer = self._json("POST", "actions", json=body)
        return ask_result(status, answer)

    def confirm(self, tool: str, params: Mapping[str, Any] | None, token: str) -> Allowed:
        """Re-call with the token once a human approved: allowed exactly once."""
        body = {
            "tool": tool,
            "params": dict(params or {}),
            "confirmed": True,
            "confirmation_token": token,
        }
        status, answer = self._json("POST", "actions", json=body)
        result = ask_result(status, answer)
        if not isinstance(result, Allowed):
            raise WardenError("conflict", "A confirmed re-call was not allowed.", answer)
        return result

    def action(self, action_id: str, *, wait: int = 0) -> Action:
        _, body = self._json(
            "GET",
            f"actions/{action_id}",
            params={"wait": wait} if wait else None,
            timeout=self._timeout + wait,
        )
        return Action.from_json(body)

    def wait(self, action_id: str, timeout: float | None = None) -> Action:
        """Long-poll until the action is no longer pending or `timeout` seconds passed
        (30 s per request, one rate-limit unit each)."""
        budget = self.approval_timeout if timeout is None else timeout
        deadline = self._clock() + max(budget, 0)
        while True:
            chunk = int(min(_base.MAX_WAIT_SECONDS, max(deadline - self._clock(), 0)))
            started = self._clock()
            action = self.action(action_id, wait=chunk)
            if not action.pending or chunk == 0 or self._clock() >= deadline:
                return action
            if self._clock() - started < chunk - 1:
                return action  # the server stopped early: past expiry, nothing will come

    def report(self, action_id: str, status: str, output: Any = None) -> Action:
        """Report the outcome (`succeeded` / `failed`) of an allowed action, once."""
        _, body = self._json(
            "POST", f"actions/{action_id}/result", json={"status": status, "output": output}
        )
        return Action.from_json(body)

    def call_tool(
        self,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        reason: str = "",
        timeout: float | None = None,
    ) -> ToolCall:
        """Have Warden call a connector-backed tool with the credentials it holds: asks,
        waits for a human when one must confirm, and returns the upstream's answer.
        Raises Denied, Expired, NotAllowed, ApprovalTimeout or RateLimited."""
        status, body = self._json(
            "POST", "actions", json=_base.tool_call_body(tool, arguments, reason)
        )
        if status == 202:
            pending = ask_result(status, body)
            _base.check_after_wait(self.wait(pending.id, timeout))
            try:
                _, body = self._json(
                    "POST",
                    "actions",
                    json=_base.tool_call_body(tool, arguments, reason, pending.token),
                )
            except WardenError as exc:
                _base.raise_timeout_if_pending(exc, pending.id)
                raise
        return ToolCall.from_json(body)

    # --- guard ---------------------------------------------------------------------

    def authorise(
        self,
        tool: str,
        params: Mapping[str, Any],
        *,
        reason: str = "",
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> Authorisation:
        """Ask; when a human must confirm, wait and re-call with the token once.
        Raises Denied, Expired, NotAllowed, ApprovalTimeout or RateLimited."""
        answer = self.ask(tool, params, reason=reason, idempotency_key=idempotency_key)
        if isinstance(answer, Allowed):
            return Authorisation(answer.id, answer.dry_run, [])
        return self._after_pending(tool, params, answer, timeout)

    def _after_pending(
        self, tool: str, params: Mapping[str, Any], pending: Pending, timeout: float | None
    ) -> Authorisation:
        action = self.wait(pending.id, timeout)
        _base.check_after_wait(action)
        try:
            allowed = self.confirm(tool, params, pending.token)
        except Denied:
            action = self.action(pending.id)
            raise Denied(
                action.denial_reason, decided_by=action.decided_by, action_id=pending.id
            ) from None
        except WardenError as exc:
            _base.raise_timeout_if_pending(exc, pending.id)
            raise
        approved_by = action.decided_by or self.action(pending.id).decided_by
        return Authorisation(allowed.id, allowed.dry_run, approved_by)

    def _report_quietly(self, action_id: str, status: str, output: Any) -> None:
        """The call already happened: a failed report is logged, never raised over it."""
        try:
            self.report(action_id, status, output)
        except (WardenError, httpx.HTTPError) as exc:
            log.warning("warden: could not report %s for action %s: %s", status, action_id, exc)

    def guard(
        self,
        tool: str,
        params: _base.Params = None,
        *,
        reason: str = "",
        timeout: float | None = None,
        simulate: Callable[..., Any] | None = None,
    ) -> Guard:
        """A decorator or a context manager that runs a call only once Warden allows it,
        and reports its result. See Guard."""
        return Guard(self, tool, params, reason=reason, timeout=timeout, simulate=simulate)


class Guard:
    """`@warden.guard("crm.update", params=...)` or `with warden.guard(...) as g:`.

    Decorator: params default to the call's arguments; in dry-run the function is not
    called (`simulate` is, when given). Context manager: the body runs only when
    allowed; check `g.dry_run`, set `g.result` to report it."""

    def __init__(
        self,
        client: Warden,
        tool: str,
        params: _base.Params,
        *,
        reason: str,
        timeout: float | None,
        simulate: Callable[..., Any] | None,
    ) -> None:
        self._client = client
        self.tool = tool
        self._params = params
        self._reason = reason
        self._timeout = timeout
        self._simulate = simulate
        self.authorisation: Authorisation | None = None
        self.result: Any = None

    @property
    def dry_run(self) -> bool:
        return bool(self.authorisation and self.authorisation.dry_run)

    def __enter__(self) -> Guard:
        if callable(self._params):
            raise TypeError("as a context manager, guard() takes params as a mapping")
        self.result = None
        self.authorisation = self._client.authorise(
            self.tool, dict(self._params or {}), reason=self._reason, timeout=self._timeout
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        auth = self.authorisation  # kept after the block: who approved, dry-run
        if auth is None:
            return
        if exc is None:
            self._client._report_quietly(
                auth.action_id, "succeeded", _base.success_output(self.result)
            )
        else:
            self._client._report_quietly(auth.action_id, "failed", _base.failure_output(exc))

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R | None]:
        if inspect.iscoroutinefunction(fn):
            raise TypeError("guard an async function with AsyncWarden.guard")
        client = self._client

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
            params = _base.call_params(self._params, fn, args, kwargs)
            auth = client.authorise(self.tool, params, reason=self._reason, timeout=self._timeout)
            run = self._simulate if auth.dry_run else fn
            try:
                result = run(*args, **kwargs) if run is not None else None
            except BaseException as exc:
                client._report_quietly(auth.action_id, "failed", _base.failure_output(exc))
                raise
            client._report_quietly(auth.action_id, "succeeded", _base.success_output(result))
            return result

        return guarded
