"""Pruning removes a prefix of the chain behind a signed checkpoint; the chain still
verifies, and nothing else can delete evidence."""

import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.export import iter_export_lines
from audit.models import AuditAction, AuditEntry, ExceptionRecord, VersionLog
from audit.prune_marks import latest_checkpoint
from audit.retention import audit_prune
from audit.services import exception_record, exception_resolve
from audit.verify import GAP, HASH_MISMATCH, verify_chain
from common.actor import Actor
from tests.audit.helpers import AGENT, HUMAN, append, db_id, on_postgres, raw_sql, tamper
from tests.audit.test_export import readme_recipe

PRUNER = Actor.system("audit_prune")


@pytest.fixture
def aged(make_workspace):
    """A workspace with 40 days of history: 10 entries 40 days ago, 5 today."""
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        workspace = make_workspace(audit_retention_days=30)
        append(workspace, 10)
    append(workspace, 5)
    workspace.refresh_from_db()
    return workspace


def old_seqs(workspace):
    cutoff = timezone.now() - timedelta(days=30)
    return list(
        AuditEntry.objects.filter(workspace=workspace, created_at__lt=cutoff).values_list(
            "seq", flat=True
        )
    )


def test_prune_removes_entries_past_retention_and_chain_still_verifies(aged):
    old = old_seqs(aged)
    result = audit_prune(workspace=aged, actor=PRUNER)
    assert result.pruned_entries == len(old)
    assert result.through_seq == max(old)
    assert not AuditEntry.objects.filter(workspace=aged, seq__lte=max(old)).exists()
    checkpoint = AuditEntry.objects.get(workspace=aged, seq=result.checkpoint_seq)
    assert checkpoint.action == AuditAction.AUDIT_PRUNED
    assert checkpoint.input["pruned_through_seq"] == max(old)
    verdict = verify_chain(aged)
    assert verdict.ok, verdict
    assert verdict.entries_checked == AuditEntry.objects.filter(workspace=aged).count()


def test_prune_takes_version_logs_and_resolved_exceptions_with_it(aged):
    assert VersionLog.objects.filter(workspace=aged).exists()  # workspace.created, member.added
    audit_prune(workspace=aged, actor=PRUNER)
    assert not VersionLog.objects.filter(workspace=aged, audit_entry__seq__lte=2).exists()


def test_unresolved_exception_holds_back_pruning(make_workspace):
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        workspace = make_workspace(audit_retention_days=30)
        append(workspace, 3)
        with transaction.atomic():
            record = exception_record(
                workspace=workspace, actor=AGENT, kind="anomaly", severity="high", what="w", why="y"
            )
        append(workspace, 3)
    result = audit_prune(workspace=workspace, actor=PRUNER)
    assert result.through_seq == record.audit_entry.seq - 1
    assert ExceptionRecord.objects.filter(pk=record.pk).exists()
    exception_resolve(record=record, actor=HUMAN, mitigation="handled")
    again = audit_prune(workspace=workspace, actor=PRUNER)
    assert again.pruned_entries > 0
    assert not ExceptionRecord.objects.filter(pk=record.pk).exists()
    assert verify_chain(workspace).ok


def test_forever_retention_prunes_nothing(workspace):
    append(workspace, 3)
    assert workspace.audit_retention_days is None
    assert audit_prune(workspace=workspace, actor=PRUNER).pruned_entries == 0


def test_second_prune_supersedes_the_first_checkpoint(aged):
    audit_prune(workspace=aged, actor=PRUNER)
    with time_machine.travel(timezone.now() + timedelta(days=60)):
        append(aged, 2)
        second = audit_prune(workspace=aged, actor=PRUNER)
    assert second.pruned_entries > 0
    assert latest_checkpoint(aged).seq == second.checkpoint_seq
    assert verify_chain(aged).ok


def test_nothing_to_prune_appends_no_checkpoint(aged):
    audit_prune(workspace=aged, actor=PRUNER)
    count = AuditEntry.objects.filter(workspace=aged).count()
    assert audit_prune(workspace=aged, actor=PRUNER).pruned_entries == 0
    assert AuditEntry.objects.filter(workspace=aged).count() == count


