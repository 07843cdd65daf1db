"""The Python SDK against a real server (pytest-django's live_server, threaded), each
outcome an agent meets: allowed, denied with a reason, approved by a human in another
thread, expired, rate-limited. The human approves through the API with a session."""

import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.test import Client
from warden_sdk import Denied, Expired, Warden

from approvals.catalog import tool_create as _tool_create
from approvals.guard import operator_seeding
from approvals.models import ActionRequest
from keys import throttling
from tenants.models import Role
from tests.conftest import SYSTEM

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CSRF = "c" * 32  # an unmasked CSRF secret, sent as cookie and header alike


@pytest.fixture
def workspace(make_workspace):
    return make_workspace(writes_enabled=True, mode="live")


@pytest.fixture
def agent_key(workspace, make_key):
    _, plaintext = make_key(workspace, scopes=["actions:read", "actions:external"])
    return plaintext


@pytest.fixture
def warden(live_server, agent_key):
    client = Warden(live_server.url, agent_key, approval_timeout=20)
    yield client
    client.close()


@pytest.fixture
def human(live_server, workspace, make_member):
    """An approver's API session (a logged-in session cookie plus CSRF)."""
    user = make_member(workspace, Role.APPROVER)
    login = Client()
    login.force_login(user)
    session = httpx.Client(
        base_url=f"{live_server.url}/api/v1/",
        cookies={"sessionid": login.cookies["sessionid"].value, "csrftoken": CSRF},
        headers={"X-CSRFToken": CSRF, "X-Warden-Workspace": workspace.slug},
        timeout=10,
    )
    session.user = user
    yield session
    session.close()


def tool_create(**fields):
    """Test set-up seeds the catalog as an operator would (adding a tool is governed)."""
    with operator_seeding():
        return _tool_create(**fields)


def only_action(warden):
    """The one action of the test, read back through the SDK like the agent would."""
    (action_id,) = ActionRequest.objects.values_list("pk", flat=True)
    return warden.action(str(action_id))


def decide_when_queued(session, verdict, reason):
    """In another thread: wait until the request reaches the queue, then decide it."""
    outcome = {}

    def run():
        for _ in range(100):
            queued = session.get("approvals").json()["results"]
            if queued:
                response = session.post(
                    f"approvals/{queued[0]['id']}/{verdict}", json={"reason": reason}
                )
                outcome["status"] = response.status_code
                return
            time.sleep(0.1)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_allowed_runs_the_function_once_and_reports(workspace, warden):
    tool_create(reason="test set-up", workspace=workspace, actor=SYSTEM, name="crm.lookup")
    calls = []

    @warden.guard("crm.lookup")
    def lookup(customer_id):
        calls.append(customer_id)
        return {"name": "Ada"}

    assert lookup(42) == {"name": "Ada"}
    assert calls == [42]
    assert only_action(warden).status == "executed"


def test_pending_then_approved_by_a_human_runs_exactly_once(workspace, warden, human):
    tool_create(
        reason="test set-up",
        workspace=workspace,
        actor=SYSTEM,
        name="email.send",
        level="external",
        confirmation="always",
        summary_template="Email {params.to}",
    )
    calls = []
    thread, outcome = decide_when_queued(human, "approve", "checked the recipient")

    with warden.guard("email.send", params={"to": "ada@example.test"}) as guard:
        calls.append(1)
        guard.result = {"message_id": "m-1"}
    thread.join(10)

    assert outcome == {"status": 200}
    assert calls == [1]
    assert guard.authorisation.approved_by == [f"user:{human.user.email}"]
    action = only_action(warden)
    assert (action.status, action.decided_by) == ("executed", [f"user:{human.user.email}"])


def test_denied_raises_with_the_approvers_reason(workspace, warden, human):
    tool_create(
        reason="test set-up",
        workspace=workspace,
        actor=SYSTEM,
        name="email.send",
        level="external",
        confirmation="always",
    )
    thread, outcome = decide_when_queued(human, "deny", "not to this customer")

    @warden.guard("email.send", params={"to": "ada@example.test"})
    def send():
        raise AssertionError("must not run")

    with pytest.raises(Denied) as caught:
        send()
    thread.join(10)
    assert outcome == {"status": 200}
    assert caught.value.reason == "not to this customer"
    assert caught.value.decided_by == [f"user:{human.user.email}"]


def test_nobody_approves_in_time_raises_expired(workspace, warden):
    workspace.confirmation_ttl = timedelta(seconds=2)
    workspace.save()
    tool_create(
        reason="test set-up",
        workspace=workspace,
        actor=SYSTEM,
        name="email.send",
        level="external",
        confirmation="always",
    )

    @warden.guard("email.send", params={}, timeout=15)
    def send():
        raise AssertionError("must not run")

    started = time.monotonic()
    with pytest.raises(Expired):
        send()
    assert time.monotonic() - started < 10  # the long-poll stops at the expiry
    assert only_action(warden).status == "expired"


def test_rate_limited_is_retried_after_retry_after(workspace, live_server, make_key, monkeypatch):
    monkeypatch.setattr(throttling, "WINDOW_SECONDS", 2)  # a 2 s window keeps this fast
    tool_create(reason="test set-up", workspace=workspace, actor=SYSTEM, name="crm.lookup")
    _, plaintext = make_key(workspace, scopes=["actions:read"], rate_limit_per_minute=2)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(seconds)

    calls = []
    # Start at the top of a window, or the window may turn between the calls that use up
    # the budget and the one that should be refused (then nothing is refused).
    time.sleep(throttling.WINDOW_SECONDS - time.time() % throttling.WINDOW_SECONDS)
    with Warden(live_server.url, plaintext, sleep=sleep) as warden:
        warden.whoami()
        warden.whoami()

        @warden.guard("crm.lookup", params={})
        def lookup():
            calls.append(1)

        lookup()
    assert calls == [1]
    assert slept and all(1 <= s <= 2 for s in slept)
