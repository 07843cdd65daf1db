"""verify_chain names the first entry that does not hold, and how."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from audit.models import AuditAction, AuditChainHead, AuditEntry, ExceptionRecord, VersionLog
from audit.progress import ProgressBar
from audit.services import audit_verify_and_record, exception_record, exception_resolve
from audit.verify import BROKEN_LINK, GAP, HASH_MISMATCH, REORDERED, verify_chain
from common.actor import Actor
from tests.audit.helpers import HUMAN, append, db_id, swap_seq, tamper


def _ws(workspace):
    return db_id(workspace)


@pytest.fixture
def chain(workspace):
    """A workspace whose chain holds 30 entries (seq 1..30)."""
    existing = AuditChainHead.objects.get(workspace=workspace).seq
    append(workspace, 30 - existing)
    return workspace


def test_intact_chain_verifies(chain):
    result = verify_chain(chain)
    assert result.ok, result
    assert result.entries_checked == 30
    assert result.first_bad_seq is None
    assert result.seconds > 0


def test_empty_chain_verifies(make_workspace):
    workspace = make_workspace()
    AuditEntry.objects.filter(workspace=workspace)  # created with a few entries
    assert verify_chain(workspace).ok


def test_edited_row_is_a_hash_mismatch(chain):
    tamper(
        "UPDATE audit_auditentry SET actor = 'user:mallory@example.test'"
        " WHERE workspace_id = %s AND seq = 17",
        [_ws(chain)],
    )
    result = verify_chain(chain)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 17, HASH_MISMATCH)
    assert result.entries_checked == 16


def test_edited_json_input_is_a_hash_mismatch(chain):
    tamper(
        "UPDATE audit_auditentry SET input = %s WHERE workspace_id = %s AND seq = 5",
        ['{"i": 999}', _ws(chain)],
    )
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (5, HASH_MISMATCH)


def test_deleted_row_is_a_gap(chain):
    tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq = 12", [_ws(chain)])
    result = verify_chain(chain)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 12, GAP)


def test_deleted_first_rows_are_a_gap_at_one(chain):
    ws = _ws(chain)
    first = list(
        AuditEntry.objects.filter(workspace=chain, seq__lte=2).values_list("pk", flat=True)
    )
    tamper(
        f"DELETE FROM audit_versionlog WHERE audit_entry_id IN ({first[0]}, {first[1]})",
        table="audit_versionlog",
    )
    tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq <= 2", [ws])
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (1, GAP)


def test_deleted_last_row_is_a_gap_against_the_head(chain):
    tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq = 30", [_ws(chain)])
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (30, GAP)


def test_swapped_rows_are_reordered(chain):
    swap_seq(chain, 8, 9)
    result = verify_chain(chain)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 8, REORDERED)


def test_distant_swap_is_reordered_at_the_earlier_position(chain):
    swap_seq(chain, 4, 21)
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (4, REORDERED)


def test_rewritten_prev_hash_is_a_broken_link(chain):
    tamper(
        "UPDATE audit_auditentry SET prev_hash = %s WHERE workspace_id = %s AND seq = 20",
        ["f" * 64, _ws(chain)],
    )
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (20, BROKEN_LINK)


def test_forged_actor_type_is_caught(chain):
    tamper(
        "UPDATE audit_auditentry SET actor_type = 'system' WHERE workspace_id = %s AND seq = 3",
        [_ws(chain)],
    )
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (3, HASH_MISMATCH)


def test_head_that_disagrees_with_the_last_row_is_caught(chain):
    tamper(
        "UPDATE audit_auditchainhead SET hash = %s WHERE workspace_id = %s",
        ["e" * 64, _ws(chain)],
        table="audit_auditchainhead",
    )
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (30, HASH_MISMATCH)


def test_verification_walks_in_chunks_and_reports_progress(chain):
    calls = []
    result = verify_chain(chain, chunk_size=7, progress=lambda done, total: calls.append(done))
    assert result.ok
    assert calls == [7, 14, 21, 28, 30]


def test_verify_and_record_appends_the_verdict(chain):
    result = audit_verify_and_record(workspace=chain, actor=HUMAN)
    assert result.ok
    entry = AuditEntry.objects.filter(workspace=chain).order_by("-seq").first()
    assert (entry.action, entry.outcome, entry.seq) == (AuditAction.AUDIT_VERIFIED, "ok", 31)
    assert entry.input["entries_checked"] == 30
    assert verify_chain(chain).ok


def test_broken_chain_verdict_opens_a_critical_exception(chain):
    tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq = 7", [_ws(chain)])
    result = audit_verify_and_record(workspace=chain, actor=Actor.system("tests"))
    assert not result.ok
    record = ExceptionRecord.objects.get(workspace=chain, kind=ExceptionRecord.Kind.CHAIN_BROKEN)
    assert record.severity == "critical"
    assert "#7" in record.what
    assert record.audit_entry.action == AuditAction.AUDIT_VERIFIED
    assert record.audit_entry.outcome == "broken"
    # The verdict went onto the chain without hiding the break.
    assert verify_chain(chain).first_bad_seq == 7


def test_command_prints_rate_for_each_chain(chain, other_workspace):
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    text = out.getvalue()
    assert f"{chain.slug}: ok, 30 entries" in text
    assert f"{other_workspace.slug}: ok" in text
    assert "entries/s" in text


def test_command_checks_one_workspace_by_slug(chain, other_workspace):
    out = io.StringIO()
    call_command("audit_verify", chain.slug, "--no-record", stdout=out)
    assert chain.slug in out.getvalue()
    assert other_workspace.slug not in out.getvalue()
    assert AuditEntry.objects.filter(workspace=chain, action="audit.verified").count() == 0


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("edit", "#17 (hash mismatch)"),
        ("delete", "#17 (gap)"),
        ("reorder", "#17 (reordered)"),
    ],
)
def test_command_exits_non_zero_naming_the_first_bad_sequence(chain, damage, named):
    ws = _ws(chain)
    if damage == "edit":
        tamper(
            "UPDATE audit_auditentry SET outcome = 'x' WHERE workspace_id = %s AND seq = 17", [ws]
        )
    elif damage == "delete":
        tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq = 17", [ws])
    else:
        swap_seq(chain, 17, 18)
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify", chain.slug, stdout=io.StringIO())
    assert named in str(caught.value)
    assert chain.slug in str(caught.value)


def test_command_exit_status_is_non_zero_from_the_shell(chain):
    from django.core.management import ManagementUtility

    tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq = 3", [_ws(chain)])
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "audit_verify", chain.slug]).execute()
    assert exited.value.code == 1


def test_command_unknown_slug_fails(db):
    with pytest.raises(CommandError, match="No workspace"):
        call_command("audit_verify", "nope", stdout=io.StringIO())


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal_only(chain):
    tty = _Tty()
    bar = ProgressBar(tty, label="x", min_interval=0)
    verify_chain(chain, progress=bar, chunk_size=10)
    bar.finish()
    assert "[" in tty.getvalue() and "30/30" in tty.getvalue() and "/s" in tty.getvalue()
    plain = io.StringIO()
    quiet = ProgressBar(plain, min_interval=0)
    verify_chain(chain, progress=quiet, chunk_size=10)
    assert plain.getvalue() == ""


def test_verify_runs_inside_an_outer_transaction(chain):
    with transaction.atomic():
        assert verify_chain(chain).ok


def test_edited_version_log_is_caught_against_its_entry(chain):
    log = VersionLog.objects.filter(workspace=chain).order_by("audit_entry__seq").first()
    tamper(
        "UPDATE audit_versionlog SET reason = 'nothing to see' WHERE id = %s",
        [log.pk],
        table="audit_versionlog",
    )
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (log.audit_entry.seq, HASH_MISMATCH)
    assert "version log" in result.detail


def test_edited_exception_record_is_caught_against_its_entry(chain):
    with transaction.atomic():
        record = exception_record(
            workspace=chain, actor=HUMAN, kind="anomaly", severity="critical", what="w", why="y"
        )
    assert verify_chain(chain).ok
    tamper(
        "UPDATE audit_exceptionrecord SET severity = 'low' WHERE id = %s",
        [record.pk],
        table="audit_exceptionrecord",
    )
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (record.audit_entry.seq, HASH_MISMATCH)
    assert "exception record" in result.detail


def test_resolving_an_exception_is_not_tampering(chain):
    with transaction.atomic():
        record = exception_record(
            workspace=chain, actor=HUMAN, kind="anomaly", severity="high", what="w" * 400, why="y"
        )
    exception_resolve(record=record, actor=HUMAN, mitigation="rotated the key")
    assert verify_chain(chain).ok


def test_command_draws_a_progress_bar_when_stdout_is_a_terminal(chain):
    tty = _Tty()
    call_command("audit_verify", chain.slug, "--no-record", stdout=tty)
    assert "\r" in tty.getvalue() and "/s" in tty.getvalue()
    assert f"{chain.slug}: ok, 30 entries" in tty.getvalue()


def test_entry_moved_past_the_head_is_reordered_not_lost(chain):
    tamper(
        "UPDATE audit_auditentry SET seq = 500 WHERE workspace_id = %s AND seq = 11",
        [_ws(chain)],
    )
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (11, REORDERED)
    assert "#500" in result.detail


def test_last_entry_moved_past_the_head_is_reordered(chain):
    tamper(
        "UPDATE audit_auditentry SET seq = 500 WHERE workspace_id = %s AND seq = 30",
        [_ws(chain)],
    )
    result = verify_chain(chain)
    assert (result.first_bad_seq, result.problem) == (30, REORDERED)
