"""Decisions delivered to the agent: the long-poll (GET /api/v1/actions/{id}?wait=N),
the approver's reason on denial, and `simulated` results in dry-run, through the API."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals import waiting
from keys.services import key_revoke
from tests.approvals.conftest import SYSTEM


class FakeClock:
    """Drives approvals.waiting without real sleeping; records every sleep."""

    def __init__(self, on_sleep=None):
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(waiting, "_clock", clock.clock)
    monkeypatch.setattr(waiting, "_sleep", clock.sleep)
    return clock


@pytest.fixture
def pending(live_workspace, agent, make_tool, ask):
    """A pending request of `agent`: (202 body, confirmation id)."""
    _, client = agent
    make_tool(live_workspace, "email.send", level="external", confirmation="always")
    body = ask(client, "email.send", {"to": "a@example.test"}).json()
    detail = client.get(f"/api/v1/actions/{body['id']}").json()
    return body, detail["confirmation"]["id"]


def wait(client, action_id, seconds):
    return client.get(f"/api/v1/actions/{action_id}", {"wait": seconds})


def test_wait_returns_pending_after_the_deadline_with_growing_sleeps(agent, pending, fake_clock):
    _, client = agent
    body, _ = pending
    response = wait(client, body["id"], 5)
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert fake_clock.sleeps[:5] == [0.2, 0.3, 0.45, 0.675, 1.0]
    assert max(fake_clock.sleeps) == 1.0
    assert sum(fake_clock.sleeps) == pytest.approx(5.0)


def test_wait_returns_as_soon_as_a_human_approves(
    live_workspace, agent, pending, approver, approve, fake_clock
):
    _, client = agent
    body, confirmation_id = pending

    def approve_on_second_sleep(count):
        if count == 2:
            approve(approver, live_workspace, confirmation_id, reason="fine")

    fake_clock.on_sleep = approve_on_second_sleep
    response = wait(client, body["id"], 30)
    assert response.json()["status"] == "approved"
    assert response.json()["decided_by"] == [f"user:{approver.email}"]
    assert len(fake_clock.sleeps) == 2


def test_wait_on_a_decided_action_answers_at_once(
    live_workspace, agent, pending, approver, approve, fake_clock
):
    _, client = agent
    body, confirmation_id = pending
    approve(approver, live_workspace, confirmation_id, verdict="deny", reason="not today")
    response = wait(client, body["id"], 30)
    assert response.json()["status"] == "denied"
    assert fake_clock.sleeps == []


def test_wait_zero_is_a_plain_read(agent, pending, fake_clock):
    _, client = agent
    body, _ = pending
    assert wait(client, body["id"], 0).json()["status"] == "pending"
    assert fake_clock.sleeps == []


def test_wait_stops_at_the_confirmation_expiry_and_the_recall_says_expired(
    agent, pending, fake_clock, ask, api_error
):
    _, client = agent
    body, _ = pending
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        response = wait(client, body["id"], 30)
        assert response.json()["status"] == "pending"
        assert fake_clock.sleeps == []
        recall = ask(
            client,
            "email.send",
            {"to": "a@example.test"},
            confirmed=True,
            confirmation_token=body["confirmation_token"],
        )
        api_error(recall, 410, "confirmation_expired")
        assert wait(client, body["id"], 30).json()["status"] == "expired"


@pytest.mark.parametrize("value", ["-1", "31", "abc", "1.5", "1e3"])
def test_bad_wait_values_are_refused(agent, pending, api_error, value, fake_clock):
    _, client = agent
    body, _ = pending
    error = api_error(wait(client, body["id"], value), 400, "validation_error")
    assert "wait" in error["error"]["detail"]
    assert fake_clock.sleeps == []


def test_a_long_poll_spends_one_unit_of_the_rate_limit(
    live_workspace, make_key, key_client, make_tool, ask, api_error, fake_clock
):
    _, plaintext = make_key(live_workspace, scopes=["actions:external"], rate_limit_per_minute=3)
    client = key_client(plaintext)
    make_tool(live_workspace, "email.send", level="external", confirmation="always")
    body = ask(client, "email.send", {}).json()  # unit 1
    assert wait(client, body["id"], 20).json()["status"] == "pending"  # unit 2
    assert len(fake_clock.sleeps) > 10
    assert wait(client, body["id"], 0).status_code == 200  # unit 3
    api_error(wait(client, body["id"], 0), 429, "rate_limited")


def test_another_keys_or_workspaces_action_is_not_found_without_waiting(
    live_workspace, other_workspace, make_key, key_client, pending, api_error, fake_clock
):
    body, _ = pending
    _, same_ws = make_key(live_workspace, scopes=["actions:external"])
    _, other_ws = make_key(other_workspace, scopes=["actions:external"])
    for plaintext in (same_ws, other_ws):
        api_error(wait(key_client(plaintext), body["id"], 30), 404, "not_found")
    assert fake_clock.sleeps == []


# --- waits are a bounded pool: per key (all nodes) and per process -----------------


def _nested_waits(fake_clock, *clients_and_ids):
    """While the outer wait sleeps, each (client, action id) asks to wait too, one inside
    the other's sleep: the answers, innermost (the last to ask) first."""
    answers = []
    queue = list(clients_and_ids)

    def on_sleep(count):
        if queue:
            client, action_id = queue.pop(0)
            answers.append(wait(client, action_id, 2))

    fake_clock.on_sleep = on_sleep
    return answers


