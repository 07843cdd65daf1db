"""Shared helpers for the evidence tests."""

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit import signing
from audit.chain import PENDING_FIELDS, pending_message
from audit.events import EVENTS, TargetType
from audit.models import AuditAction, AuditChainHead, AuditPending
from audit.services import audit_record
from common.actor import Actor

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (triggers, row locks)"
)
AGENT = Actor("key:00000000-0000-0000-0000-0000000000aa", client_ip="10.0.0.7", request_id="r-1")
HUMAN = Actor("user:alice@example.test", client_ip="2001:DB8::1", request_id="r-2")


def append(workspace, n=1, actor=AGENT, **fields):
    entries = []
    for i in range(n):
        with transaction.atomic():
            event = EVENTS[fields.get("action", AuditAction.ACTION_DECIDED)].event(
                target_type=fields.get("target_type", TargetType.ACTION_REQUEST),
                tool=fields.get("tool", "crm.read"),
                input=fields.get("input", {"params": {"i": i, "q": "é ☃", "n": 1.5}}),
                decision=fields.get("decision", "allowed"),
                rationale=fields.get("rationale", "allowlist"),
                policy_version=fields.get("policy_version", 3),
                outcome=fields.get("outcome", "allowed"),
            )
            entries.append(audit_record(event, workspace=workspace, actor=actor))
    return entries


def raw_sql(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def tamper(sql, params=(), table="audit_auditentry"):
    """Raw SQL on an audit table behind its triggers' back, as an attacker with
    table-owner (or superuser) rights could (SQLite has no trigger to disable)."""
    if connection.vendor == "postgresql":
        raw_sql("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER may run
        raw_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        raw_sql(sql, params)
    finally:
        if connection.vendor == "postgresql":
            raw_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            raw_sql("SET CONSTRAINTS ALL DEFERRED")


def db_id(workspace) -> str:
    """The workspace id as raw SQL sees it (SQLite stores UUIDs as bare hex)."""
    return str(workspace.pk) if connection.vendor == "postgresql" else workspace.pk.hex


def swap_seq(workspace, a, b):
    ws = db_id(workspace)
    tamper(
        "UPDATE audit_auditentry SET seq = 999999999 WHERE workspace_id = %s AND seq = %s", [ws, a]
    )
    tamper("UPDATE audit_auditentry SET seq = %s WHERE workspace_id = %s AND seq = %s", [a, ws, b])
    tamper(
        "UPDATE audit_auditentry SET seq = %s WHERE workspace_id = %s AND seq = 999999999", [b, ws]
    )


def hold_chain_head(workspace, release: threading.Event, held: threading.Event):
    """Another transaction holding the chain head until `release` (a slow writer)."""

    def run():
        try:
            with transaction.atomic():
                AuditChainHead.objects.select_for_update().get(workspace=workspace)
                held.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(timeout=30)
    return thread


def queued_row(workspace, **fields) -> AuditPending:
    """A genuine entry waiting in the group-commit queue, as the application writes it
    when the chain head is busy (a process stopped before sealing leaves such rows):
    its queue MAC made with the server's key, over values in the form the database
    gives back."""
    values = {
        "created_at": timezone.now(),
        "actor": "key:queued",
        "actor_type": "key",
        "action": "action.decided",
        "target_type": "action_request",
        "target_id": "queued",
        "tool": "crm.lookup",
        "input": {"params": {"amount": 12.5}, "reason": "", "dry_run": False},
        "decision": "allowed",
        "rationale": "",
        "policy_version": None,
        "request_id": "",
        "client_ip": None,
        "outcome": "allowed",
        **fields,
    }
    mac = signing.pending_mac(pending_message(workspace.pk, values))
    assert set(values) == set(PENDING_FIELDS[1:])
    return AuditPending.objects.create(workspace=workspace, mac=mac, **values)


FORGED_ACTOR = "user:boss@example.test"
COLUMNS = (
    "workspace_id, created_at, actor, actor_type, action, target_type, target_id, tool,"
    " input, decision, rationale, policy_version, request_id, client_ip, outcome, mac"
)
INSERT = f"INSERT INTO audit_auditpending ({COLUMNS}) VALUES ({', '.join(['%s'] * 16)})"


def _insert_only_role():
    """A PostgreSQL role holding nothing but INSERT on the queue (and its id sequence):
    what the attacker had. Rolled back with the test's transaction."""
    name = f"queue_writer_{uuid.uuid4().hex[:12]}"
    raw_sql(f"CREATE ROLE {name} NOLOGIN")
    raw_sql(f"GRANT USAGE ON SCHEMA public TO {name}")
    raw_sql(f"GRANT INSERT ON audit_auditpending TO {name}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('audit_auditpending', 'id')")
        sequence = cursor.fetchone()[0]
    raw_sql(f"GRANT USAGE ON SEQUENCE {sequence} TO {name}")
    return name


def forge_queue_row(
    workspace, *, mac="", action="confirmation.approved", created_at=None, **fields
):
    """A backdated approval by another user, inserted straight into the queue with raw
    SQL: on PostgreSQL by a role that may only INSERT there."""
    values = {
        "workspace_id": db_id(workspace),
        "created_at": created_at or timezone.now() - timedelta(days=2),
        "actor": FORGED_ACTOR,
        "actor_type": "user",
        "action": action,
        "target_type": "confirmation",
        "target_id": "42",
        "tool": "payments.refund",
        "input": json.dumps({"approver": FORGED_ACTOR, "amount": 50000}),
        "decision": "approved",
        "rationale": "approved by boss",
        "policy_version": 3,
        "request_id": "r-forged",
        "client_ip": None,
        "outcome": "approved",
        "mac": mac,
        **fields,
    }
    role = _insert_only_role() if connection.vendor == "postgresql" else None
    if role:
        raw_sql(f"SET ROLE {role}")
    try:
        raw_sql(INSERT, list(values.values()))
    finally:
        if role:
            raw_sql("RESET ROLE")
