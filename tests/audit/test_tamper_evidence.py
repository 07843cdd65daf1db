"""Someone with full database access rewrites the chain consistently (hashes recomputed
with the README recipe, head updated): once a signed checkpoint covers the entries,
verification names what happened (issue 15's tampering table, SQLite and PostgreSQL)."""

import base64
import io
import json

import pytest
from cryptography.exceptions import InvalidSignature
from django.core.management import CommandError, call_command
from django.db import transaction

from approvals.guard import operator_seeding
from audit.chain import compute_hash, entry_payload
from audit.checkpoints import checkpoint_line
from audit.models import (
    AuditAction,
    AuditChainHead,
    AuditCheckpoint,
    AuditEntry,
    AuditQuarantine,
    ExceptionRecord,
)
from audit.services import audit_verify_and_record, checkpoint_create
from audit.verify import (
    BEYOND_HEAD,
    CHECKPOINT_MISMATCH,
    FORGED_CHECKPOINT,
    FORGED_ENTRY,
    TRUNCATED,
    verify_chain,
)
from common.actor import Actor
from oversight.scheduled_export import checkpoints_deliver, destination_configure
from oversight.tasks import checkpoint_all
from tests.audit.helpers import append, db_id, tamper
from tests.docs import run_snippet_script


@pytest.fixture
def signed(workspace):
    """A chain of 12 entries whose head is covered by a signed checkpoint."""
    existing = AuditChainHead.objects.get(workspace=workspace).seq
    append(workspace, 12 - existing)
    checkpoint = checkpoint_create(workspace=workspace)
    assert checkpoint is not None and checkpoint.seq == 12
    assert verify_chain(workspace).ok
    return workspace


def _head(workspace):
    return AuditChainHead.objects.get(workspace=workspace)


def _set_head(workspace, seq, digest):
    tamper(
        "UPDATE audit_auditchainhead SET seq = %s, hash = %s WHERE workspace_id = %s",
        [seq, digest, db_id(workspace)],
        table="audit_auditchainhead",
    )


def _forge_after(workspace, seq, prev_hash, action, mac=""):
    """Insert a correctly hashed entry at `seq` linking to `prev_hash`, as the README
    recipe allows anyone to compute, without the server's MAC key."""
    template = AuditEntry.objects.filter(workspace=workspace).order_by("-seq").first()
    entry = AuditEntry(
        workspace=workspace,
        seq=seq,
        created_at=template.created_at,
        actor="user:mallory@example.test",
        actor_type="user",
        action=action,
        target_type="machine_key",
        target_id="k-1",
        tool="",
        input={"reason": "forged"},
        decision="",
        rationale="",
        policy_version=None,
        request_id="",
        client_ip=None,
        outcome="revoked",
        prev_hash=prev_hash,
    )
    entry.hash = compute_hash(prev_hash, entry_payload(entry))
    columns = (
        "workspace_id, seq, created_at, actor, actor_type, action, target_type, target_id,"
        " tool, input, decision, rationale, request_id, outcome, prev_hash, hash, mac"
    )
    tamper(
        f"INSERT INTO audit_auditentry ({columns}) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            db_id(workspace),
            seq,
            entry.created_at,
            entry.actor,
            "user",
            action,
            "machine_key",
            "k-1",
            "",
            json.dumps(entry.input),
            "",
            "",
            "",
            "revoked",
            prev_hash,
            entry.hash,
            mac,
        ],
    )
    return entry


def _export_checkpoints(workspace, tmp_path):
    out = io.StringIO()
    call_command("audit_checkpoints", workspace.slug, stdout=out)
    path = tmp_path / "checkpoints.jsonl"
    path.write_text(out.getvalue())
    return path


# --- the tampering table ---------------------------------------------------------------


