"""Evidence cannot be changed or removed: by the model, and on PostgreSQL by a trigger
that holds even against raw SQL."""

import pytest
from django.db import IntegrityError, connection, transaction

from audit.models import (
    AppendOnlyError,
    AuditChainHead,
    AuditCheckpoint,
    AuditEntry,
    AuditQuarantine,
    ExceptionRecord,
    VersionLog,
)
from audit.services import checkpoint_create, exception_record, exception_resolve
from audit.verify import HASH_MISMATCH, verify_chain
from tests.audit.helpers import AGENT, HUMAN, append, db_id, on_postgres, raw_sql
from tests.conftest import AUDIT_TRUNCATE_GUARDS


def test_model_refuses_to_update_an_entry(workspace):
    [entry] = append(workspace)
    entry.actor = "user:mallory@example.test"
    with pytest.raises(AppendOnlyError):
        entry.save()


def test_model_refuses_to_delete_an_entry(workspace):
    [entry] = append(workspace)
    with pytest.raises(AppendOnlyError):
        entry.delete()


def test_querysets_refuse_bulk_update_and_delete(workspace):
    append(workspace, 2)
    for model in (AuditEntry, VersionLog):
        with pytest.raises(AppendOnlyError):
            model.objects.filter(workspace=workspace).update(actor="x:y")
        with pytest.raises(AppendOnlyError):
            model.objects.filter(workspace=workspace).delete()


def test_version_log_instance_is_append_only(workspace):
    log = VersionLog.objects.filter(workspace=workspace).first()
    log.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        log.save()


@on_postgres
@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditentry SET actor = 'user:mallory' WHERE workspace_id = %s",
        "DELETE FROM audit_auditentry WHERE workspace_id = %s",
        "UPDATE audit_versionlog SET reason = 'rewritten' WHERE workspace_id = %s",
        "DELETE FROM audit_versionlog WHERE workspace_id = %s",
        "UPDATE audit_exceptionrecord SET what = 'nothing' WHERE workspace_id = %s",
        "DELETE FROM audit_exceptionrecord WHERE workspace_id = %s",
    ],
)
def test_trigger_refuses_raw_sql_changes(workspace, sql):
    append(workspace, 2)
    with transaction.atomic():
        exception_record(
            workspace=workspace, actor=AGENT, kind="anomaly", severity="low", what="w", why="y"
        )
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        raw_sql(sql, [db_id(workspace)])


@on_postgres
@pytest.mark.postgres
def test_trigger_lets_only_resolution_fields_of_an_exception_change(workspace):
    with transaction.atomic():
        record = exception_record(
            workspace=workspace, actor=AGENT, kind="anomaly", severity="low", what="w", why="y"
        )
    resolved = exception_resolve(record=record, actor=HUMAN, mitigation="key rotated")
    assert resolved.resolved_by == HUMAN.label
    assert resolved.mitigation == "key rotated"
    assert ExceptionRecord.objects.get(pk=record.pk).resolved_at is not None


@on_postgres
@pytest.mark.postgres
def test_the_set_config_trick_no_longer_opens_the_trigger(workspace):
    append(workspace, 3)
    raw_sql(
        "SELECT set_config('warden.audit_prune_workspace', %s, true),"
        " set_config('warden.audit_prune_through_seq', '999999999', true)",
        [db_id(workspace)],
    )
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        raw_sql("DELETE FROM audit_auditentry WHERE workspace_id = %s", [db_id(workspace)])


def _head(workspace):
    return AuditChainHead.objects.values_list("seq", "hash").get(workspace=workspace)


def _raw_insert(workspace, seq, prev_hash):
    raw_sql(
        "INSERT INTO audit_auditentry (workspace_id, seq, created_at, actor, actor_type, action,"
        " target_type, target_id, tool, input, decision, rationale, request_id, outcome,"
        " prev_hash, hash, mac) VALUES (%s, %s, now(), 'user:mallory@example.test', 'user',"
        " 'key.revoked', '', '', '', '{}', '', '', '', '', %s, %s, '')",
        [db_id(workspace), seq, prev_hash, "f" * 64],
    )


