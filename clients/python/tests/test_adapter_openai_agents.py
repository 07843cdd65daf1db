"""The OpenAI Agents adapter, driven by the Agents SDK's own ScriptedModel (no provider)."""

import asyncio
import json

import pytest

agents = pytest.importorskip("agents")
agents_testing = pytest.importorskip("agents.testing")

from warden_sdk.adapters.openai_agents import warden_tool  # noqa: E402

agents.set_tracing_disabled(True)


def make_tool(calls):
    @agents.function_tool
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        calls.append(to)
        return f"sent to {to}"

    return send_email


def run_agent(warden, tool, arguments):
    model = agents_testing.ScriptedModel(
        [
            [agents_testing.function_call("send_email", arguments, call_id="call-1")],
            [agents_testing.assistant_message("done")],
        ]
    )
    agent = agents.Agent(name="mailer", model=model, tools=[warden_tool(warden, tool)])
    result = asyncio.run(agents.Runner.run(agent, "email Ada"))
    outputs = [
        item["output"]
        for item in model.last_call.input
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    return result, outputs


def test_approved_call_runs_once_and_names_the_approver(make_async, fake):
    fake.tools = {"send_email": "confirm"}
    fake.scripted = ("approve", "fine", 1)
    calls = []
    result, outputs = run_agent(make_async(), make_tool(calls), {"to": "ada", "body": "hi"})
    assert result.final_output == "done"
    assert calls == ["ada"]
    assert json.loads(outputs[0]) == {
        "output": "sent to ada",
        "approved_by": ["user:approver@example.test"],
    }
    (action,) = fake.actions.values()
    assert action["params"] == {"to": "ada", "body": "hi"}
    assert action["result"] == {"status": "succeeded", "output": "sent to ada"}


def test_denied_call_never_runs_and_the_model_reads_the_reason(make_async, fake):
    fake.tools = {"send_email": "confirm"}
    fake.scripted = ("deny", "not to customers", 1)
    calls = []
    result, outputs = run_agent(make_async(), make_tool(calls), {"to": "ada", "body": "hi"})
    assert calls == []
    assert outputs == ["Warden: denied by user:approver@example.test. Reason: not to customers"]
    assert result.final_output == "done"


def test_refused_tool_never_runs(make_async, fake):
    calls = []
    _, outputs = run_agent(make_async(), make_tool(calls), {"to": "ada", "body": "hi"})
    assert calls == []
    assert outputs == ["Warden refused this call (tool_not_allowed)."]


def test_dry_run_does_not_run_the_tool_and_says_so(make_async, fake):
    fake.tools = {"send_email": "allow"}
    fake.dry_run = True
    calls = []
    _, outputs = run_agent(make_async(), make_tool(calls), {"to": "ada", "body": "hi"})
    assert calls == []
    assert outputs == ["Warden dry-run: allowed, but not performed for real."]
    (action,) = fake.actions.values()
    assert action["status"] == "simulated"