@pytest.mark.parametrize("per_key", [1, 2])
def test_a_key_holds_at_most_its_cap_of_waits_then_429_with_retry_after(
    settings, agent, pending, api_error, fake_clock, per_key
):
    settings.WARDEN_WAITS_PER_KEY = per_key
    _, client = agent
    body, _ = pending
    answers = _nested_waits(fake_clock, *[(client, body["id"])] * per_key)
    outer = wait(client, body["id"], 5)
    assert outer.json()["status"] == "pending"
    refused, *held = answers
    assert [r.json()["status"] for r in held] == ["pending"] * (per_key - 1)
    error = api_error(refused, 429, "too_many_waits")
    assert error["error"]["detail"]["limit"] == "key"
    assert 5 <= error["error"]["detail"]["retry_after"] <= 10
    assert refused["Retry-After"] == str(error["error"]["detail"]["retry_after"])
    # every slot is given back: the key may wait again, up to its cap
    fake_clock.on_sleep = None
    assert wait(client, body["id"], 1).status_code == 200


def test_one_keys_full_cap_does_not_refuse_another_keys_wait(
    settings, live_workspace, agent, make_key, key_client, make_tool, ask, pending, fake_clock
):
    settings.WARDEN_WAITS_PER_KEY = 1
    _, client = agent
    body, _ = pending
    _, plaintext = make_key(live_workspace, scopes=["actions:external"])
    other = key_client(plaintext)
    other_body = ask(other, "email.send", {"to": "b@example.test"}).json()
    answers = _nested_waits(fake_clock, (other, other_body["id"]))
    assert wait(client, body["id"], 5).status_code == 200
    assert [r.status_code for r in answers] == [200]


def test_a_process_serves_at_most_its_wait_slots_then_429(
    monkeypatch, live_workspace, agent, make_key, key_client, ask, pending, api_error, fake_clock
):
    import threading

    monkeypatch.setattr(waiting, "_process_slots", threading.BoundedSemaphore(1))
    _, client = agent
    body, _ = pending
    _, plaintext = make_key(live_workspace, scopes=["actions:external"])
    other = key_client(plaintext)
    other_body = ask(other, "email.send", {"to": "b@example.test"}).json()
    answers = _nested_waits(fake_clock, (other, other_body["id"]))
    assert wait(client, body["id"], 5).status_code == 200
    error = api_error(answers[0], 429, "too_many_waits")
    assert error["error"]["detail"]["limit"] == "process"
    fake_clock.on_sleep = None
    assert wait(other, other_body["id"], 1).status_code == 200  # the slot came back


