"""What an executed call costs in statements. The decision and the execution's first
write commit together; the outcome, the action's result and the one audit entry for
both commit together after the upstream call. The budget is what that takes: a new
statement on the call path is a choice, not an accident."""

import threading
import time

import pytest
from django.db import connection

from approvals import personal_data
from approvals.models import ActionRequest
from audit.models import AuditEntry, AuditPending
from audit.services import seal_wait_idle
from audit.verify import verify_chain
from gateway.models import Execution
from tests.audit.helpers import hold_chain_head

pytestmark = pytest.mark.django_db

# Key lookup 1; decision (row + chain head, chain append; no savepoint of its own inside
# the call's transaction) 2; connector with the outbound allowlist 1; execution row 1;
# the transaction's savepoint in tests 2 (in production: BEGIN/COMMIT, uncounted);
# after the call: execution and action (one statement), chain head, chain append 3, and
# its savepoint in tests 2. SQLite updates the two rows apart, writes the request row
# apart from its entry and moves the chain head in a statement of its own: 4 more.
BUDGET = {"postgresql": 12, "sqlite": 16}


def _call(client, n):
    message = {
        "jsonrpc": "2.0",
        "id": n,
        "method": "tools/call",
        "params": {"name": "crm.lookup", "arguments": {"customer_id": n}},
    }
    return client.post("/mcp", message, format="json", HTTP_ACCEPT="application/json")


def test_an_executed_call_stays_within_its_statement_budget(
    synced, gw_agent, upstream, django_assert_max_num_queries
):
    _, client, _ = gw_agent
    assert _call(client, 1).status_code == 200  # warms the per-version catalog cache
    with django_assert_max_num_queries(BUDGET[connection.vendor]):
        response = _call(client, 2)
    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert result["isError"] is False and result["structuredContent"]["echo"] == {"customer_id": 2}
    action = ActionRequest.objects.get(pk=result["_meta"]["warden/action_id"])
    assert action.status == "executed" and action.result_status == "succeeded"
    assert upstream.tool_calls()[-1] == ("lookup", {"customer_id": 2})


def test_one_audit_entry_records_the_execution_and_its_result(synced, gw_agent, upstream):
    _, client, _ = gw_agent
    response = _call(client, 3)
    action_id = response.json()["result"]["_meta"]["warden/action_id"]
    execution = Execution.objects.get(action_request_id=action_id)
    entries = AuditEntry.objects.exclude(action="action.decided").filter(
        tool="crm.lookup", created_at__gte=execution.started_at
    )
    assert [e.action for e in entries] == ["execution.recorded"]
    entry = entries[0]
    assert entry.target_id == str(execution.pk) and entry.outcome == "succeeded"
    assert entry.input["params_sha256"] == personal_data.digest({"customer_id": 3})
    assert entry.input["output_sha256"] == execution.output_sha256
    assert entry.input["output_bytes"] == execution.output_bytes > 0
    assert entry.input["latency_ms"] == execution.latency_ms is not None
    detail = client.get(f"/api/v1/actions/{action_id}").json()
    assert detail["status"] == "executed"
    assert detail["execution"]["id"] == str(execution.pk)
    assert detail["execution"]["output_sha256"] == execution.output_sha256


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
def test_a_busy_chain_head_does_not_hold_an_executed_call_back(synced, gw_agent, upstream):
    """Neither of the call's two commits waits for another writer of the workspace's
    chain: both entries are committed queued (group commit) and chained right after."""
    _, client, _ = gw_agent
    workspace = synced.workspace
    release, held = threading.Event(), threading.Event()
    holder = hold_chain_head(workspace, release, held)
    try:
        started = time.monotonic()
        response = _call(client, 4)
        assert time.monotonic() - started < 20  # waiting would take the holder's 60 s
        assert response.json()["result"]["isError"] is False
        queued = set(
            AuditPending.objects.filter(workspace=workspace).values_list("action", flat=True)
        )
        assert queued == {"action.decided", "execution.recorded"}
    finally:
        release.set()
        holder.join(timeout=30)
    assert seal_wait_idle()
    assert not AuditPending.objects.filter(workspace=workspace).exists()
    assert AuditEntry.objects.filter(workspace=workspace, action="execution.recorded").count() == 1
    assert verify_chain(workspace).ok