def test_rewriting_the_last_entry_and_updating_the_head_is_named(signed):
    last = AuditEntry.objects.get(workspace=signed, seq=12)
    last.actor = "user:mallory@example.test"
    new_hash = compute_hash(last.prev_hash, entry_payload(last))
    tamper(
        "UPDATE audit_auditentry SET actor = %s, actor_type = 'user', hash = %s"
        " WHERE workspace_id = %s AND seq = 12",
        [last.actor, new_hash, db_id(signed)],
    )
    _set_head(signed, 12, new_hash)
    result = verify_chain(signed)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 12, CHECKPOINT_MISMATCH)


def test_deleting_the_last_entries_and_rewinding_the_head_is_truncation(signed):
    eleventh = AuditEntry.objects.get(workspace=signed, seq=10)
    tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq > 10", [db_id(signed)])
    _set_head(signed, 10, eleventh.hash)
    result = verify_chain(signed)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 11, TRUNCATED)
    assert "#12 was signed" in result.detail


def test_deleting_everything_and_the_head_is_truncation(signed):
    for table in ("audit_versionlog", "audit_exceptionrecord", "audit_auditentry"):
        tamper(f"DELETE FROM {table} WHERE workspace_id = %s", [db_id(signed)], table=table)
    tamper(
        "DELETE FROM audit_auditchainhead WHERE workspace_id = %s",
        [db_id(signed)],
        table="audit_auditchainhead",
    )
    result = verify_chain(signed)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 1, TRUNCATED)


def test_deleting_everything_with_the_checkpoints_is_caught_by_the_exported_copy(signed, tmp_path):
    exported = _export_checkpoints(signed, tmp_path)
    tables = ("audit_versionlog", "audit_exceptionrecord", "audit_auditentry")
    for table in (*tables, "audit_auditcheckpoint", "audit_auditchainhead"):
        tamper(f"DELETE FROM {table} WHERE workspace_id = %s", [db_id(signed)], table=table)
    assert verify_chain(signed).ok  # the database alone now tells a consistent story
    result = verify_chain(signed, checkpoint_file=exported)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 1, TRUNCATED)
    with pytest.raises(CommandError, match="truncated"):
        call_command(
            "audit_verify", signed.slug, "--no-record", "--checkpoints", str(exported),
            stdout=io.StringIO(),
        )  # fmt: skip


def test_appending_a_forged_entry_and_moving_the_head_is_a_forged_entry(signed):
    forged = _forge_after(signed, 13, _head(signed).hash, AuditAction.KEY_REVOKED)
    _set_head(signed, 13, forged.hash)
    result = verify_chain(signed)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 13, FORGED_ENTRY)
    assert result.detail == "entry has no MAC"


def test_a_guessed_mac_does_not_help_the_forger(signed):
    forged = _forge_after(signed, 13, _head(signed).hash, AuditAction.KEY_REVOKED, mac="a" * 64)
    _set_head(signed, 13, forged.hash)
    result = verify_chain(signed)
    assert (result.first_bad_seq, result.problem, result.detail) == (
        13,
        FORGED_ENTRY,
        "entry MAC does not verify",
    )


def test_rewriting_an_entry_after_the_last_checkpoint_is_a_forged_entry(signed):
    append(signed, 2)  # 13, 14: not yet checkpointed, but MACed
    last = AuditEntry.objects.get(workspace=signed, seq=14)
    last.rationale = "nothing to see"
    new_hash = compute_hash(last.prev_hash, entry_payload(last))
    tamper(
        "UPDATE audit_auditentry SET rationale = %s, hash = %s"
        " WHERE workspace_id = %s AND seq = 14",
        [last.rationale, new_hash, db_id(signed)],
    )
    _set_head(signed, 14, new_hash)
    result = verify_chain(signed)
    assert (result.first_bad_seq, result.problem) == (14, FORGED_ENTRY)


