"""LangGraph: a guarded call that pauses the graph with `interrupt()` while Warden
waits for a human, and resumes on Warden's decision.

    from warden_sdk.adapters.langgraph import warden_call

    def send_node(state):
        result = warden_call(warden, "email.send", {"to": state["to"]}, lambda: send(...))
        return {"sent": result}

On a pending answer the node calls `interrupt({...warden action...})`; the graph's
checkpointer keeps the run. Resume it with `Command(resume=...)` once a human decided
(the webhook or a poll tells you): the node re-runs, Warden replays the same action
(idempotency key bound to the LangGraph task), and the call runs only if approved.
The resume value is not trusted: Warden's status is the decision."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from warden_sdk import _base
from warden_sdk.client import Warden
from warden_sdk.models import Allowed

R = TypeVar("R")


def _task_key(tool: str, params: Mapping[str, Any]) -> str:
    """Stable across the node's re-runs on resume, distinct for every new task."""
    from langgraph.config import get_config

    configurable = get_config().get("configurable", {})
    material = json.dumps(
        [
            str(configurable.get("thread_id", "")),
            str(configurable.get("checkpoint_ns", "")),
            tool,
            params,
        ],
        sort_keys=True,
        default=str,
    )
    return "langgraph:" + hashlib.sha256(material.encode()).hexdigest()


def warden_call(
    warden: Warden,
    tool: str,
    params: Mapping[str, Any],
    fn: Callable[[], R],
    *,
    reason: str = "",
    idempotency_key: str | None = None,
    resume_wait: float = 5.0,
) -> R | None:
    """Inside a LangGraph node: ask Warden, interrupt while a human must decide, run
    `fn` once when allowed (not in dry-run) and report its result. Raises Denied,
    Expired or NotAllowed like guard()."""
    from langgraph.types import interrupt

    params = dict(params)
    key = idempotency_key or _task_key(tool, params)
    answer = warden.ask(tool, params, reason=reason, idempotency_key=key)
    if isinstance(answer, Allowed):
        action_id, dry_run = answer.id, answer.dry_run
    else:
        action = warden.action(answer.id)
        while action.pending:
            interrupt(
                {
                    "warden_action": answer.id,
                    "tool": tool,
                    "summary": answer.summary,
                    "expires_at": answer.expires_at.isoformat() if answer.expires_at else None,
                }
            )
            action = warden.wait(answer.id, timeout=resume_wait)
        _base.check_after_wait(action)
        allowed = warden.confirm(tool, params, answer.token)
        action_id, dry_run = allowed.id, allowed.dry_run
    if dry_run:
        warden._report_quietly(action_id, "succeeded", None)
        return None
    try:
        result = fn()
    except BaseException as exc:
        warden._report_quietly(action_id, "failed", _base.failure_output(exc))
        raise
    warden._report_quietly(action_id, "succeeded", _base.success_output(result))
    return result