@on_postgres
@pytest.mark.postgres
@pytest.mark.parametrize("wrong", ["seq_ahead", "seq_behind", "prev_hash"])
def test_trigger_refuses_an_insert_that_is_not_the_next_entry(workspace, wrong):
    seq, digest = _head(workspace)
    seq = {"seq_ahead": seq + 2, "seq_behind": seq, "prev_hash": seq + 1}[wrong]
    digest = "e" * 64 if wrong == "prev_hash" else digest
    with pytest.raises(IntegrityError, match="refused"), transaction.atomic():
        _raw_insert(workspace, seq, digest)


@on_postgres
@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditchainhead SET seq = seq - 1 WHERE workspace_id = %s",
        "UPDATE audit_auditchainhead SET seq = 0, hash = repeat('0', 64) WHERE workspace_id = %s",
        "UPDATE audit_auditchainhead SET seq = seq + 1 WHERE workspace_id = %s",
        "UPDATE audit_auditchainhead SET hash = repeat('e', 64) WHERE workspace_id = %s",
        "DELETE FROM audit_auditchainhead WHERE workspace_id = %s",
    ],
    ids=["rewind", "reset", "skip-ahead", "rehash", "delete"],
)
def test_trigger_refuses_to_move_the_head_off_the_chain(workspace, sql):
    append(workspace, 2)
    with pytest.raises(IntegrityError, match="only moves forward"), transaction.atomic():
        raw_sql(sql, [db_id(workspace)])


@on_postgres
@pytest.mark.postgres
def test_a_raw_insert_in_the_right_place_passes_the_trigger_but_not_verification(workspace):
    """The trigger checks the shape of the chain, not who wrote it: hashes and MACs do."""
    seq, digest = _head(workspace)
    _raw_insert(workspace, seq + 1, digest)
    raw_sql(
        "UPDATE audit_auditchainhead SET seq = %s, hash = %s WHERE workspace_id = %s",
        [seq + 1, "f" * 64, db_id(workspace)],
    )
    result = verify_chain(workspace)
    assert (result.first_bad_seq, result.problem) == (seq + 1, HASH_MISMATCH)


@on_postgres
@pytest.mark.postgres
@pytest.mark.parametrize("table", AUDIT_TRUNCATE_GUARDS)
def test_trigger_refuses_truncate(workspace, table):
    # The test database lets its own teardown flush these tables (tests/conftest.py);
    # production keeps the guard on, as the migration installs it.
    raw_sql("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER may run
    raw_sql(f"ALTER TABLE {table} ENABLE TRIGGER {table}_no_truncate")
    with pytest.raises(IntegrityError, match="TRUNCATE refused"), transaction.atomic():
        raw_sql(f"TRUNCATE {table} CASCADE")


@on_postgres
@pytest.mark.postgres
def test_prune_function_refuses_a_range_the_chain_does_not_declare(workspace):
    append(workspace, 3)
    with pytest.raises(IntegrityError, match="not declared"), transaction.atomic():
        raw_sql("SELECT warden_audit_prune(%s, 999999999)", [db_id(workspace)])
    assert AuditEntry.objects.filter(workspace=workspace).count() >= 3


@on_postgres
@pytest.mark.postgres
def test_no_application_session_is_the_pruning_role(workspace):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, 'warden_audit_pruner', 'MEMBER')"
            " AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),"
            " (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'warden_audit_pruner'),"
            " (SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'warden_audit_prune')"
        )
        member, can_login, owner = cursor.fetchone()
    assert not can_login
    assert owner == "warden_audit_pruner"
    assert not member  # a superuser is a member of every role: not counted


def test_checkpoints_and_quarantine_are_kept_by_the_model(workspace):
    checkpoint = checkpoint_create(workspace=workspace)
    with pytest.raises(AppendOnlyError):
        checkpoint.delete()
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.filter(workspace=workspace).delete()
    with pytest.raises(AppendOnlyError):
        AuditQuarantine.objects.filter(workspace=workspace).delete()
