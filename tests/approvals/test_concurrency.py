"""Row locks under real concurrency (PostgreSQL; select_for_update is a no-op on SQLite)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from approvals.asking import action_submit
from approvals.confirmations import confirmation_approve, confirmation_deny
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest
from common.actor import Actor
from common.errors import WardenError
from keys.models import MachineKey
from tenants.models import Role
from tests.approvals.conftest import postgres_only

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 50


def run_concurrently(count, fn):
    barrier = threading.Barrier(count)

    def worker(i):
        try:
            barrier.wait(timeout=30)
            return fn(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))


@pytest.fixture
def approved_token(live_workspace, agent, make_tool, make_member):
    postgres_only()
    key, _ = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    answer = action_submit(
        key=key, tool_name="crm.update_stage", params={"deal": 1}, actor=Actor.for_key(key)
    )
    confirmation = ConfirmationRequest.objects.get()
    confirmation_approve(
        confirmation=confirmation,
        reason="fine",
        actor=Actor.for_user(make_member(live_workspace, Role.APPROVER)),
    )
    return key, answer.confirmation_token


def test_fifty_concurrent_confirms_allow_exactly_once(approved_token):
    key, token = approved_token

    def confirm(_):
        fresh = MachineKey.objects.select_related("workspace", "owner").get(pk=key.pk)
        try:
            answer = action_submit(
                key=fresh,
                tool_name="crm.update_stage",
                params={"deal": 1},
                actor=Actor.for_key(fresh),
                confirmed=True,
                confirmation_token=token,
            )
            return "allowed" if answer.allowed else f"outcome {answer.kind}"
        except WardenError as exc:
            return exc.code

    results = run_concurrently(THREADS, confirm)
    assert results.count("allowed") == 1, results
    assert set(results) == {"allowed", "confirmation_used"}
    assert ConfirmationRequest.objects.get().status == "used"


def test_concurrent_approve_and_deny_yield_one_decision(
    live_workspace, agent, make_tool, make_member
):
    postgres_only()
    key, _ = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    action_submit(key=key, tool_name="crm.update_stage", params={}, actor=Actor.for_key(key))
    confirmation = ConfirmationRequest.objects.get()
    humans = [make_member(live_workspace, Role.APPROVER) for _ in range(10)]

    def decide(i):
        verdict = confirmation_approve if i % 2 else confirmation_deny
        try:
            verdict(confirmation=confirmation, reason=f"r{i}", actor=Actor.for_user(humans[i]))
            return "decided"
        except WardenError as exc:
            return exc.code

    results = run_concurrently(len(humans), decide)
    assert results.count("decided") == 1, results
    assert set(results) == {"decided", "already_decided"}
    assert ApprovalRecord.objects.count() == 1
    final = ConfirmationRequest.objects.get()
    assert final.status in {"approved", "denied"}
    assert (
        final.status
        == {"approve": "approved", "deny": "denied"}[ApprovalRecord.objects.get().verdict]
    )


def test_concurrent_first_calls_with_one_idempotency_key_record_once(
    live_workspace, agent, make_tool
):
    postgres_only()
    from approvals.models import ActionRequest

    key, _ = agent
    make_tool(live_workspace, "crm.lookup")

    def call(_):
        fresh = MachineKey.objects.select_related("workspace", "owner").get(pk=key.pk)
        answer = action_submit(
            key=fresh,
            tool_name="crm.lookup",
            params={},
            actor=Actor.for_key(fresh),
            idempotency_key="same",
        )
        return answer.kind, answer.action_id

    results = run_concurrently(10, call)
    assert len(set(results)) == 1, results
    assert ActionRequest.objects.count() == 1
    assert connection.vendor == "postgresql"


def test_identical_calls_at_once_file_one_request(live_workspace, agent, make_tool):
    """Two (here eight) identical calls racing: one request, one confirmation, and every
    caller is answered with it."""
    postgres_only()
    key, _ = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")

    def ask(_):
        fresh = MachineKey.objects.select_related("workspace", "owner").get(pk=key.pk)
        return action_submit(
            key=fresh, tool_name="crm.update_stage", params={"deal": 1}, actor=Actor.for_key(fresh)
        )

    answers = run_concurrently(8, ask)
    assert all(answer.pending for answer in answers)
    assert len({answer.action_id for answer in answers}) == 1
    assert ConfirmationRequest.objects.count() == 1
    assert ActionRequest.objects.filter(key=key).count() == 1
