"""The asynchronous client and its guard: the same contract as warden_sdk.client."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
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


class AsyncWarden:
    """`AsyncWarden(url, key)`: the async twin of Warden (same methods, awaited)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        approval_timeout: float = _base.DEFAULT_APPROVAL_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = httpx.AsyncClient(
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

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncWarden:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            response = await self._http.request(method, path, **kwargs)
            if response.status_code not in _base.RETRIED_STATUSES:
                return response
            wait = _base.retry_after(response)
            if attempt == self.max_retries:
                if response.status_code == 429:
                    raise RateLimited(wait)
                return response  # 503 unavailable: raised as WardenError by the caller
            await self._sleep(wait)
        raise AssertionError("unreachable")

    async def _json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = await self._send(method, path, **kwargs)
        _base.raise_for_error(response)
        return response.status_code, response.json()

    async def whoami(self) -> Identity:
        return Identity.from_json((await self._json("GET", "whoami"))[1])

    async def tools(self) -> list[Tool]:
        _, body = await self._json("GET", "tools")
        return [Tool.from_json(t) for t in body["results"]]

    async def ask(
        self,
        tool: str,
        params: Mapping[str, Any] | None = None,
        *,
        reason: str = "",
        idempotency_key: str = "",
    ) -> AskResult:
        body = {
            "tool": tool,
            "params": dict(params or {}),
            "reason": reason,
            "idempotency_key": idempotency_key,
        }
        status, answer = await self._json("POST", "actions", json=body)
        return ask_result(status, answer)

    async def confirm(self, tool: str, params: Mapping[str, Any] | None, token: str) -> Allowed:
        body = {
            "tool": tool,
            "params": dict(params or {}),
            "confirmed": True,
            "confirmation_token": token,
        }
        status, answer = await self._json("POST", "actions", json=body)
        result = ask_result(status, answer)
        if not isinstance(result, Allowed):
            raise WardenError("conflict", "A confirmed re-call was not allowed.", answer)
        return result

    async def action(self, action_id: str, *, wait: int = 0) -> Action:
        _, body = await self._json(
            "GET",
            f"actions/{action_id}",
            params={"wait": wait} if wait else None,
            timeout=self._timeout + wait,
        )
        return Action.from_json(body)

    async def call_tool(
        self,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        reason: str = "",
        timeout: float | None = None,
    ) -> ToolCall:
        """As Warden.call_tool: Warden executes the connector-backed tool itself."""
        status, body = await self._json(
            "POST", "actions", json=_base.tool_call_body(tool, arguments, reason)
        )
        if status == 202:
            pending = ask_result(status, body)
            _base.check_after_wait(await self.wait(pending.id, timeout))
            try:
                _, body = await self._json(
                    "POST",
                    "actions",
                    json=_base.tool_call_body(tool, arguments, reason, pending.token),
                )
            except WardenError as exc:
                _base.raise_timeout_if_pending(exc, pending.id)
                raise
        return ToolCall.from_json(body)

    async def wait(self, action_id: str, timeout: float | None = None) -> Action:
        budget = self.approval_timeout if timeout is None else timeout
        deadline = self._clock() + max(budget, 0)
        while True:
            chunk = int(min(_base.MAX_WAIT_SECONDS, max(deadline - self._clock(), 0)))
            started = self._clock()
            action = await self.action(action_id, wait=chunk)
            if not action.pending or chunk == 0 or self._clock() >= deadline:
                return action
            if self._clock() - started < chunk - 1:
                return action

    async def report(self, action_id: str, status: str, output: Any = None) -> Action:
        _, body = await self._json(
            "POST", f"actions/{action_id}/result", json={"status": status, "output": output}
        )
        return Action.from_json(body)

    async def authorise(
        self,
        tool: str,
        params: Mapping[str, Any],
        *,
        reason: str = "",
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> Authorisation:
        answer = await self.ask(tool, params, reason=reason, idempotency_key=idempotency_key)
        if isinstance(answer, Allowed):
            return Authorisation(answer.id, answer.dry_run, [])
        return await self._after_pending(tool, params, answer, timeout)

    async def _after_pending(
        self, tool: str, params: Mapping[str, Any], pending: Pending, timeout: float | None
    ) -> Authorisation:
        action = await self.wait(pending.id, timeout)
        _base.check_after_wait(action)
        try:
            allowed = await self.confirm(tool, params, pending.token)
        except Denied:
            action = await self.action(pending.id)
            raise Denied(
                action.denial_reason, decided_by=action.decided_by, action_id=pending.id
            ) from None
        except WardenError as exc:
            _base.raise_timeout_if_pending(exc, pending.id)
            raise
        approved_by = action.decided_by or (await self.action(pending.id)).decided_by
        return Authorisation(allowed.id, allowed.dry_run, approved_by)

    async def _report_quietly(self, action_id: str, status: str, output: Any) -> None:
        try:
            await self.report(action_id, status, output)
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
    ) -> AsyncGuard:
        return AsyncGuard(self, tool, params, reason=reason, timeout=timeout, simulate=simulate)


class AsyncGuard:
    """`@warden.guard(...)` on an async function, or `async with warden.guard(...) as g:`."""

    def __init__(
        self,
        client: AsyncWarden,
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

    async def __aenter__(self) -> AsyncGuard:
        if callable(self._params):
            raise TypeError("as a context manager, guard() takes params as a mapping")
        self.result = None
        self.authorisation = await self._client.authorise(
            self.tool, dict(self._params or {}), reason=self._reason, timeout=self._timeout
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        auth = self.authorisation  # kept after the block: who approved, dry-run
        if auth is None:
            return
        if exc is None:
            output = _base.success_output(self.result)
            await self._client._report_quietly(auth.action_id, "succeeded", output)
        else:
            output = _base.failure_output(exc)
            await self._client._report_quietly(auth.action_id, "failed", output)

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | None]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("AsyncWarden.guard wraps async functions; use Warden.guard")
        client = self._client

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
            params = _base.call_params(self._params, fn, args, kwargs)
            auth = await client.authorise(
                self.tool, params, reason=self._reason, timeout=self._timeout
            )
            run = self._simulate if auth.dry_run else fn
            try:
                result = run(*args, **kwargs) if run is not None else None
                if inspect.isawaitable(result):
                    result = await result
            except BaseException as exc:
                await client._report_quietly(auth.action_id, "failed", _base.failure_output(exc))
                raise
            await client._report_quietly(auth.action_id, "succeeded", _base.success_output(result))
            return result

        return guarded
