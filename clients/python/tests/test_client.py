"""The sync client and guard against the fake Warden: one behaviour per test."""

import pytest
from warden_sdk import (
    Allowed,
    ApprovalTimeout,
    Denied,
    Expired,
    NotAllowed,
    Pending,
    RateLimited,
    WardenError,
)
from warden_sdk.codes import ERROR_CODES


def confirmed_calls(fake):
    return [body for body in fake.sent("POST", "/api/v1/actions") if body.get("confirmed")]


def test_whoami_and_tools_are_typed(warden, fake):
    fake.tools = {"crm.lookup": "allow", "email.send": "confirm"}
    me = warden.whoami()
    assert (me.workspace, me.mode, me.key_id) == ("acme", "live", "k1")
    tools = {t.name: t.confirmation for t in warden.tools()}
    assert tools == {"crm.lookup": "never", "email.send": "always"}


def test_the_key_is_sent_as_a_bearer_token(warden, fake):
    warden.whoami()
    assert fake.requests[0].headers["Authorization"] == "Bearer wdn_test_key"


def test_ask_allowed_and_pending(warden, fake):
    fake.tools = {"crm.lookup": "allow", "email.send": "confirm"}
    allowed = warden.ask("crm.lookup", {"id": 1}, reason="user asked", idempotency_key="k-1")
    assert isinstance(allowed, Allowed) and allowed.dry_run is False
    assert fake.sent("POST", "/api/v1/actions")[0] == {
        "tool": "crm.lookup",
        "params": {"id": 1},
        "reason": "user asked",
        "idempotency_key": "k-1",
    }
    pending = warden.ask("email.send", {"to": "a"})
    assert isinstance(pending, Pending)
    assert pending.token.startswith("ct_") and pending.summary == "Run email.send"
    assert pending.expires_at.year == 2030
    assert pending.token not in repr(pending)


def test_refusal_raises_not_allowed_with_its_code(warden, fake):
    with pytest.raises(NotAllowed) as caught:
        warden.ask("hr.fire", {})
    assert (caught.value.code, caught.value.status) == ("tool_not_allowed", 403)


def test_every_error_code_maps_to_a_warden_error(warden):
    from warden_sdk.errors import error_from_response

    for code, status in ERROR_CODES.items():
        exc = error_from_response(status, {"error": {"code": code, "message": "m"}}, 3)
        assert isinstance(exc, WardenError) and exc.code == code


def test_rate_limited_is_retried_after_retry_after(warden, fake, clock):
    fake.throttle_next = 2
    assert warden.whoami().workspace == "acme"
    assert clock.sleeps == [2.0, 2.0]


def test_rate_limited_raises_after_the_retries(warden, fake, clock):
    fake.throttle_next = 10
    with pytest.raises(RateLimited) as caught:
        warden.whoami()
    assert caught.value.retry_after == 2.0
    assert len(fake.requests) == warden.max_retries + 1
    assert clock.sleeps == [2.0] * warden.max_retries


def test_wait_long_polls_in_chunks_of_at_most_30_seconds(warden, fake):
    fake.tools = {"email.send": "confirm"}
    pending = warden.ask("email.send", {})
    action = warden.wait(pending.id, timeout=75)
    assert action.status == "pending"
    waits = [r.url.params.get("wait") for r in fake.requests if r.method == "GET"]
    assert waits == ["30", "30", "15"]


def test_wait_returns_the_decision(warden, fake):
    fake.tools = {"email.send": "confirm"}
    pending = warden.ask("email.send", {})
    fake.scripted = ("deny", "not this one", 2)
    action = warden.wait(pending.id, timeout=300)
    assert (action.status, action.denial_reason) == ("denied", "not this one")


def test_report_sends_status_and_output(warden, fake):
    fake.tools = {"crm.lookup": "allow"}
    allowed = warden.ask("crm.lookup", {})
    assert warden.report(allowed.id, "succeeded", {"rows": 2}).status == "executed"
    assert fake.actions[allowed.id]["result"] == {"status": "succeeded", "output": {"rows": 2}}


