"""POST /api/v1/actions with "execute": true: one gate, then Warden executes the call
upstream with its own credentials, exactly once, and records what it observed."""

import pytest

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ActionRequest
from audit.models import AuditEntry
from gateway.models import Execution
from tests.gateway.conftest import SECRET, SYSTEM, seeded_tool_update

pytestmark = pytest.mark.django_db


def _execute(client, tool, params, **extra):
    body = {"tool": tool, "params": params, "execute": True, **extra}
    return client.post("/api/v1/actions", body, format="json")


def test_allowed_call_executes_and_returns_the_upstream_result(synced, gw_agent, upstream):
    _, client, _ = gw_agent
    response = _execute(client, "crm.lookup", {"customer_id": 7})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["decision"] == "allowed"
    assert body["result"]["structuredContent"] == {"tool": "lookup", "echo": {"customer_id": 7}}
    assert body["execution"]["status"] == "succeeded"
    assert upstream.tool_calls() == [("lookup", {"customer_id": 7})]
    assert upstream.headers_seen[-1]["Authorization"] == SECRET
    assert "sk-live" not in response.content.decode()
    detail = client.get(f"/api/v1/actions/{body['id']}").json()
    assert detail["status"] == "executed"
    assert detail["execution"]["status"] == "succeeded"
    assert detail["execution"]["output_bytes"] > 0 and detail["execution"]["output_sha256"]
    entry = AuditEntry.objects.get(action="execution.recorded")
    assert entry.tool == "crm.lookup" and entry.outcome == "succeeded"
    assert "params" not in entry.input  # personal data: the digest only
    assert entry.input["params_sha256"] == ActionRequest.objects.get(pk=body["id"]).params_digest
    assert entry.input["output_sha256"] == detail["execution"]["output_sha256"]
    assert entry.input["latency_ms"] is not None
    assert "sk-live" not in str(AuditEntry.objects.values_list("input", flat=True))


def test_secret_params_are_digested_in_the_evidence(synced, gw_agent, upstream):
    from approvals.models import Tool

    seeded_tool_update(
        reason="test set-up",
        tool=Tool.objects.get(name="crm.send"),
        actor=SYSTEM,
        changes={"confirmation": "never", "secret_params": ["password"]},
    )
    _, client, _ = gw_agent
    response = _execute(client, "crm.send", {"password": "hunter2-secret", "to": "a"})
    assert response.status_code == 200, response.json()
    assert upstream.tool_calls() == [("send", {"password": "hunter2-secret", "to": "a"})]
    entry = AuditEntry.objects.get(action="execution.recorded")
    assert "hunter2" not in str(entry.input)
    assert "params" not in entry.input
    assert ActionRequest.objects.get().params["password"].startswith("hmac-sha256:")


def test_gated_call_executes_once_after_a_human_approves(
    synced, gw_agent, upstream, gw_workspace, make_member, approve, api_error
):
    from tenants.models import Role

    _, client, _ = gw_agent
    first = _execute(client, "crm.send", {"to": "bob"})
    assert first.status_code == 202, first.json()
    assert upstream.tool_calls() == []
    pending = _execute(client, "crm.send", {"to": "bob"})  # joins the waiting request
    assert pending.status_code == 202 and pending.json()["id"] == first.json()["id"]
    action = ActionRequest.objects.get(pk=first.json()["id"])
    approver = make_member(gw_workspace, Role.APPROVER)
    assert approve(approver, gw_workspace, action.confirmation.pk).status_code == 200
    done = _execute(client, "crm.send", {"to": "bob"})  # same call again: runs, once
    assert done.status_code == 200, done.json()
    assert done.json()["execution"]["status"] == "succeeded"
    assert upstream.tool_calls() == [("send", {"to": "bob"})]
    token = first.json()["confirmation_token"]
    again = _execute(client, "crm.send", {"to": "bob"}, confirmed=True, confirmation_token=token)
    api_error(again, 409, "confirmation_used")
    assert upstream.tool_calls() == [("send", {"to": "bob"})]


