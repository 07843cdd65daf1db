"""MCP tasks under real concurrency (PostgreSQL; row locks are no-ops on SQLite): many
polls of an approved task run it once; a cancel racing the polls either withdraws it
(nothing runs) or comes too late (it ran once), never both."""

import pytest
from django.db import connections

from approvals.asking import action_submit
from approvals.confirmations import confirmation_approve
from approvals.models import ConfirmationRequest
from common.actor import Actor
from common.errors import WardenError
from gateway import mcp_tasks
from keys.models import MachineKey
from tenants.models import Role
from tests.approvals.conftest import postgres_only
from tests.approvals.test_concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


@pytest.fixture
def approved_task(synced, gw_workspace, gw_agent, make_member):
    postgres_only()
    key, _, _ = gw_agent
    answer = action_submit(
        key=key, tool_name="crm.send", params={"to": "bob"}, actor=Actor.for_key(key)
    )
    assert answer.pending
    confirmation = ConfirmationRequest.objects.get()
    confirmation_approve(
        confirmation=confirmation,
        reason="fine",
        actor=Actor.for_user(make_member(gw_workspace, Role.APPROVER)),
    )
    return key, answer.action_id


def _fresh_key(key):
    return MachineKey.objects.select_related("workspace", "owner").get(pk=key.pk)


def test_concurrent_polls_run_an_approved_task_once(approved_task, upstream):
    key, task_id = approved_task

    def poll(_):
        fresh = _fresh_key(key)
        action = mcp_tasks.task_find(key=fresh, task_id=task_id)
        return mcp_tasks.task_state(key=fresh, actor=Actor.for_key(fresh), action=action).status

    statuses = run_concurrently(THREADS, poll)
    assert set(statuses) <= {"working", "completed"}, statuses
    assert upstream.tool_calls() == [("send", {"to": "bob"})]
    action = mcp_tasks.task_find(key=key, task_id=task_id)
    assert mcp_tasks.task_state(key=key, actor=Actor.for_key(key), action=action).status == (
        "completed"
    )


def test_cancel_racing_polls_is_one_outcome(approved_task, upstream):
    key, task_id = approved_task

    def act(i):
        fresh = _fresh_key(key)
        action = mcp_tasks.task_find(key=fresh, task_id=task_id)
        actor = Actor.for_key(fresh)
        if i == 0:
            try:
                return mcp_tasks.task_cancel(key=fresh, actor=actor, action=action).status
            except WardenError as error:
                return error.code
        return mcp_tasks.task_state(key=fresh, actor=actor, action=action).status

    run_concurrently(THREADS, act)
    connections.close_all()
    action = mcp_tasks.task_find(key=key, task_id=task_id)
    final = mcp_tasks.task_state(key=key, actor=Actor.for_key(key), action=action).status
    if final == "cancelled":
        assert upstream.tool_calls() == []
    else:
        assert final == "completed"
        assert upstream.tool_calls() == [("send", {"to": "bob"})]
