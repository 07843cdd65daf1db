"""The LangGraph adapter: interrupt() while pending, resume on Warden's decision."""

from typing import TypedDict

import pytest

pytest.importorskip("langgraph")

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from warden_sdk import Denied
from warden_sdk.adapters.langgraph import warden_call


class State(TypedDict, total=False):
    to: str
    sent: str


def build(warden, calls):
    def send_node(state: State) -> State:
        def send():
            calls.append(state["to"])
            return f"sent to {state['to']}"

        return {"sent": warden_call(warden, "email.send", {"to": state["to"]}, send)}

    graph = StateGraph(State)
    graph.add_node("send", send_node)
    graph.add_edge(START, "send")
    graph.add_edge("send", END)
    return graph.compile(checkpointer=InMemorySaver())


CONFIG = {"configurable": {"thread_id": "thread-1"}}


def test_pending_interrupts_then_resumes_and_runs_once_after_approval(warden, fake):
    fake.tools = {"email.send": "confirm"}
    calls = []
    app = build(warden, calls)
    first = app.invoke({"to": "ada"}, CONFIG)
    (paused,) = first["__interrupt__"]
    action_id = paused.value["warden_action"]
    assert paused.value["summary"] == "Run email.send"
    assert calls == []

    fake.decide(action_id, "approve")
    done = app.invoke(Command(resume="decided"), CONFIG)
    assert done["sent"] == "sent to ada"
    assert calls == ["ada"]
    assert len(fake.actions) == 1  # the re-run replayed the same Warden action
    assert fake.actions[action_id]["status"] == "executed"


def test_resume_while_still_pending_interrupts_again(warden, fake):
    fake.tools = {"email.send": "confirm"}
    calls = []
    app = build(warden, calls)
    app.invoke({"to": "ada"}, CONFIG)
    again = app.invoke(Command(resume="check"), CONFIG)
    assert "__interrupt__" in again and calls == []


def test_denied_raises_with_the_reason(warden, fake):
    fake.tools = {"email.send": "confirm"}
    calls = []
    app = build(warden, calls)
    first = app.invoke({"to": "ada"}, CONFIG)
    fake.decide(first["__interrupt__"][0].value["warden_action"], "deny", "not today")
    with pytest.raises(Denied, match="not today"):
        app.invoke(Command(resume="decided"), CONFIG)
    assert calls == []


def test_allowed_runs_without_interrupting(warden, fake):
    fake.tools = {"email.send": "allow"}
    calls = []
    assert build(warden, calls).invoke({"to": "bob"}, CONFIG)["sent"] == "sent to bob"
    assert calls == ["bob"]
