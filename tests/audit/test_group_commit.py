"""Group commit of chain appends (README "Contention"): with real threads and
connections on PostgreSQL. A decision that finds its workspace's chain head held by
another transaction does not wait for that commit: its entry is committed with the
decision into the queue (AuditPending) and sealed into the chain right after, in
queue order, so the chain stays strictly ordered and verifiable."""

import io
import json
import threading
import time

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from approvals.asking import action_submit
from approvals.models import ActionRequest
from audit import services
from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry, AuditPending
from audit.services import audit_record, audit_seal_pending, seal_wait_idle
from audit.verify import verify_chain
from common.actor import Actor
from oversight.replay import replay_action
from tests.audit.helpers import hold_chain_head, on_postgres, queued_row, raw_sql
from tests.audit.test_concurrency import _assert_linear

pytestmark = [on_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

VERIFIED = EVENTS[AuditAction.AUDIT_VERIFIED].event()
CLIENTS = 8
PER_CLIENT = 10


@pytest.fixture
def agents(workspace, make_key, operator_seeded):
    from approvals.catalog import tool_create
    from tests.conftest import SYSTEM

    tool_create(
        reason="test set-up", workspace=workspace, actor=SYSTEM, name="crm.lookup", level="read"
    )
    return [make_key(workspace, tools=("crm.*",))[0] for _ in range(CLIENTS)]


def _decide(keys, per_client=PER_CLIENT):
    """Each key decides `per_client` times from its own thread; returns the answers."""
    answers, errors = [], []
    barrier = threading.Barrier(len(keys))

    def client(key):
        try:
            key = type(key).objects.select_related("workspace", "owner").get(pk=key.pk)
            actor = Actor.for_key(key, request_id="r", client_ip="10.0.0.1")
            barrier.wait(timeout=30)
            for i in range(per_client):
                answers.append(
                    action_submit(key=key, tool_name="crm.lookup", params={"i": i}, actor=actor)
                )
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=client, args=(key,)) for key in keys]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not errors, errors
    return answers


def test_eight_clients_in_one_workspace_keep_the_chain_linear_and_verifiable(workspace, agents):
    before = AuditEntry.objects.filter(workspace=workspace).count()
    answers = _decide(agents)
    assert all(answer.allowed for answer in answers)
    assert seal_wait_idle()
    assert not AuditPending.objects.filter(workspace=workspace).exists()
    rows = _assert_linear(workspace)
    assert len(rows) == before + CLIENTS * PER_CLIENT
    decided = AuditEntry.objects.filter(workspace=workspace, action="action.decided")
    assert set(decided.values_list("target_id", flat=True)) == {
        answer.action_id for answer in answers
    }
    assert verify_chain(workspace).ok


def test_a_busy_head_does_not_hold_the_decision_back(workspace, agents):
    """While another transaction holds the head, decisions answer anyway: decision and
    entry are committed (visible to another connection), queued; once the holder lets
    go, they are sealed in the order they were queued."""
    release, held = threading.Event(), threading.Event()
    holder = hold_chain_head(workspace, release, held)
    try:
        started = time.monotonic()
        answers = _decide(agents[:4], per_client=3)
        assert time.monotonic() - started < 20  # the lock wait would be 10 s per call
        assert all(answer.allowed for answer in answers)
        ids = {answer.action_id for answer in answers}
        queued = list(AuditPending.objects.filter(workspace=workspace).order_by("id"))
        assert {row.target_id for row in queued} == ids  # committed, not yet chained
        assert ActionRequest.objects.filter(pk__in=ids).count() == len(ids)
    finally:
        release.set()
        holder.join(timeout=30)
    assert seal_wait_idle()
    assert not AuditPending.objects.filter(workspace=workspace).exists()
    chained = list(
        AuditEntry.objects.filter(workspace=workspace, target_id__in=ids)
        .order_by("seq")
        .values_list("target_id", "created_at", "input", "request_id", "client_ip")
    )
    assert [row[0] for row in chained] == [row.target_id for row in queued]  # queue order
    assert [row[1:] for row in chained] == [
        (row.created_at, row.input, row.request_id, row.client_ip) for row in queued
    ]
    _assert_linear(workspace)
    assert verify_chain(workspace).ok