# --- guard as a decorator ------------------------------------------------------------


def test_guard_runs_an_allowed_call_once_and_reports_its_value(warden, fake):
    fake.tools = {"crm.lookup": "allow"}
    calls = []

    @warden.guard("crm.lookup")
    def lookup(customer_id, fields=("name",)):
        calls.append(customer_id)
        return {"name": "Ada"}

    assert lookup(7) == {"name": "Ada"}
    assert calls == [7]
    assert fake.sent("POST", "/api/v1/actions")[0]["params"] == {
        "customer_id": 7,
        "fields": ["name"],
    }
    (action,) = fake.actions.values()
    assert action["result"] == {"status": "succeeded", "output": {"name": "Ada"}}


def test_guard_params_can_be_computed_from_the_call(warden, fake):
    fake.tools = {"crm.lookup": "allow"}

    @warden.guard("crm.lookup", params=lambda client, cid: {"id": cid})
    def lookup(client, cid):
        return None

    lookup(object(), 3)
    assert fake.sent("POST", "/api/v1/actions")[0]["params"] == {"id": 3}


def test_guard_waits_for_approval_then_recalls_once_and_runs_once(warden, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("approve", "ok", 2)
    calls = []

    @warden.guard("email.send", params={"to": "a@example.test"})
    def send():
        calls.append(1)
        return "sent"

    assert send() == "sent"
    assert calls == [1]
    assert len(confirmed_calls(fake)) == 1
    (action,) = fake.actions.values()
    assert action["status"] == "executed"


def test_guard_raises_denied_with_the_approvers_reason_and_never_runs(warden, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("deny", "wrong customer", 1)
    calls = []

    @warden.guard("email.send", params={})
    def send():
        calls.append(1)

    with pytest.raises(Denied) as caught:
        send()
    assert caught.value.reason == "wrong customer"
    assert caught.value.decided_by == ["user:approver@example.test"]
    assert calls == [] and confirmed_calls(fake) == []
    assert fake.sent("POST", f"/api/v1/actions/{caught.value.action_id}/result") == []


def test_guard_raises_expired(warden, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("expire", "", 1)

    @warden.guard("email.send", params={})
    def send():
        raise AssertionError("must not run")

    with pytest.raises(Expired):
        send()


def test_guard_raises_approval_timeout_when_nobody_decides(warden, fake):
    fake.tools = {"email.send": "confirm"}

    @warden.guard("email.send", params={}, timeout=45)
    def send():
        raise AssertionError("must not run")

    with pytest.raises(ApprovalTimeout):
        send()
    assert len(confirmed_calls(fake)) == 1  # the server, not the client clock, says pending


def test_guard_raises_not_allowed_without_running(warden, fake):
    @warden.guard("hr.fire", params={})
    def fire():
        raise AssertionError("must not run")

    with pytest.raises(NotAllowed) as caught:
        fire()
    assert caught.value.code == "tool_not_allowed"


def test_guard_reports_a_failure_with_the_exception_text_and_reraises(warden, fake):
    fake.tools = {"crm.lookup": "allow"}

    @warden.guard("crm.lookup", params={})
    def lookup():
        raise ValueError("CRM is down")

    with pytest.raises(ValueError, match="CRM is down"):
        lookup()
    (action,) = fake.actions.values()
    assert action["result"] == {
        "status": "failed",
        "output": {"error": "CRM is down", "type": "ValueError"},
    }


def test_guard_reports_no_output_for_a_non_json_value(warden, fake):
    fake.tools = {"crm.lookup": "allow"}
    marker = object()

    @warden.guard("crm.lookup", params={})
    def lookup():
        return marker

    assert lookup() is marker
    (action,) = fake.actions.values()
    assert action["result"] == {"status": "succeeded", "output": None}


def test_guard_in_dry_run_does_not_call_the_function(warden, fake):
    fake.tools = {"crm.update": "allow"}
    fake.dry_run = True
    calls = []

    @warden.guard("crm.update", params={}, simulate=lambda: {"would": "update"})
    def update():
        calls.append(1)

    assert update() == {"would": "update"}
    assert calls == []
    (action,) = fake.actions.values()
    assert action["status"] == "simulated"


def test_a_failed_report_does_not_hide_the_result(warden, fake, caplog):
    fake.tools = {"crm.lookup": "allow"}

    @warden.guard("crm.lookup", params={})
    def lookup():
        fake.throttle_next = 99  # the report is refused
        return 5

    assert lookup() == 5
    assert "could not report" in caplog.text


def test_guard_refuses_async_functions(warden):
    async def coro():
        return None

    with pytest.raises(TypeError):
        warden.guard("x")(coro)


# --- guard as a context manager ------------------------------------------------------


def test_context_manager_runs_the_body_when_allowed_and_reports_result(warden, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("approve", "ok", 1)
    with warden.guard("email.send", params={"to": "a"}) as guard:
        assert guard.dry_run is False
        assert guard.authorisation.approved_by == ["user:approver@example.test"]
        guard.result = {"message_id": "m1"}
    (action,) = fake.actions.values()
    assert action["result"] == {"status": "succeeded", "output": {"message_id": "m1"}}


def test_context_manager_skips_the_body_when_denied(warden, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("deny", "no", 1)
    ran = []
    with pytest.raises(Denied), warden.guard("email.send", params={}):
        ran.append(1)
    assert ran == []


def test_context_manager_reports_an_exception_as_failed(warden, fake):
    fake.tools = {"crm.lookup": "allow"}
    with pytest.raises(KeyError), warden.guard("crm.lookup", params={}):
        raise KeyError("gone")
    (action,) = fake.actions.values()
    assert action["result"]["status"] == "failed"


def test_wait_stops_when_the_server_answers_pending_early(warden, fake):
    """Past expiry the server answers at once; the client must not spin on it."""
    fake.tools = {"email.send": "confirm"}
    pending = warden.ask("email.send", {})
    fake.hold_long_polls = False
    assert warden.wait(pending.id, timeout=300).status == "pending"
    assert len([r for r in fake.requests if r.method == "GET"]) == 1


def test_unavailable_is_retried_after_retry_after_then_raised(warden, fake, clock):
    fake.unavailable_next = 1
    assert warden.whoami().workspace == "acme"
    assert clock.sleeps == [1.0]
    fake.unavailable_next = 10
    with pytest.raises(WardenError) as caught:
        warden.whoami()
    assert (caught.value.code, caught.value.status) == ("unavailable", 503)


# --- call_tool: Warden executes connector-backed tools itself ----------------------------


def test_call_tool_returns_what_the_upstream_answered(warden, fake):
    fake.tools = {"crm.lookup": "allow"}
    call = warden.call_tool("crm.lookup", {"id": 7})
    assert call.result == {"echo": {"id": 7}} and call.execution["status"] == "succeeded"
    assert fake.sent("POST", "/api/v1/actions")[0]["execute"] is True
    assert fake.executed == [("crm.lookup", {"id": 7})]


def test_call_tool_waits_for_a_human_then_executes_once(warden, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("approve", "ok", 2)
    call = warden.call_tool("email.send", {"to": "ann@example.com"})
    assert call.result == {"echo": {"to": "ann@example.com"}}
    assert len(confirmed_calls(fake)) == 1 and len(fake.executed) == 1


def test_call_tool_denied_never_executes(warden, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("deny", "not to this customer", 1)
    with pytest.raises(Denied) as denied:
        warden.call_tool("email.send", {"to": "x@example.com"})
    assert denied.value.reason == "not to this customer"
    assert fake.executed == []


def test_call_tool_in_dry_run_calls_nothing(warden, fake):
    fake.tools = {"crm.lookup": "allow"}
    fake.dry_run = True
    call = warden.call_tool("crm.lookup", {"id": 1})
    assert call.dry_run and call.result is None
