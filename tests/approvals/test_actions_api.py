"""POST /api/v1/actions and friends, through the API, one behaviour per test."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.catalog import tool_update
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ConfirmationRequest
from audit.models import AuditEntry, ExceptionRecord
from keys.services import key_revoke
from tests.approvals.conftest import SYSTEM


def error_code(response):
    return response.json()["error"]["code"]


def test_read_tool_is_allowed(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    response = ask(client, "crm.lookup", {"id": 1})
    assert response.status_code == 200
    body = response.json()
    assert body == {"id": body["id"], "decision": "allowed", "dry_run": False}
    action = ActionRequest.objects.get(pk=body["id"])
    assert (action.status, action.policy_version) == ("allowed", live_workspace.policy_version)


def test_decision_is_audited_with_policy_version(live_workspace, agent, make_tool, ask):
    key, client = agent
    make_tool(live_workspace, "crm.lookup")
    body = ask(client, "crm.lookup", {"id": 1}, reason="user asked").json()
    entry = AuditEntry.objects.get(action="action.decided", target_id=body["id"])
    assert entry.actor == f"key:{key.pk}"
    assert entry.decision == "allowed"
    # Params are personal data: the chain holds their digest, never the values.
    assert entry.input == {
        "params_sha256": ActionRequest.objects.get(pk=body["id"]).params_digest,
        "reason": "user asked",
        "dry_run": False,
    }
    assert entry.policy_version == live_workspace.policy_version


def test_dry_run_workspace_answers_allowed_with_dry_run_true(
    make_workspace, make_key, key_client, make_tool, ask
):
    workspace = make_workspace(writes_enabled=True)
    assert workspace.mode == "dry_run"
    _, plaintext = make_key(workspace, scopes=["actions:write"])
    make_tool(workspace, "crm.update_stage", level="write")
    response = ask(key_client(plaintext), "crm.update_stage")
    assert response.status_code == 200
    assert response.json()["dry_run"] is True


def test_dry_run_still_requires_confirmation(make_workspace, make_key, key_client, make_tool, ask):
    workspace = make_workspace(writes_enabled=True)
    _, plaintext = make_key(workspace, scopes=["actions:write"])
    make_tool(workspace, "crm.update_stage", level="write", confirmation="always")
    assert ask(key_client(plaintext), "crm.update_stage").status_code == 202


def test_dry_run_still_refuses_writes_when_switch_off(
    make_workspace, make_key, key_client, make_tool, ask
):
    workspace = make_workspace()
    _, plaintext = make_key(workspace, scopes=["actions:write"])
    make_tool(workspace, "crm.update_stage", level="write")
    response = ask(key_client(plaintext), "crm.update_stage")
    assert (response.status_code, error_code(response)) == (403, "writes_disabled")


def test_unknown_disabled_and_not_allowlisted_tools_answer_identically(
    live_workspace, make_key, key_client, make_tool, ask
):
    _, plaintext = make_key(live_workspace, scopes=["actions:read"], tools=["crm.*"])
    client = key_client(plaintext)
    make_tool(live_workspace, "crm.disabled", enabled=False)
    make_tool(live_workspace, "hr.lookup")
    answers = []
    for name in ["crm.missing", "crm.disabled", "hr.lookup"]:
        response = ask(client, name)
        body = response.json()
        body["error"]["detail"].pop("tool")
        answers.append((response.status_code, body))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 403 and answers[0][1]["error"]["code"] == "tool_not_allowed"


def test_not_allowlisted_tool_without_scope_is_still_tool_not_allowed(
    live_workspace, make_key, key_client, make_tool, ask
):
    _, plaintext = make_key(live_workspace, scopes=["actions:read"], tools=["crm.*"])
    make_tool(live_workspace, "billing.refund", level="write")
    assert error_code(ask(key_client(plaintext), "billing.refund")) == "tool_not_allowed"


def test_missing_level_scope_is_forbidden_by_scope(
    live_workspace, make_key, key_client, make_tool, ask
):
    _, plaintext = make_key(live_workspace, scopes=["actions:read"])
    make_tool(live_workspace, "crm.update_stage", level="write")
    response = ask(key_client(plaintext), "crm.update_stage")
    assert (response.status_code, error_code(response)) == (403, "forbidden_by_scope")
    assert response.json()["error"]["detail"] == {"required_scope": "actions:write"}


def test_platform_tool_names_cannot_be_called_as_actions(agent, ask):
    _, client = agent
    assert error_code(ask(client, "warden.workspace.go_live")) == "tool_not_allowed"


@pytest.fixture
def conditional_refund(live_workspace, make_tool):
    """billing.refund, confirmed only above an amount: its condition reads a param."""
    return make_tool(
        live_workspace,
        "billing.refund",
        level="write",
        confirmation="conditional",
        condition="params.amount > 1000",
    )


def test_policy_error_denies_and_records_why(agent, conditional_refund, ask):
    _, client = agent
    response = ask(client, "billing.refund", {"amount": "lots"})
    assert (response.status_code, error_code(response)) == (403, "policy_error")
    action = ActionRequest.objects.get(tool_name="billing.refund")
    assert action.status == "denied" and "condition failed" in action.rationale
    record = ExceptionRecord.objects.get(kind="policy_error")
    assert "condition failed" in record.why


def test_missing_param_in_condition_is_policy_error(agent, conditional_refund, ask):
    _, client = agent
    assert error_code(ask(client, "billing.refund", {})) == "policy_error"


def test_workspace_mismatch(live_workspace, other_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    response = ask(client, "crm.lookup", workspace_id=str(other_workspace.pk))
    assert (response.status_code, error_code(response)) == (403, "workspace_mismatch")
    assert ask(client, "crm.lookup", workspace_id=str(live_workspace.pk)).status_code == 200


def test_invalid_key(db, key_client, ask):
    response = ask(key_client("wdn_000000000000_" + "x" * 40), "crm.lookup")
    assert (response.status_code, error_code(response)) == (401, "invalid_key")


def test_revoked_key(live_workspace, make_key, key_client, ask):
    key, plaintext = make_key(live_workspace)
    key_revoke(reason="test set-up", key=key, actor=SYSTEM)
    response = ask(key_client(plaintext), "crm.lookup")
    assert (response.status_code, error_code(response)) == (401, "key_revoked")


def test_expired_key(live_workspace, make_key, key_client, ask):
    import time_machine

    _, plaintext = make_key(live_workspace, expires_at=timezone.now() + timedelta(hours=1))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = ask(key_client(plaintext), "crm.lookup")
    assert (response.status_code, error_code(response)) == (401, "key_expired")


def test_humans_get_keys_only(live_workspace, make_member, user_client, ask):
    from tenants.models import Role

    user = make_member(live_workspace, Role.OWNER)
    response = ask(user_client(user, live_workspace), "crm.lookup")
    assert (response.status_code, error_code(response)) == (403, "keys_only")


def test_rate_limited_with_retry_after(live_workspace, make_key, key_client, make_tool, ask):
    _, plaintext = make_key(live_workspace, rate_limit_per_minute=1)
    make_tool(live_workspace, "crm.lookup")
    client = key_client(plaintext)
    assert ask(client, "crm.lookup").status_code == 200
    response = ask(client, "crm.lookup")
    assert (response.status_code, error_code(response)) == (429, "rate_limited")
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "body",
    [
        {"params": {}},
        {"tool": "crm.lookup", "params": [1, 2]},
        {"tool": "crm.lookup", "confirmed": True},
        {"tool": "crm.lookup", "confirmation_token": "ct_x"},
    ],
    ids=["no-tool", "params-not-object", "confirmed-without-token", "token-without-confirmed"],
)
def test_validation_error(agent, make_tool, live_workspace, body):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    response = client.post("/api/v1/actions", body, format="json")
    assert (response.status_code, error_code(response)) == (400, "validation_error")


# --- idempotency -----------------------------------------------------------------------


def test_same_idempotency_key_returns_first_answer_without_new_request(
    live_workspace, agent, make_tool, ask
):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    first = ask(client, "crm.lookup", {"id": 1}, idempotency_key="abc")
    second = ask(client, "crm.lookup", {"id": 1}, idempotency_key="abc")
    assert (first.status_code, first.json()) == (second.status_code, second.json())
    assert ActionRequest.objects.count() == 1


def test_idempotent_confirmation_answer_repeats_the_token(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    first = ask(client, "crm.update_stage", idempotency_key="k1")
    second = ask(client, "crm.update_stage", idempotency_key="k1")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert ConfirmationRequest.objects.count() == 1


def test_idempotent_denial_replays_denial(live_workspace, agent, ask):
    _, client = agent
    first = ask(client, "nope.tool", idempotency_key="d1")
    second = ask(client, "nope.tool", idempotency_key="d1")
    assert (first.status_code, first.json()) == (second.status_code, second.json())
    assert ActionRequest.objects.count() == 1


REPLAY_CASES = {
    "allowed": ("crm.lookup", {}),
    "denied": ("crm.nope", {}),
    "pending": ("crm.update_stage", {"level": "write", "confirmation": "always"}),
}


@pytest.mark.parametrize("case", sorted(REPLAY_CASES))
def test_a_replay_is_the_first_answer_byte_for_byte(live_workspace, agent, make_tool, ask, case):
    _, client = agent
    tool, fields = REPLAY_CASES[case]
    if case != "denied":
        make_tool(live_workspace, tool, **fields)
    first = ask(client, tool, {"id": 1}, idempotency_key=f"replay-{case}")
    second = ask(client, tool, {"id": 1}, idempotency_key=f"replay-{case}")
    assert first.status_code == {"allowed": 200, "denied": 403, "pending": 202}[case]
    assert (second.status_code, second.content) == (first.status_code, first.content)
    assert ActionRequest.objects.count() == 1


def test_the_request_keeps_the_outcome_not_the_answer(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    body = ask(client, "crm.update_stage", idempotency_key="kept").json()
    confirmation = ConfirmationRequest.objects.get()
    assert ActionRequest.objects.get(pk=body["id"]).outcome == {
        "kind": "pending",
        "confirmation_id": str(confirmation.pk),
        "irreversible": False,
        "expires_at": confirmation.expires_at.isoformat(),
    }  # no status code, no body, never the token, no summary (it is sealed personal data)


def test_a_replayed_denial_keeps_the_reason_it_was_given(live_workspace, agent, make_tool, ask):
    _, client = agent
    tool = make_tool(
        live_workspace, "crm.export", deny_condition="params.rows > 10", deny_reason="Too many."
    )
    first = ask(client, "crm.export", {"rows": 50}, idempotency_key="deny-reason")
    with operator_seeding():
        tool_update(
            reason="test set-up", tool=tool, actor=SYSTEM, changes={"deny_reason": "Changed since."}
        )
    second = ask(client, "crm.export", {"rows": 50}, idempotency_key="deny-reason")
    assert first.json()["error"]["message"] == "Too many."
    assert (second.status_code, second.content) == (first.status_code, first.content)


def test_idempotency_keys_are_per_key(live_workspace, make_key, key_client, make_tool, ask):
    make_tool(live_workspace, "crm.lookup")
    for _ in range(2):
        _, plaintext = make_key(live_workspace)
        assert ask(key_client(plaintext), "crm.lookup", idempotency_key="same").status_code == 200
    assert ActionRequest.objects.count() == 2


# --- secrets -------------------------------------------------------------------------


def test_secret_params_are_stored_only_as_digests(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(
        live_workspace,
        "email.send",
        level="external",
        secret_params=["api_token"],
        summary_template="Send with {params.api_token} to {params.to}",
    )
    secret = "sk-live-VERY-SECRET-value"
    response = ask(client, "email.send", {"api_token": secret, "to": "a@b.c"})
    assert response.status_code == 202
    assert secret not in json.dumps(response.json())
    action = ActionRequest.objects.get(tool_name="email.send")
    assert action.params["api_token"].startswith("hmac-sha256:")
    assert action.params["to"] == "a@b.c"
    everything = json.dumps(
        [
            list(ActionRequest.objects.values()),
            list(ConfirmationRequest.objects.values()),
            list(AuditEntry.objects.values()),
        ],
        default=str,
    )
    assert secret not in everything
    assert action.confirmation.summary == "Send with [secret] to a@b.c"


def test_secret_params_still_bind_the_token(
    live_workspace, agent, approver, make_tool, ask, approve
):
    _, client = agent
    make_tool(live_workspace, "email.send", level="external", secret_params=["api_token"])
    first = ask(client, "email.send", {"api_token": "one"}).json()
    confirmation = ConfirmationRequest.objects.get()
    approve(approver, live_workspace, confirmation.pk)
    token = dict(confirmed=True, confirmation_token=first["confirmation_token"])
    wrong = ask(client, "email.send", {"api_token": "two"}, **token)
    assert error_code(wrong) == "confirmation_mismatch"
    assert ask(client, "email.send", {"api_token": "one"}, **token).status_code == 200


# --- query budget ----------------------------------------------------------------------


TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def sql_statements(captured):
    """Statements that touch data. Django >= 4.2 also logs BEGIN/COMMIT (and savepoints)
    in connection.queries; those are transaction control, not queries."""
    return [q["sql"] for q in captured if q["sql"].split()[0].upper() not in TRANSACTION_CONTROL]


@pytest.mark.django_db(transaction=True)  # real transactions, as in production
def test_allow_path_uses_at_most_three_statements(
    live_workspace, agent, make_tool, ask, django_assert_max_num_queries
):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    ask(client, "crm.lookup")  # warm: key last_used_at is written at most once a minute
    make_tool(live_workspace, "crm.other")  # new policy version: the next call reads the tool
    with CaptureQueriesContext(connection) as cold:
        assert ask(client, "crm.lookup", {"id": 2}).status_code == 200
    postgres = connection.vendor == "postgresql"
    # PostgreSQL: key auth; action insert + chain head lock (one statement, a CTE); the
    # entry + head move (warden_audit_append); plus BEGIN and COMMIT. SQLite has no
    # CTE-borne inserts or functions: insert, head lock, entry, head update.
    budget = 3 if postgres else 5
    with django_assert_max_num_queries(budget + 2) as warm:  # + BEGIN and COMMIT
        assert ask(client, "crm.lookup", {"id": 3}).status_code == 200
    assert len(sql_statements(cold.captured_queries)) <= budget + 1, cold.captured_queries
    statements = sql_statements(warm.captured_queries)
    assert len(statements) <= budget, statements  # the tool row comes from the cache
    if postgres:
        assert statements[1].startswith("WITH inserted AS (INSERT INTO")
        assert statements[2].startswith("SELECT warden_audit_append(")


@pytest.mark.django_db(transaction=True)
def test_the_bare_call_is_one_statement(agent, django_assert_max_num_queries):
    """GET /whoami, the floor the decision is measured against: the key lookup only."""
    _, client = agent
    client.get("/api/v1/whoami")  # warm: last_used_at
    with django_assert_max_num_queries(1):
        assert client.get("/api/v1/whoami").status_code == 200


# --- status and result ---------------------------------------------------------------


def test_get_action_shows_status(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    body = ask(client, "crm.update_stage").json()
    response = client.get(f"/api/v1/actions/{body['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["confirmation"]["status"] == "pending"


def test_get_action_of_another_key_is_not_found(
    live_workspace, agent, make_key, key_client, make_tool, ask
):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    body = ask(client, "crm.lookup").json()
    _, other = make_key(live_workspace)
    assert key_client(other).get(f"/api/v1/actions/{body['id']}").status_code == 404


def test_report_result_once(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    action_id = ask(client, "crm.lookup").json()["id"]
    url = f"/api/v1/actions/{action_id}/result"
    response = client.post(url, {"status": "succeeded", "output": {"rows": 3}}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "executed"
    again = client.post(url, {"status": "failed", "output": {}}, format="json")
    assert (again.status_code, error_code(again)) == (409, "conflict")
    entry = AuditEntry.objects.get(action="action.result_reported")
    assert entry.input["status"] == "succeeded" and "rows" not in json.dumps(entry.input)


def test_failed_result_marks_failed(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    action_id = ask(client, "crm.lookup").json()["id"]
    response = client.post(
        f"/api/v1/actions/{action_id}/result", {"status": "failed", "output": None}, format="json"
    )
    assert response.json()["status"] == "failed"


def test_only_the_requesting_key_reports(
    live_workspace, agent, make_key, key_client, make_tool, ask
):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    action_id = ask(client, "crm.lookup").json()["id"]
    _, other = make_key(live_workspace)
    response = key_client(other).post(
        f"/api/v1/actions/{action_id}/result", {"status": "succeeded"}, format="json"
    )
    assert response.status_code == 404


def test_result_output_is_size_limited(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    action_id = ask(client, "crm.lookup").json()["id"]
    response = client.post(
        f"/api/v1/actions/{action_id}/result",
        {"status": "succeeded", "output": "x" * (65 * 1024)},
        format="json",
    )
    assert (response.status_code, error_code(response)) == (400, "validation_error")


def test_result_of_pending_action_is_refused(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    action_id = ask(client, "crm.update_stage").json()["id"]
    response = client.post(
        f"/api/v1/actions/{action_id}/result", {"status": "succeeded"}, format="json"
    )
    assert (response.status_code, error_code(response)) == (409, "conflict")


def test_result_status_must_be_succeeded_or_failed(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    action_id = ask(client, "crm.lookup").json()["id"]
    response = client.post(f"/api/v1/actions/{action_id}/result", {"status": "done"}, format="json")
    assert error_code(response) == "validation_error"


def test_params_sent_to_an_unknown_tool_are_not_kept(agent, ask):
    _, client = agent
    ask(client, "nope.exfiltrate", {"password": "hunter2"})
    action = ActionRequest.objects.get(tool_name="nope.exfiltrate")
    assert action.params == {} and action.params_digest
    assert "hunter2" not in str(list(AuditEntry.objects.values("input")))


def test_catalog_change_is_seen_by_the_next_decision(
    live_workspace, make_key, key_client, make_tool, ask
):
    _, plaintext = make_key(live_workspace, scopes=["actions:read", "tools:write"])
    client = key_client(plaintext)
    tool = make_tool(live_workspace, "crm.lookup")
    assert ask(client, "crm.lookup").status_code == 200  # warms the per-version cache
    client.patch(
        f"/api/v1/tools/{tool.pk}", {"reason": "test change", "enabled": False}, format="json"
    )
    assert error_code(ask(client, "crm.lookup")) == "tool_not_allowed"
    # Narrowing (disabling) applies at once; tightening it again is seen at once too.
    client.patch(
        f"/api/v1/tools/{tool.pk}", {"reason": "test change", "enabled": True}, format="json"
    )
    assert error_code(ask(client, "crm.lookup")) == "tool_not_allowed"  # enabling: governed
    client.patch(
        f"/api/v1/tools/{tool.pk}", {"reason": "test change", "level": "write"}, format="json"
    )
    tool.refresh_from_db()
    assert tool.level == "write" and not tool.enabled


@pytest.mark.parametrize(
    "params",
    [{"a": "x\u0000y"}, {"a\u0000": 1}, {"a": ["\ud800"]}],
    ids=["nul-value", "nul-key", "lone-surrogate"],
)
def test_unstorable_text_is_a_validation_error(live_workspace, agent, make_tool, params):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    response = client.post(
        "/api/v1/actions",
        json.dumps({"tool": "crm.lookup", "params": params}),
        content_type="application/json",
    )
    assert (response.status_code, error_code(response)) == (400, "validation_error")


def test_unstorable_result_output_is_a_validation_error(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    action_id = ask(client, "crm.lookup").json()["id"]
    response = client.post(
        f"/api/v1/actions/{action_id}/result",
        {"status": "succeeded", "output": {"x": "a\u0000"}},
        format="json",
    )
    assert (response.status_code, error_code(response)) == (400, "validation_error")