def test_denied_call_never_reaches_the_upstream(
    synced, gw_workspace, make_key, key_client, upstream, api_error
):
    _, plaintext = make_key(gw_workspace, scopes=["actions:read"], tools=["crm.lookup"])
    client = key_client(plaintext)
    api_error(_execute(client, "crm.send", {"to": "x"}), 403, "tool_not_allowed")
    assert upstream.tool_calls() == []


def test_bad_arguments_are_refused_before_the_upstream(synced, gw_agent, upstream, api_error):
    _, client, _ = gw_agent
    body = api_error(
        _execute(client, "crm.lookup", {"customer_id": "seven"}), 400, "invalid_params"
    )
    assert body["error"]["detail"] == {
        "path": "$.customer_id",
        "rule": "type",
        "expected": "integer",
    }
    assert "seven" not in str(body)
    missing = api_error(_execute(client, "crm.lookup", {}), 400, "invalid_params")
    assert missing["error"]["detail"]["path"] == "$.customer_id"
    assert upstream.tool_calls() == []
    recorded = ActionRequest.objects.filter(denial_code="invalid_params")
    assert recorded.count() == 2 and all(a.status == "denied" for a in recorded)
    assert AuditEntry.objects.filter(action="action.decided", outcome="invalid_params").count() == 2


def test_invalid_params_without_execute_too(synced, gw_agent, ask, api_error):
    _, client, _ = gw_agent
    api_error(ask(client, "crm.lookup", {"customer_id": []}), 400, "invalid_params")


def test_hidden_tool_does_not_reveal_its_schema(
    synced, gw_workspace, make_key, key_client, api_error
):
    _, plaintext = make_key(gw_workspace, scopes=["actions:read"], tools=["other.*"])
    api_error(_execute(key_client(plaintext), "crm.lookup", {}), 403, "tool_not_allowed")


def test_dry_run_never_calls_the_upstream(synced, gw_workspace, gw_agent, upstream):
    gw_workspace.mode = "dry_run"
    gw_workspace.save()
    _, client, _ = gw_agent
    body = _execute(client, "crm.lookup", {"customer_id": 1}).json()
    assert body["dry_run"] is True and body["execution"]["status"] == "dry_run"
    assert body["result"] is None
    assert upstream.tool_calls() == []
    assert AuditEntry.objects.get(action="execution.recorded").outcome == "dry_run"


def test_upstream_failure_is_recorded_never_a_500(synced, gw_agent, upstream):
    _, client, _ = gw_agent
    upstream.stop()
    response = _execute(client, "crm.lookup", {"customer_id": 1})
    assert response.status_code == 200
    body = response.json()
    assert body["execution"]["status"] == "failed" and body["result"] is None
    assert "could not be reached" in body["execution"]["error"]
    assert ActionRequest.objects.get(pk=body["id"]).status == "failed"
    upstream.start()


def test_upstream_http_error_is_recorded(synced, gw_agent, upstream):
    _, client, _ = gw_agent
    upstream.status = 500
    body = _execute(client, "crm.lookup", {"customer_id": 1}).json()
    assert body["execution"]["status"] == "failed" and "HTTP 500" in body["execution"]["error"]


def test_a_started_execution_is_never_repeated(synced, gw_agent, upstream):
    """A crash after the first write leaves the row `started`: the agent's retry of the
    same request (same idempotency key) replays the decision and calls nothing again."""
    _, client, _ = gw_agent
    request = {"idempotency_key": "crash-retry-1"}
    body = _execute(client, "crm.lookup", {"customer_id": 1}, **request).json()
    action = ActionRequest.objects.get(pk=body["id"])
    Execution.objects.filter(action_request=action).update(status="started", finished_at=None)
    retried = _execute(client, "crm.lookup", {"customer_id": 1}, **request)
    assert retried.status_code == 200, retried.json()
    assert retried.json()["id"] == body["id"]
    assert retried.json()["execution"]["status"] == "started"
    assert len(upstream.tool_calls()) == 1