def test_export_after_pruning_verifies_from_the_checkpoint_hash(aged):
    result = audit_prune(workspace=aged, actor=PRUNER)
    checkpoint = latest_checkpoint(aged)
    lines = list(iter_export_lines(aged))
    assert json.loads(lines[0])["seq"] == result.through_seq + 1
    assert readme_recipe()(lines, prev_hash=checkpoint.through_hash) == len(lines)


def test_forged_checkpoint_signature_fails_verification(aged):
    result = audit_prune(workspace=aged, actor=PRUNER)
    tamper(
        "UPDATE audit_auditentry SET input = %s WHERE workspace_id = %s AND seq = %s",
        [
            json.dumps(
                {"pruned_through_seq": 1, "pruned_through_hash": "0" * 64, "signature": "x"}
            ),
            db_id(aged),
            result.checkpoint_seq,
        ],
    )
    verdict = verify_chain(aged)
    assert (verdict.first_bad_seq, verdict.problem) == (result.checkpoint_seq, HASH_MISMATCH)


def test_deleting_old_rows_without_a_checkpoint_is_a_gap(aged):
    ids = list(AuditEntry.objects.filter(workspace=aged, seq__lte=3).values_list("pk", flat=True))
    tamper(
        f"DELETE FROM audit_versionlog WHERE audit_entry_id IN ({','.join(map(str, ids))})",
        table="audit_versionlog",
    )
    tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq <= 3", [db_id(aged)])
    verdict = verify_chain(aged)
    assert (verdict.first_bad_seq, verdict.problem) == (1, GAP)


def test_prune_command_reports_each_workspace(aged, workspace):
    out = io.StringIO()
    call_command("audit_prune", stdout=out)
    assert f"{aged.slug}: pruned" in out.getvalue()
    assert workspace.slug not in out.getvalue()  # retention forever: not considered


@on_postgres
@pytest.mark.postgres
def test_pruning_through_the_service_works_and_nothing_else_deletes(aged):
    """The service prunes through warden_audit_prune; a raw DELETE, or calling the
    function again for more than the chain declares, is refused."""
    result = audit_prune(workspace=aged, actor=PRUNER)
    assert result.pruned_entries > 0
    assert verify_chain(aged).ok
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        raw_sql("DELETE FROM audit_auditentry WHERE workspace_id = %s", [db_id(aged)])
    with pytest.raises(IntegrityError, match="not declared"), transaction.atomic():
        raw_sql("SELECT warden_audit_prune(%s, %s)", [db_id(aged), result.through_seq + 3])


def test_anomaly_findings_follow_their_pruned_exception_records(make_workspace, make_key):
    from oversight.models import AnomalyFinding

    with time_machine.travel(timezone.now() - timedelta(days=40)):
        workspace = make_workspace(audit_retention_days=30)
        key, _ = make_key(workspace)
        with transaction.atomic():
            record = exception_record(
                workspace=workspace, actor=AGENT, kind="anomaly", severity="low", what="w", why="y"
            )
        exception_resolve(record=record, actor=HUMAN, mitigation="ok")
        finding = AnomalyFinding.objects.create(
            workspace=workspace,
            key=key,
            kind="volume",
            window_start=timezone.now(),
            window_end=timezone.now(),
            exception_record=record,
        )
        append(workspace, 3)
    result = audit_prune(workspace=workspace, actor=PRUNER)
    assert result.through_seq > record.audit_entry.seq
    assert not AnomalyFinding.objects.filter(pk=finding.pk).exists()
    assert not ExceptionRecord.objects.filter(pk=record.pk).exists()
    assert verify_chain(workspace).ok


def test_prune_never_removes_entries_the_export_has_not_delivered(aged):
    from oversight.models import AuditExportDestination

    old = old_seqs(aged)
    from approvals.guard import operator_seeding

    with operator_seeding():  # set-up: a new destination is governed
        AuditExportDestination.objects.create(
            workspace=aged, kind="directory", directory="/tmp", last_exported_seq=4
        )
    result = audit_prune(workspace=aged, actor=PRUNER)
    assert max(old) > 4
    assert result.through_seq == 4
    assert AuditEntry.objects.filter(workspace=aged, seq=5).exists()
    assert verify_chain(aged).ok
