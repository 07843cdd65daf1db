"""Concurrent writers to one chain, with real threads and connections on PostgreSQL:
the head row lock serializes them, so the chain neither forks nor skips a number."""

import itertools
import threading

import pytest
from django.db import connection, transaction

from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from audit.verify import verify_chain
from common.actor import Actor
from tests.audit.helpers import on_postgres

pytestmark = [on_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8
PER_THREAD = 25


def _run_writers(workspaces, per_thread=PER_THREAD, threads=THREADS):
    barrier = threading.Barrier(threads)
    errors = []

    def writer(n):
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                workspace = workspaces[(n + i) % len(workspaces)]
                with transaction.atomic():
                    event = EVENTS[AuditAction.ACTION_DECIDED].event(
                        tool="crm.read", input={"params": {"writer": n, "i": i}}, decision="allowed"
                    )
                    audit_record(event, workspace=workspace, actor=Actor(f"key:writer-{n}"))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not errors, errors


def _assert_linear(workspace):
    rows = list(
        AuditEntry.objects.filter(workspace=workspace)
        .order_by("seq")
        .values_list("seq", "prev_hash", "hash")
    )
    assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1))  # no gap
    prevs = [prev for _, prev, _ in rows]
    assert len(set(prevs)) == len(prevs)  # no fork: no two entries share a parent
    for (_, _, parent_hash), (_, prev, _) in itertools.pairwise(rows):
        assert prev == parent_hash
    return rows


def test_concurrent_writers_to_one_chain_neither_fork_nor_gap(make_workspace):
    workspace = make_workspace()
    before = AuditEntry.objects.filter(workspace=workspace).count()
    _run_writers([workspace])
    rows = _assert_linear(workspace)
    assert len(rows) == before + THREADS * PER_THREAD
    assert verify_chain(workspace).ok


def test_concurrent_writers_across_workspaces_keep_every_chain_linear(make_workspace):
    workspaces = [make_workspace() for _ in range(3)]
    _run_writers(workspaces)
    for workspace in workspaces:
        _assert_linear(workspace)
        assert verify_chain(workspace).ok


def test_verify_during_concurrent_appends_sees_a_consistent_chain(make_workspace):
    workspace = make_workspace()
    verdicts = []
    stop = threading.Event()

    def verifier():
        try:
            while not stop.is_set():
                verdicts.append(verify_chain(workspace, chunk_size=7))
        finally:
            connection.close()

    thread = threading.Thread(target=verifier)
    thread.start()
    try:
        _run_writers([workspace], per_thread=10, threads=4)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert verdicts
    assert all(v.ok for v in verdicts), [v for v in verdicts if not v.ok][:1]