def test_forged_entry_in_a_chain_without_checkpoints_after_maced_entries(workspace):
    append(workspace, 3)
    head = _head(workspace)
    forged = _forge_after(workspace, head.seq + 1, head.hash, AuditAction.KEY_REVOKED)
    _set_head(workspace, head.seq + 1, forged.hash)
    result = verify_chain(workspace)
    assert (result.first_bad_seq, result.problem) == (head.seq + 1, FORGED_ENTRY)


def test_an_edited_checkpoint_is_a_forged_checkpoint(signed):
    entry = AuditEntry.objects.get(workspace=signed, seq=11)
    tamper(
        "UPDATE audit_auditcheckpoint SET seq = 11, hash = %s WHERE workspace_id = %s",
        [entry.hash, db_id(signed)],
        table="audit_auditcheckpoint",
    )
    result = verify_chain(signed)
    assert (result.first_bad_seq, result.problem) == (11, FORGED_CHECKPOINT)


def test_a_verdict_on_a_tampered_chain_opens_a_critical_exception(signed):
    tamper("DELETE FROM audit_auditentry WHERE workspace_id = %s AND seq > 11", [db_id(signed)])
    _set_head(signed, 11, AuditEntry.objects.get(workspace=signed, seq=11).hash)
    result = audit_verify_and_record(workspace=signed, actor=Actor.system("tests"))
    assert result.problem == TRUNCATED
    record = ExceptionRecord.objects.get(workspace=signed, kind="chain_broken")
    assert "truncated" in record.what


# --- rows beyond the head ----------------------------------------------------------------


def test_a_forged_row_beyond_the_head_fails_verification(signed):
    _forge_after(signed, 13, _head(signed).hash, AuditAction.KEY_REVOKED)
    result = verify_chain(signed)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 13, BEYOND_HEAD)
    assert "1 row(s) past the chain head #12" in result.detail


def test_a_forged_row_beyond_the_head_does_not_block_the_next_audited_write(signed):
    _forge_after(signed, 13, _head(signed).hash, AuditAction.KEY_REVOKED)
    [entry] = append(signed)
    # The squatter was moved out, its discovery recorded, then the write appended.
    [quarantined] = AuditQuarantine.objects.filter(workspace=signed)
    assert quarantined.seq == 13
    assert quarantined.row["action"] == AuditAction.KEY_REVOKED
    assert quarantined.row["actor"] == "user:mallory@example.test"
    record = ExceptionRecord.objects.get(workspace=signed, kind="chain_broken")
    assert record.severity == "critical"
    assert record.audit_entry.seq == 13
    assert record.evidence["quarantined"][0]["seq"] == 13
    assert entry.seq == 14
    assert entry.prev_hash == record.audit_entry.hash
    result = verify_chain(signed)
    assert result.ok, result
    assert result.quarantined == 1


# --- making and shipping checkpoints -----------------------------------------------------


def test_a_checkpoint_is_signed_every_n_entries(workspace, settings):
    settings.WARDEN_AUDIT_CHECKPOINT_EVERY = 5
    append(workspace, 12)
    head = _head(workspace).seq
    seqs = list(AuditCheckpoint.objects.filter(workspace=workspace).values_list("seq", flat=True))
    assert seqs == list(range(5, head + 1, 5))


def test_a_checkpoint_never_vouches_for_a_forged_tail(signed):
    forged = _forge_after(signed, 13, _head(signed).hash, AuditAction.KEY_REVOKED)
    _set_head(signed, 13, forged.hash)
    assert checkpoint_create(workspace=signed) is None
    assert AuditCheckpoint.objects.filter(workspace=signed).count() == 1


def test_the_beat_task_signs_only_chains_that_moved(signed, make_workspace):
    make_workspace()
    append(signed, 1)
    assert checkpoint_all.delay().get() == 2  # `signed` moved to #13; `other` is new
    assert AuditCheckpoint.objects.filter(workspace=signed).latest("seq").seq == 13
    assert checkpoint_all.delay().get() == 0


