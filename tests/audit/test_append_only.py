"""Evidence cannot be changed or removed: by the model, and on PostgreSQL by a trigger
that holds even against raw SQL."""

import pytest
from django.db import IntegrityError, transaction

from audit.models import AppendOnlyError, AuditEntry, ExceptionRecord, VersionLog
from audit.services import exception_record, exception_resolve
from tests.audit.helpers import AGENT, HUMAN, append, db_id, on_postgres, raw_sql


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
def test_trigger_refuses_delete_outside_the_declared_prune_range(workspace):
    append(workspace, 3)
    raw_sql(
        "SELECT set_config('warden.audit_prune_workspace', %s, true),"
        " set_config('warden.audit_prune_through_seq', '1', true)",
        [db_id(workspace)],
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        raw_sql(
            "DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq = 3", [db_id(workspace)]
        )
    raw_sql("SELECT set_config('warden.audit_prune_workspace', '', true)")
