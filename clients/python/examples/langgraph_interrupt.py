"""A LangGraph graph that pauses (interrupt) while Warden waits for a human.

    pip install "warden-sdk[langgraph]"
    WARDEN_URL=... WARDEN_KEY=wdn_... python langgraph_interrupt.py

The run stops with an interrupt naming the Warden action; here we long-poll Warden for
the decision (a webhook receiver would do the same), then resume the thread."""

import os
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from warden_sdk import Warden
from warden_sdk.adapters.langgraph import warden_call

warden = Warden(os.environ.get("WARDEN_URL", "http://127.0.0.1:8000"), os.environ["WARDEN_KEY"])


class State(TypedDict, total=False):
    to: str
    sent: str


def send_node(state: State) -> State:
    params = {"to": state["to"], "subject": "Your refund"}
    return {"sent": warden_call(warden, "email.send", params, lambda: f"sent to {state['to']}")}


graph = StateGraph(State)
graph.add_node("send", send_node)
graph.add_edge(START, "send")
graph.add_edge("send", END)
app = graph.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": "refund-ada"}}
state = app.invoke({"to": "ada@example.test"}, config)
while "__interrupt__" in state:
    paused = state["__interrupt__"][0].value
    print("waiting for a human:", paused["summary"], "(expires", paused["expires_at"], ")")
    decision = warden.wait(paused["warden_action"], timeout=300)
    print("Warden says:", decision.status)
    state = app.invoke(Command(resume=decision.status), config)
print(state)