def test_checkpoints_go_to_the_export_directory_and_verify_offline(signed, settings, tmp_path):
    settings.WARDEN_EXPORT_DIRECTORY_ROOTS = [str(tmp_path)]
    target = tmp_path / "acme"
    with transaction.atomic(), operator_seeding():
        destination_configure(
            reason="test set-up",
            workspace=signed,
            kind="directory",
            directory=str(target),
            actor=Actor.system("tests"),
            operator=True,
        )
    assert checkpoints_deliver(workspace=signed) == 1
    [written] = target.glob("*checkpoint*.json")
    assert written.name == f"warden-audit-{signed.slug}-checkpoint-000000000012.json"
    document = json.loads(written.read_text())
    assert AuditCheckpoint.objects.get(workspace=signed).delivered_at is not None
    # Offline, with nothing but the printed public key (the documentation's recipe):
    out = io.StringIO()
    call_command("audit_public_key", stdout=out, stderr=io.StringIO())
    lines = tmp_path / "checkpoints.jsonl"
    lines.write_text(json.dumps(document) + "\n")
    printed = run_snippet_script("checkpoint-verify", out.getvalue().strip(), str(lines))
    assert printed == f"{signed.pk} 12 {document['hash']} ok\n"
    lines.write_text(json.dumps({**document, "hash": "0" * 64}) + "\n")
    with pytest.raises(InvalidSignature):
        run_snippet_script("checkpoint-verify", out.getvalue().strip(), str(lines))
    twelfth = AuditEntry.objects.get(workspace=signed, seq=12)
    assert (document["seq"], document["hash"]) == (12, twelfth.hash)
    # The directory itself is an --checkpoints source.
    assert verify_chain(signed, checkpoint_file=target).ok
    assert checkpoints_deliver(workspace=signed) == 0  # nothing pending


def test_a_checkpoint_carries_no_secret(signed, settings):
    line = checkpoint_line(AuditCheckpoint.objects.get(workspace=signed))
    assert settings.WARDEN_AUDIT_SIGNING_KEY not in line
    assert settings.SECRET_KEY not in line
    assert not AuditEntry.objects.filter(input__icontains=settings.WARDEN_AUDIT_SIGNING_KEY)


def test_verify_command_reports_the_signed_range(signed):
    out = io.StringIO()
    call_command("audit_verify", signed.slug, "--no-record", stdout=out)
    assert "signed through #12" in out.getvalue()


def test_an_unreadable_checkpoint_file_is_a_command_error(signed, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(CommandError, match="--checkpoints"):
        call_command("audit_verify", signed.slug, "--checkpoints", str(bad), stdout=io.StringIO())


def test_a_checkpoint_file_line_without_our_signature_is_forged(signed, tmp_path):
    document = json.loads(checkpoint_line(AuditCheckpoint.objects.get(workspace=signed)))
    document.update(seq=40, hash="c" * 64, signature=base64.b64encode(b"\0" * 64).decode())
    path = tmp_path / "cp.jsonl"
    path.write_text(json.dumps(document) + "\n")
    result = verify_chain(signed, checkpoint_file=path)
    assert (result.first_bad_seq, result.problem) == (40, FORGED_CHECKPOINT)


def test_a_file_and_the_table_disagreeing_about_a_checkpoint_is_named(signed, tmp_path):
    exported = _export_checkpoints(signed, tmp_path)
    tamper(
        "UPDATE audit_auditcheckpoint SET hash = %s WHERE workspace_id = %s",
        ["d" * 64, db_id(signed)],
        table="audit_auditcheckpoint",
    )
    result = verify_chain(signed, checkpoint_file=exported)
    assert (result.first_bad_seq, result.problem) == (12, FORGED_CHECKPOINT)
    assert result.detail == "signature (database)"


def test_a_chain_that_did_not_move_is_not_signed_again(make_workspace):
    workspace = make_workspace()  # holds its creation entries
    assert checkpoint_create(workspace=workspace).seq == _head(workspace).seq
    assert checkpoint_create(workspace=workspace) is None