def test_tool_without_connector_is_only_decided(gw_workspace, gw_agent):
    with operator_seeding():
        tool_create(reason="test set-up", workspace=gw_workspace, actor=SYSTEM, name="plain.tool")
    _, client, _ = gw_agent
    body = _execute(client, "plain.tool", {}).json()
    assert body["decision"] == "allowed" and body["execution"] is None


def test_http_connector_executes(gw_workspace, make_connector, gw_agent, upstream):
    from approvals.models import Tool
    from gateway.services import connector_sync

    connector = make_connector(
        gw_workspace, name="billing", kind="http", declared_tools=[{"name": "charge"}]
    )
    connector_sync(connector=connector, actor=SYSTEM)
    seeded_tool_update(
        reason="test set-up",
        tool=Tool.objects.get(name="billing.charge"),
        actor=SYSTEM,
        changes={"enabled": True, "confirmation": "never"},
    )
    _, client, _ = gw_agent
    body = _execute(client, "billing.charge", {"amount": 3}).json()
    assert body["result"]["structuredContent"] == {"ok": True, "tool": "charge"}
    assert upstream.tool_calls() == [("charge", {"amount": 3})]


def test_an_approved_confirmation_wins_over_a_newer_pending_one(
    synced, gw_agent, upstream, gw_workspace, make_member, approve, ask
):
    from tenants.models import Role

    _, client, _ = gw_agent
    first = ask(client, "crm.send", {"to": "bob"}).json()
    action = ActionRequest.objects.get(pk=first["id"])
    approve(make_member(gw_workspace, Role.APPROVER), gw_workspace, action.confirmation.pk)
    assert ask(client, "crm.send", {"to": "bob"}).status_code == 202  # a newer, pending ask
    done = _execute(client, "crm.send", {"to": "bob"})
    assert done.status_code == 200, done.json()
    assert done.json()["id"] == first["id"]
    assert upstream.tool_calls() == [("send", {"to": "bob"})]


def test_upstream_session_is_reused_and_reopened_when_gone(synced, gw_agent, upstream):
    _, client, _ = gw_agent
    upstream.sessions = True
    for n in (1, 2):
        body = _execute(client, "crm.lookup", {"customer_id": n}).json()
        assert body["execution"]["status"] == "succeeded", body
    opened = upstream.initializations
    upstream.known_sessions.clear()  # the upstream restarted: our session id is unknown
    body = _execute(client, "crm.lookup", {"customer_id": 3}).json()
    assert body["execution"]["status"] == "succeeded", body
    assert upstream.initializations == opened + 1
    assert [c[1]["customer_id"] for c in upstream.tool_calls()] == [1, 2, 3]  # never twice


def test_a_confirmation_found_expired_on_the_recall_stays_expired(
    synced, gw_agent, upstream, gw_workspace, make_member, approve, api_error
):
    """The re-call runs in the gateway's transaction; what the gate records before
    refusing (the confirmation marked expired, its audit entry) still commits."""
    from datetime import timedelta

    from django.utils import timezone

    from approvals.models import ConfirmationRequest
    from tenants.models import Role

    _, client, _ = gw_agent
    first = _execute(client, "crm.send", {"to": "carol"})
    action = ActionRequest.objects.get(pk=first.json()["id"])
    approve(make_member(gw_workspace, Role.APPROVER), gw_workspace, action.confirmation.pk)
    ConfirmationRequest.objects.filter(pk=action.confirmation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    token = first.json()["confirmation_token"]
    late = _execute(client, "crm.send", {"to": "carol"}, confirmed=True, confirmation_token=token)
    api_error(late, 410, "confirmation_expired")
    assert ConfirmationRequest.objects.get(pk=action.confirmation.pk).status == "expired"
    assert AuditEntry.objects.filter(action="confirmation.expired").count() == 1
    assert upstream.tool_calls() == []
