"""An execution Warden performed is announced to the agent's runner like a reported
result: one signed `action.executed` webhook, after the call committed."""

import json

import pytest

from approvals.guard import operator_seeding
from notifications.services import endpoint_create
from tests.gateway.conftest import SYSTEM
from tests.notifications.receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


def _lookup(client):
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "crm.lookup", "arguments": {"customer_id": 7}},
    }
    return client.post("/mcp", message, format="json", HTTP_ACCEPT="application/json")


def test_an_executed_call_is_announced_to_subscribers(
    synced, gw_agent, receiver, django_capture_on_commit_callbacks
):
    with operator_seeding():
        issued = endpoint_create(
            reason="test set-up",
            workspace=synced.workspace,
            name="runner",
            url=receiver.url,
            events=["action.executed"],
            actor=SYSTEM,
        )
    receiver.secret = issued.secret
    _, client, _ = gw_agent
    with django_capture_on_commit_callbacks(execute=True):
        result = _lookup(client).json()["result"]
    assert result["isError"] is False
    assert receiver.arrived.wait(timeout=10)
    [received] = receiver.received
    body = json.loads(received.body)
    assert received.valid and body["type"] == "action.executed"
    assert body["data"]["action_id"] == result["_meta"]["warden/action_id"]
    assert body["data"]["status"] == "executed"
