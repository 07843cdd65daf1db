"""The sensitivity floor holds on /mcp too (DESIGN.md 10, 14): a connector tool the
floor covers is never run upstream on an agent's word, unattended keys included. Each
test fails when its rule is deleted from approvals/gate.py (docs/mutation.md)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import Tool
from tests.gateway.conftest import SYSTEM, seeded_tool_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def unattended(gw_workspace, make_key, key_client):
    _, plaintext = make_key(
        gw_workspace,
        scopes=["actions:read", "actions:write", "actions:external"],
        unattended_mode=True,
        expires_at=timezone.now() + timedelta(days=30),
    )
    return key_client(plaintext)


def call_lookup(client):
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "crm.lookup", "arguments": {"customer_id": 5}},
    }
    return client.post("/mcp", message, format="json").json()["result"]


def mark_lookup(**changes):
    tool = Tool.objects.get(name="crm.lookup")
    seeded_tool_update(reason="test set-up", tool=tool, actor=SYSTEM, changes=changes)


def test_the_unmarked_lookup_runs_upstream(synced, unattended, upstream):
    """The control: without a floor rule, the same call runs at once."""
    assert call_lookup(unattended)["isError"] is False
    assert upstream.tool_calls() == [("lookup", {"customer_id": 5})]


@pytest.mark.parametrize(
    "changes",
    [
        {"irreversible": True},
        {"data_classes": ["secrets"]},
        {"data_classes": ["regulated"]},
        {"level": "write", "data_classes": ["financial"]},
        {"level": "external", "data_classes": ["pii"]},
    ],
    ids=["irreversible", "reads-secrets", "reads-regulated", "write-financial", "external-pii"],
)
def test_a_floor_tool_waits_for_a_human_and_nothing_runs_upstream(
    synced, unattended, upstream, changes
):
    mark_lookup(**changes)
    result = call_lookup(unattended)
    assert result["isError"] is False
    assert result["content"][0]["text"].startswith("NOT EXECUTED")
    assert result["structuredContent"]["confirmation_token"].startswith("ct_")
    assert upstream.tool_calls() == []
