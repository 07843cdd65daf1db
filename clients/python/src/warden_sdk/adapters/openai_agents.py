"""OpenAI Agents SDK: route every call of a function tool through Warden.

    from agents import Agent, function_tool
    from warden_sdk import AsyncWarden
    from warden_sdk.adapters.openai_agents import warden_tool

    agent = Agent(name="ops", tools=[warden_tool(warden, send_email)])

The wrapped tool asks Warden with the model's arguments as params, waits for a human
when the tool needs confirmation (long-poll), runs the original tool only when
allowed, and reports its result. Refusals come back to the model as text (the run
goes on); an approved call's output names who approved it."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from warden_sdk import _base
from warden_sdk.aio import AsyncWarden
from warden_sdk.errors import ApprovalTimeout, Denied, Expired, NotAllowed

if TYPE_CHECKING:
    from agents import FunctionTool
    from agents.tool_context import ToolContext


def _refusal(exc: Exception) -> str:
    if isinstance(exc, Denied):
        who = ", ".join(exc.decided_by) or "an approver"
        return f"Warden: denied by {who}. Reason: {exc.reason or 'none given'}"
    if isinstance(exc, Expired):
        return "Warden: nobody approved this call before it expired. Ask again if needed."
    if isinstance(exc, ApprovalTimeout):
        return "Warden: still waiting for a human; the call was not made."
    code = getattr(exc, "code", "refused")
    return f"Warden refused this call ({code})."


DRY_RUN_OUTPUT = "Warden dry-run: allowed, but not performed for real."


def _with_approvers(output: Any, approved_by: list[str]) -> Any:
    """The tool's output, naming who approved it when a human did."""
    if not approved_by:
        return output
    shown = output if _base.success_output(output) is not None else str(output)
    return json.dumps({"output": shown, "approved_by": approved_by})


def warden_tool(
    warden: AsyncWarden,
    tool: FunctionTool,
    *,
    warden_name: str | None = None,
    reason: str = "",
    timeout: float | None = None,
) -> FunctionTool:
    """A copy of `tool` whose every invocation goes through Warden under `warden_name`
    (default: the tool's own name)."""
    import agents  # noqa: F401  (the extra must be installed; fail here, not mid-run)

    name = warden_name or tool.name
    original = tool.on_invoke_tool

    async def invoke(ctx: ToolContext[Any], input_json: str) -> Any:
        params = json.loads(input_json or "{}")
        try:
            auth = await warden.authorise(name, params, reason=reason, timeout=timeout)
        except (Denied, Expired, ApprovalTimeout, NotAllowed) as exc:
            return _refusal(exc)
        if auth.dry_run:
            await warden._report_quietly(auth.action_id, "succeeded", None)
            return _with_approvers(DRY_RUN_OUTPUT, auth.approved_by)
        try:
            output = await original(ctx, input_json)
        except BaseException as exc:
            await warden._report_quietly(auth.action_id, "failed", _base.failure_output(exc))
            raise
        await warden._report_quietly(auth.action_id, "succeeded", _base.success_output(output))
        return _with_approvers(output, auth.approved_by)

    return dataclasses.replace(tool, on_invoke_tool=invoke)
