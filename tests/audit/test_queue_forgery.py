"""The group-commit queue cannot be forged (issue 21 item 6; README "Evidence: threat
model"). Found on main: a database role with only INSERT on audit_auditpending inserted
a backdated `confirmation.approved` by another user, the next audited write chained it
with a valid entry MAC, and audit_verify said "ok". Every queued row now carries a MAC
the database cannot make; the sealer chains only rows whose MAC verifies, quarantines
the others and records that, and audit_verify reports both the queue and the
quarantine."""

import io
import json
from datetime import timedelta
from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from audit import signing
from audit.chain import pending_message
from audit.models import (
    AuditChainHead,
    AuditCheckpoint,
    AuditEntry,
    AuditPending,
    AuditQuarantine,
    ExceptionRecord,
)
from audit.services import audit_seal_pending, exception_resolve
from audit.verify import FORGED_QUEUED, QUARANTINED_QUEUED, verify_chain
from tests.audit.helpers import (
    FORGED_ACTOR,
    HUMAN,
    append,
    forge_queue_row,
    on_postgres,
    queued_row,
    raw_sql,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(workspace):
    append(workspace, 3)
    return workspace


def _head_seq(workspace) -> int:
    return AuditChainHead.objects.get(workspace=workspace).seq


def _next_write(workspace):
    return append(workspace, 1, actor=HUMAN)[0]


def _forged_in_chain(workspace) -> bool:
    return AuditEntry.objects.filter(workspace=workspace, actor=FORGED_ACTOR).exists()


def _verify_command(workspace, *args):
    out = io.StringIO()
    call_command("audit_verify", workspace.slug, "--no-record", *args, stdout=out)
    return out.getvalue()


# --- the attack of the issue ------------------------------------------------------------


@pytest.mark.parametrize("mac", ["", "a" * 64], ids=["no-mac", "guessed-mac"])
def test_a_row_inserted_into_the_queue_is_quarantined_not_chained(chain, mac):
    forge_queue_row(chain, mac=mac)
    entry = _next_write(chain)

    assert not _forged_in_chain(chain)
    assert not AuditPending.objects.filter(workspace=chain).exists()  # never retried
    [kept] = AuditQuarantine.objects.filter(workspace=chain)
    assert (kept.source, kept.seq) == ("pending", None)
    assert kept.reason == ("mac_missing" if not mac else "mac_mismatch")
    assert kept.row["actor"] == FORGED_ACTOR and kept.row["action"] == "confirmation.approved"

    record = ExceptionRecord.objects.get(workspace=chain, kind="queue_forged")
    assert record.severity == "high"
    assert record.evidence["quarantine_ids"] == [kept.pk]
    [named] = record.evidence["quarantined"]
    assert named["reason"] == kept.reason and len(named["sha256"]) == 64
    # Nothing the row claims enters the chain as if it were genuine: a digest only.
    said = json.dumps([record.evidence, record.audit_entry.input, record.what, record.why])
    assert "boss" not in said and "50000" not in said and "refund" not in said
    # The write itself went on, after the record of the discovery.
    assert entry.seq == record.audit_entry.seq + 1


def test_audit_verify_reports_the_quarantined_row_and_fails_until_it_is_resolved(chain):
    forge_queue_row(chain)
    _next_write(chain)
    record = ExceptionRecord.objects.get(workspace=chain, kind="queue_forged")

    result = verify_chain(chain)
    assert (result.ok, result.problem) == (False, QUARANTINED_QUEUED)
    assert result.first_bad_seq == record.audit_entry.seq
    assert f"exception record {record.pk} is open" in result.detail
    with pytest.raises(CommandError, match="quarantined queue row"):
        _verify_command(chain)

    with transaction.atomic():
        exception_resolve(record=record, actor=HUMAN, reason="forged by a DBA; access revoked")
    result = verify_chain(chain)
    assert result.ok, result
    assert result.quarantined == 1
    assert "1 row(s) in quarantine" in _verify_command(chain)


def test_audit_verify_itself_quarantines_a_forged_row_and_exits_non_zero(chain):
    forge_queue_row(chain)
    with pytest.raises(CommandError, match="quarantined queue row"):
        call_command("audit_verify", chain.slug, stdout=io.StringIO())
    assert not _forged_in_chain(chain)
    assert ExceptionRecord.objects.filter(workspace=chain, kind="queue_forged").exists()
    assert ExceptionRecord.objects.filter(workspace=chain, kind="chain_broken").exists()


def test_a_forged_row_in_a_chain_without_a_head_is_quarantined_on_its_first_write(workspace):
    """No chain yet: the first append creates the head, then finds the queue row."""
    forge_queue_row(workspace)
    append(workspace, 1)
    assert not _forged_in_chain(workspace)
    assert AuditQuarantine.objects.filter(workspace=workspace, source="pending").count() == 1


# --- genuine rows still chain -----------------------------------------------------------


def test_a_genuine_queued_entry_is_chained(chain):
    queued = queued_row(chain, actor="key:left", client_ip="2001:db8::1", policy_version=4)
    entry = _next_write(chain)
    sealed = AuditEntry.objects.get(workspace=chain, actor="key:left")
    assert sealed.seq == entry.seq - 1
    assert (sealed.created_at, sealed.input, sealed.client_ip) == (
        queued.created_at,
        queued.input,
        "2001:db8::1",
    )
    assert not AuditQuarantine.objects.filter(workspace=chain).exists()
    assert not ExceptionRecord.objects.filter(workspace=chain, kind="queue_forged").exists()
    assert verify_chain(chain).ok


def test_genuine_rows_around_a_forged_one_are_chained_in_order(chain):
    head = _head_seq(chain)
    queued_row(chain, actor="key:first")
    forge_queue_row(chain)
    queued_row(chain, actor="key:second")
    assert audit_seal_pending(chain) == 3  # two entries and the exception record
    actors = list(
        AuditEntry.objects.filter(workspace=chain, seq__gt=head)
        .order_by("seq")
        .values_list("actor", flat=True)
    )
    assert actors == ["key:first", "key:second", "system:audit"]
    assert not _forged_in_chain(chain)


# --- any single column changed ----------------------------------------------------------

TAMPERED = {
    "created_at": lambda row: row.created_at - timedelta(days=1),
    "actor": lambda row: FORGED_ACTOR,
    "actor_type": lambda row: "user",
    "action": lambda row: "confirmation.approved",
    "target_type": lambda row: "confirmation",
    "target_id": lambda row: "other",
    "tool": lambda row: "payments.refund",
    "input": lambda row: {**row.input, "params": {"amount": 99999}},
    "decision": lambda row: "denied",
    "rationale": lambda row: "looks fine",
    "policy_version": lambda row: 7,
    "request_id": lambda row: "r-forged",
    "client_ip": lambda row: "10.9.9.9",
    "outcome": lambda row: "denied",
}


def _update_behind_the_guard(pk, **values):
    """An UPDATE of a queued row with the queue's guard switched off, as its owner can."""
    if connection.vendor == "postgresql":
        raw_sql("SET CONSTRAINTS ALL IMMEDIATE")
        raw_sql("ALTER TABLE audit_auditpending DISABLE TRIGGER USER")
    try:
        AuditPending.objects.filter(pk=pk).update(**values)
    finally:
        if connection.vendor == "postgresql":
            raw_sql("ALTER TABLE audit_auditpending ENABLE TRIGGER USER")
            raw_sql("SET CONSTRAINTS ALL DEFERRED")


@pytest.mark.parametrize("column", [*TAMPERED, "workspace"])
def test_changing_any_single_column_of_a_queued_row_is_caught(chain, make_workspace, column):
    queued = queued_row(chain, actor="key:genuine")
    target = chain
    if column == "workspace":  # moved into another workspace's queue, MAC and all
        target = make_workspace()
        append(target, 1)
        _update_behind_the_guard(queued.pk, workspace=target)
    else:
        _update_behind_the_guard(queued.pk, **{column: TAMPERED[column](queued)})

    audit_seal_pending(target)

    assert not AuditEntry.objects.filter(workspace=target, seq__gt=1, actor="key:genuine").exists()
    assert not AuditEntry.objects.filter(workspace=target, actor=FORGED_ACTOR).exists()
    [kept] = AuditQuarantine.objects.filter(workspace=target, source="pending")
    assert kept.reason == "mac_mismatch"
    assert ExceptionRecord.objects.filter(workspace=target, kind="queue_forged").exists()


# --- replays ----------------------------------------------------------------------------


def _copy_of(row: AuditPending):
    """The same row inserted again, its genuine MAC included."""
    values = {f.attname: getattr(row, f.attname) for f in AuditPending._meta.concrete_fields}
    values.pop("id")
    return AuditPending.objects.create(**values)


def test_a_copy_of_a_queued_row_is_chained_once(chain):
    genuine = queued_row(chain, actor="key:once")
    _copy_of(genuine)
    audit_seal_pending(chain)
    assert AuditEntry.objects.filter(workspace=chain, actor="key:once").count() == 1
    [kept] = AuditQuarantine.objects.filter(workspace=chain)
    assert kept.reason == "replayed"


def test_a_queued_row_replayed_after_it_was_chained_is_quarantined(chain):
    genuine = queued_row(chain, actor="key:once")
    copy = {f.attname: getattr(genuine, f.attname) for f in AuditPending._meta.concrete_fields}
    audit_seal_pending(chain)
    copy.pop("id")
    AuditPending.objects.create(**copy)  # seen in the queue earlier, inserted again
    audit_seal_pending(chain)
    assert AuditEntry.objects.filter(workspace=chain, actor="key:once").count() == 1
    assert AuditQuarantine.objects.get(workspace=chain).reason == "replayed"
    record = ExceptionRecord.objects.get(workspace=chain, kind="queue_forged")
    with transaction.atomic():
        exception_resolve(record=record, actor=HUMAN, reason="replay; investigated")
    assert verify_chain(chain).ok  # its twin is in the chain: nothing was suppressed


# --- verify and the waiting tail --------------------------------------------------------


def test_verify_reports_a_valid_queued_tail_as_pending_with_its_age(chain):
    queued_row(chain, created_at=timezone.now() - timedelta(seconds=30))
    queued_row(chain)
    result = verify_chain(chain)
    assert result.ok, result
    assert result.pending == 2
    assert 30 <= result.pending_age_seconds < 300
    assert result.as_dict()["pending"] == 2
    out = _verify_command(chain, "--no-seal")
    assert "2 queued entries valid, pending (oldest 3" in out
    assert AuditPending.objects.filter(workspace=chain).count() == 2  # read only


def test_verify_fails_on_a_queued_row_without_a_valid_mac(chain):
    queued_row(chain)
    forge_queue_row(chain)
    result = verify_chain(chain)
    assert (result.ok, result.problem) == (False, FORGED_QUEUED)
    assert result.first_bad_seq == _head_seq(chain) + 1  # where it would have been chained
    assert "has no queue MAC" in result.detail
    with pytest.raises(CommandError, match="forged queued entry"):
        _verify_command(chain, "--no-seal")
    assert AuditPending.objects.filter(workspace=chain).count() == 2  # nothing sealed


def test_checkpoints_are_not_held_back_by_a_quarantined_queue_row(chain, settings):
    """The chain itself is intact: the open exception must not stop signing."""
    settings.WARDEN_AUDIT_CHECKPOINT_EVERY = 2
    forge_queue_row(chain)
    append(chain, 3)
    record = ExceptionRecord.objects.get(workspace=chain, kind="queue_forged")
    assert not verify_chain(chain).ok  # the open record
    assert verify_chain(chain, tail_only=True).ok
    signed = AuditCheckpoint.objects.filter(workspace=chain, seq__gt=record.audit_entry.seq)
    assert signed.exists()


@on_postgres
def test_a_genuine_row_moved_to_quarantine_by_hand_fails_verification(chain):
    """The quarantine function is a door out of the queue: a genuine entry pushed
    through it directly (no sealer, no exception record) is named, as its MAC verifies."""
    queued = queued_row(chain, actor="key:genuine")
    raw_sql(
        "SELECT warden_audit_pending_quarantine(%s, %s::bigint[], %s::text[], now())",
        [chain.pk, [queued.pk], ["mac_mismatch"]],
    )
    assert not AuditPending.objects.filter(pk=queued.pk).exists()
    result = verify_chain(chain)
    assert (result.ok, result.problem) == (False, QUARANTINED_QUEUED)
    assert "holds a genuine queued entry" in result.detail


@on_postgres
def test_a_forged_row_quarantined_without_an_exception_record_fails_verification(chain):
    forge_queue_row(chain)
    [pk] = AuditPending.objects.filter(workspace=chain).values_list("pk", flat=True)
    raw_sql(
        "SELECT warden_audit_pending_quarantine(%s, %s::bigint[], %s::text[], now())",
        [chain.pk, [pk], ["mac_missing"]],
    )
    result = verify_chain(chain)
    assert (result.ok, result.problem) == (False, QUARANTINED_QUEUED)
    assert "no exception record names it" in result.detail


# --- migration 0011: rows waiting when it runs ------------------------------------------


def test_the_migration_macs_rows_the_application_left_queued(chain):
    left = queued_row(chain, actor="key:before-the-column")
    _update_behind_the_guard(left.pk, mac="")  # as written before the column existed
    migration = import_module("audit.migrations.0011_pending_mac_quarantine")
    if connection.vendor == "postgresql":  # as at the start of a migration: nothing deferred
        raw_sql("SET CONSTRAINTS ALL IMMEDIATE")
    migration.mac_waiting_rows(apps, SimpleNamespace(connection=connection))
    left.refresh_from_db()
    values = {name: getattr(left, name) for name in (
        "created_at", "actor", "actor_type", "action", "target_type", "target_id", "tool",
        "input", "decision", "rationale", "policy_version", "request_id", "client_ip",
        "outcome")}  # fmt: skip
    assert left.mac == signing.pending_mac(pending_message(chain.pk, values))
    audit_seal_pending(chain)
    assert AuditEntry.objects.filter(workspace=chain, actor="key:before-the-column").exists()
    assert not AuditQuarantine.objects.filter(workspace=chain).exists()
    assert verify_chain(chain).ok


def test_a_forged_row_does_not_block_the_sealer_thread_path(chain):
    """audit_seal_pending (the sealer thread's call) commits the quarantine and the
    record, so the row is not retried on every later append."""
    forge_queue_row(chain)
    assert audit_seal_pending(chain) == 1  # the exception record's entry
    assert audit_seal_pending(chain) == 0
    record = ExceptionRecord.objects.get(workspace=chain, kind="queue_forged")
    assert record.audit_entry.actor == "system:audit"