def test_with_the_shared_cache_unreachable_waits_are_capped_per_process(
    settings, monkeypatch, agent, pending, api_error, fake_clock
):
    from tests.reliability.server import free_port
    from tests.reliability.test_redis_down import redis_cache

    settings.CACHES = redis_cache(free_port())  # nothing listens there
    monkeypatch.setattr(waiting._key_slots, "down_until", 0.0)
    settings.WARDEN_WAITS_PER_KEY = 1
    _, client = agent
    body, _ = pending
    answers = _nested_waits(fake_clock, (client, body["id"]))
    assert wait(client, body["id"], 3).json()["status"] == "pending"
    api_error(answers[0], 429, "too_many_waits")
    fake_clock.on_sleep = None
    assert wait(client, body["id"], 1).status_code == 200


def test_reads_without_waiting_take_no_wait_slot(settings, agent, pending, fake_clock):
    settings.WARDEN_WAITS_PER_KEY = 1
    _, client = agent
    body, _ = pending
    plain = []  # while the key's one slot is held, its plain reads still answer
    fake_clock.on_sleep = lambda count: plain.append(wait(client, body["id"], 0))
    assert wait(client, body["id"], 2).status_code == 200
    assert plain and {r.status_code for r in plain} == {200}


def test_a_revoked_key_cannot_wait(agent, pending, api_error, fake_clock):
    key, client = agent
    body, _ = pending
    key_revoke(reason="test set-up", key=key, actor=SYSTEM)
    api_error(wait(client, body["id"], 30), 401, "key_revoked")
    assert fake_clock.sleeps == []


def test_a_human_session_cannot_wait_on_actions(
    live_workspace, pending, approver, user_client, api_error
):
    body, _ = pending
    response = user_client(approver, live_workspace).get(
        f"/api/v1/actions/{body['id']}", {"wait": 1}
    )
    api_error(response, 403, "keys_only")


# --- the approver's reason reaches the agent -----------------------------------------


def test_denied_action_shows_the_approvers_reason(
    live_workspace, agent, pending, approver, approve
):
    _, client = agent
    body, confirmation_id = pending
    approve(approver, live_workspace, confirmation_id, verdict="deny", reason="wrong customer")
    detail = client.get(f"/api/v1/actions/{body['id']}").json()
    assert (detail["status"], detail["denial_reason"]) == ("denied", "wrong customer")
    assert detail["decided_by"] == [f"user:{approver.email}"]


def test_approved_and_gate_denied_actions_have_no_denial_reason(
    live_workspace, agent, pending, approver, approve, ask
):
    _, client = agent
    body, confirmation_id = pending
    approve(approver, live_workspace, confirmation_id, reason="ok by me")
    approved = client.get(f"/api/v1/actions/{body['id']}").json()
    assert (approved["status"], approved["denial_reason"]) == ("approved", None)
    refused = ask(client, "missing.tool", {})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "tool_not_allowed"


# --- results in dry-run are simulated ------------------------------------------------


@pytest.fixture
def dry_run_agent(make_workspace, make_key, key_client, make_tool):
    workspace = make_workspace(writes_enabled=True)
    assert workspace.mode == "dry_run"
    _, plaintext = make_key(workspace, scopes=["actions:write"])
    make_tool(workspace, "crm.update_stage", level="write")
    return key_client(plaintext)


def report(client, action_id, status, output=None):
    return client.post(
        f"/api/v1/actions/{action_id}/result", {"status": status, "output": output}, format="json"
    )


def test_success_reported_in_dry_run_is_recorded_simulated(dry_run_agent, ask):
    body = ask(dry_run_agent, "crm.update_stage", {}).json()
    assert body["dry_run"] is True
    response = report(dry_run_agent, body["id"], "succeeded", {"would": "update"})
    assert response.status_code == 200
    assert response.json()["status"] == "simulated"
    assert dry_run_agent.get(f"/api/v1/actions/{body['id']}").json()["status"] == "simulated"


def test_failure_reported_in_dry_run_stays_failed(dry_run_agent, ask):
    body = ask(dry_run_agent, "crm.update_stage", {}).json()
    assert report(dry_run_agent, body["id"], "failed", "boom").json()["status"] == "failed"


def test_success_reported_live_is_executed(live_workspace, agent, make_tool, ask):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    body = ask(client, "crm.lookup", {}).json()
    assert report(client, body["id"], "succeeded", {"ok": 1}).json()["status"] == "executed"
