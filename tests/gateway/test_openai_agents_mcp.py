"""The OpenAI Agents SDK's own MCP integration (`MCPServerStreamableHttp`) against
Warden's /mcp (issue 22): it lists Warden's tools under names OpenAI's and Anthropic's
function-name rule accepts, and a scripted model's call runs through Warden to the
upstream, once, with the credential only Warden holds."""

from __future__ import annotations

import asyncio
import re

import pytest

agents = pytest.importorskip("agents")

from agents import Agent, RunConfig, Runner  # noqa: E402
from agents.items import ModelResponse  # noqa: E402
from agents.mcp import MCPServerStreamableHttp  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.usage import Usage  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from tests.gateway.conftest import SECRET  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # OpenAI's and Anthropic's rule


class ScriptedModel(Model):
    """First turn: call the first tool whose name ends in `lookup`; then answer with
    what the tool returned. No network, no OpenAI key."""

    def __init__(self) -> None:
        self.seen_tool_names: list[str] = []

    async def get_response(self, system_instructions, input, model_settings, tools, *a, **k):
        self.seen_tool_names = [tool.name for tool in tools]
        outputs = [
            i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]
        if not outputs:
            name = next(n for n in self.seen_tool_names if n.endswith("lookup"))
            call = ResponseFunctionToolCall(
                type="function_call",
                call_id="call_1",
                name=name,
                arguments='{"customer_id": 42}',
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = ResponseOutputText(
            type="output_text", text=str(outputs[-1]["output"]), annotations=[]
        )
        message = ResponseOutputMessage(
            id="msg_1", type="message", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    async def stream_response(self, *args, **kwargs):  # not used by Runner.run
        raise NotImplementedError
        yield  # pragma: no cover


def test_the_agents_sdk_lists_portable_names_and_calls_through_warden(
    live_server, synced, gw_agent, upstream
):
    _, _, plaintext = gw_agent
    model = ScriptedModel()

    async def run():
        params = {
            "url": live_server.url + "/mcp",
            "headers": {"Authorization": f"Bearer {plaintext}"},
            "timeout": 30,
        }
        async with MCPServerStreamableHttp(params=params, name="warden") as server:
            listed = await server.list_tools()
            agent = Agent(name="support", instructions="Help.", mcp_servers=[server], model=model)
            result = await Runner.run(
                agent, "Who is customer 42?", run_config=RunConfig(tracing_disabled=True)
            )
            return listed, result

    listed, result = asyncio.run(run())
    names = [tool.name for tool in listed]
    assert names and all(FUNCTION_NAME.match(name) for name in names), names
    assert "crm-lookup" in names
    assert set(model.seen_tool_names) == set(names)  # what the model was offered
    assert upstream.calls == [("lookup", {"customer_id": 42})]
    # The upstream saw Warden's credential on the call; the agent only ever held its key.
    assert all(h.get("Authorization") == SECRET for h in upstream.headers_seen)
    assert plaintext not in str(upstream.headers_seen)
    assert "done: lookup" in str(result.final_output)  # the upstream's answer, via Warden