def test_entries_left_queued_are_sealed_before_the_next_append(workspace):
    """A process stopped between commit and seal leaves entries queued: the next append
    to the chain seals them first, in queue order (causal order), then itself."""

    left = [
        queued_row(
            workspace,
            actor=f"key:left-{n}",
            target_id=f"left-{n}",
            input={"params": {"n": n, "s": "é ☃"}, "reason": "", "dry_run": False},
            rationale="allowlist: fine",
            policy_version=2,
            request_id=f"r{n}",
            client_ip="2001:db8::1",
        )
        for n in range(3)
    ]
    with transaction.atomic():
        last = audit_record(VERIFIED, workspace=workspace, actor=Actor.system("t"))
    assert not AuditPending.objects.filter(workspace=workspace).exists()
    sealed = list(
        AuditEntry.objects.filter(workspace=workspace, target_id__startswith="left-")
        .order_by("seq")
        .values_list("seq", "target_id", "input", "client_ip")
    )
    assert [row[1] for row in sealed] == [row.target_id for row in left]
    assert [row[0] for row in sealed] == [last.seq - 3, last.seq - 2, last.seq - 1]
    assert sealed[0][2] == left[0].input and sealed[0][3] == "2001:db8::1"
    assert audit_seal_pending(workspace) == 0
    _assert_linear(workspace)
    assert verify_chain(workspace).ok


def test_export_and_replay_stay_exact_under_group_commit(workspace, agents):
    answers = _decide(agents[:4], per_client=5)
    out = io.StringIO()
    call_command("audit_export", workspace.slug, "--no-record", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    exported = {line["target_id"] for line in lines if line["action"] == "action.decided"}
    assert {a.action_id for a in answers} <= exported
    report = replay_action(answers[0].action.pk)
    assert report.then.outcome == report.now.outcome == "allowed"
    assert report.matches_record and not report.changed


def _queued(workspace, n: int = 0) -> AuditPending:
    return queued_row(
        workspace,
        actor=f"key:queued-{n}",
        target_id=f"queued-{n}",
        input={"params": {"n": n, "amount": 12.5}, "reason": "", "dry_run": False},
        request_id=f"q{n}",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM audit_auditpending WHERE workspace_id = %s",
        "UPDATE audit_auditpending SET decision = 'denied' WHERE workspace_id = %s",
    ],
    ids=["delete", "update"],
)
def test_a_queued_entry_cannot_be_removed_or_edited_before_it_is_chained(workspace, sql):
    """Migration audit 0009: the queue is evidence already; a session with table
    privileges cannot make a committed decision's entry disappear before sealing."""
    queued = _queued(workspace)
    with pytest.raises(IntegrityError, match="leave only by being chained"), transaction.atomic():
        raw_sql(sql, [workspace.pk])
    assert AuditPending.objects.filter(pk=queued.pk, decision="allowed").exists()
    # Sealing (chain first, then off the queue) still works, and the chain verifies.
    with transaction.atomic():
        audit_record(VERIFIED, workspace=workspace, actor=Actor.system("t"))
    assert not AuditPending.objects.filter(workspace=workspace).exists()
    assert AuditEntry.objects.filter(workspace=workspace, target_id="queued-0").count() == 1
    assert verify_chain(workspace).ok


def test_the_queue_refuses_truncate(workspace):
    """(Only the test database switches this statement trigger off, for teardown.)"""
    _queued(workspace)
    with pytest.raises(IntegrityError, match="TRUNCATE refused"), transaction.atomic():
        raw_sql("ALTER TABLE audit_auditpending ENABLE TRIGGER audit_auditpending_no_truncate")
        raw_sql("TRUNCATE audit_auditpending")
    assert AuditPending.objects.filter(workspace=workspace).exists()


def test_a_queued_decision_costs_two_statements_then_one(
    workspace, agents, django_assert_max_num_queries
):
    """Statement budget of the queued path: the first decision to find the head busy
    learns it in the head-lock statement and queues in one more; while the head is
    known busy, the queue insert rides in the head-lock statement itself. Neither waits
    for the holder (the head stays held throughout)."""
    services._busy_at.pop(workspace.pk, None)
    key = type(agents[0]).objects.select_related("workspace", "owner").get(pk=agents[0].pk)
    actor = Actor.for_key(key)
    action_submit(key=key, tool_name="crm.lookup", params={}, actor=actor)  # warm the caches
    release, held = threading.Event(), threading.Event()
    holder = hold_chain_head(workspace, release, held)
    try:
        with django_assert_max_num_queries(2 + 3) as first:  # + BEGIN, COMMIT, the key read
            action_submit(key=key, tool_name="crm.lookup", params={"n": 1}, actor=actor)
        with django_assert_max_num_queries(1 + 3) as known:
            action_submit(key=key, tool_name="crm.lookup", params={"n": 2}, actor=actor)
        assert AuditPending.objects.filter(workspace=workspace).count() == 2
    finally:
        release.set()
        holder.join(timeout=30)
    writes = [q["sql"] for q in first.captured_queries if "audit_auditpending" in q["sql"]]
    assert [sql.startswith("WITH inserted AS") for sql in writes] == [True, False]
    writes = [q["sql"] for q in known.captured_queries if "audit_auditpending" in q["sql"]]
    assert len(writes) == 1 and "queued AS (INSERT INTO" in writes[0]
    assert seal_wait_idle()
    assert verify_chain(workspace).ok
