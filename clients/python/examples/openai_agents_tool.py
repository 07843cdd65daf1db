"""An OpenAI Agents SDK agent whose email tool goes through Warden.

    pip install "warden-sdk[openai-agents]"
    WARDEN_URL=... WARDEN_KEY=wdn_... python openai_agents_tool.py

With OPENAI_API_KEY set the agent uses a real model; without it, the Agents SDK's
ScriptedModel plays the model, so the example runs anywhere."""

import asyncio
import os

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call
from warden_sdk import AsyncWarden
from warden_sdk.adapters.openai_agents import warden_tool


@function_tool
def send_email(to: str, subject: str) -> str:
    """Send an email on the company's behalf."""
    return f"email to {to} sent"


async def main() -> None:
    warden = AsyncWarden(
        os.environ.get("WARDEN_URL", "http://127.0.0.1:8000"), os.environ["WARDEN_KEY"]
    )
    model = None
    if not os.environ.get("OPENAI_API_KEY"):
        set_tracing_disabled(True)
        args = {"to": "ada@example.test", "subject": "Your refund"}
        model = ScriptedModel(
            [
                [function_call("send_email", args, call_id="call-1")],
                [assistant_message("Done: see the tool output.")],
            ]
        )
    # The model calls send_email; Warden knows it as email.send in its catalog.
    tool = warden_tool(warden, send_email, warden_name="email.send")
    agent = Agent(name="support", instructions="Email the customer.", tools=[tool], model=model)
    result = await Runner.run(agent, "Tell Ada her refund is on its way.")
    print(result.final_output)
    for item in result.new_items:
        if item.type == "tool_call_output_item":
            print("tool output:", item.output)  # names who approved it in Warden
    await warden.aclose()


asyncio.run(main())
