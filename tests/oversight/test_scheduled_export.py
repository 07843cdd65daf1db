"""Scheduled audit export: resumes from the last exported seq after a failure and
never sends an entry twice."""

import json

import pytest

from approvals.guard import operator_seeding
from audit.models import AuditCheckpoint, AuditEntry
from audit.services import checkpoint_create
from common.errors import WardenError
from notifications import signing
from oversight.models import AuditExportBatch, AuditExportDestination
from oversight.scheduled_export import checkpoints_deliver, destination_configure, export_run
from oversight.tasks import checkpoint_all, export_all
from tests.audit.helpers import append
from tests.notifications.conftest import SYSTEM


@pytest.fixture
def export_root(tmp_path, settings):
    settings.WARDEN_EXPORT_DIRECTORY_ROOTS = [str(tmp_path)]
    return tmp_path


@pytest.fixture
def to_directory(live_workspace, export_root):
    target = export_root / "acme"
    with operator_seeding():
        destination_configure(
            reason="test set-up",
            workspace=live_workspace,
            kind="directory",
            directory=str(target),
            actor=SYSTEM,
            operator=True,
        )
    return target


def exported_seqs(directory):
    seqs = []
    for path in sorted(directory.glob("*.jsonl")):
        seqs += [json.loads(line)["seq"] for line in path.read_text().splitlines()]
    return seqs


def all_seqs(workspace):
    return list(
        AuditEntry.objects.filter(workspace=workspace).order_by("seq").values_list("seq", flat=True)
    )


def test_directory_export_writes_every_entry_once(live_workspace, to_directory):
    run = export_run(workspace=live_workspace)
    # One batch of history, then one holding only the run's own audit.exported entry.
    assert run.batches == 2 and not run.error
    first = exported_seqs(to_directory)
    assert first == list(range(1, run.last_exported_seq + 1))
    append(live_workspace, 5)
    export_run(workspace=live_workspace)
    seqs = exported_seqs(to_directory)
    assert len(seqs) == len(set(seqs))  # nothing twice
    assert seqs == all_seqs(live_workspace)[: len(seqs)]


def test_exported_lines_are_the_chain_as_stored(live_workspace, to_directory):
    export_run(workspace=live_workspace)
    rows = []
    for path in sorted(to_directory.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    stored = {e.seq: e.hash for e in AuditEntry.objects.filter(workspace=live_workspace)}
    assert all(row["hash"] == stored[row["seq"]] for row in rows)
    assert rows[1]["prev_hash"] == rows[0]["hash"]


def test_export_bookkeeping_does_not_feed_itself(live_workspace, to_directory):
    from oversight.scheduled_export import export_batch

    export_batch(workspace=live_workspace)  # records one audit.exported entry
    assert AuditEntry.objects.filter(action="audit.exported").count() == 1
    export_batch(workspace=live_workspace)  # exports it, records nothing new
    assert AuditEntry.objects.filter(action="audit.exported").count() == 1
    assert export_run(workspace=live_workspace).batches == 0
    assert exported_seqs(to_directory) == all_seqs(live_workspace)


def test_batches_respect_the_batch_size(live_workspace, export_root):
    with operator_seeding():
        destination_configure(
            reason="test set-up",
            workspace=live_workspace,
            kind="directory",
            directory=str(export_root / "small"),
            batch_size=2,
            actor=SYSTEM,
            operator=True,
        )
    append(live_workspace, 4)
    run = export_run(workspace=live_workspace, max_batches=2)
    assert run.batches == 2 and run.entries == 4 and run.last_exported_seq == 4
    assert len(list((export_root / "small").glob("*.jsonl"))) == 2


def test_crash_after_writing_before_recording_rewrites_the_same_file(
    live_workspace, to_directory, monkeypatch
):
    def crash(**kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(AuditExportBatch.objects, "create", crash)
    with pytest.raises(RuntimeError):
        export_run(workspace=live_workspace)
    assert AuditExportDestination.objects.get().last_exported_seq == 0
    monkeypatch.undo()
    export_run(workspace=live_workspace)
    files = sorted(path.name for path in to_directory.glob("*.jsonl"))
    assert files[0].endswith("-000000000001.jsonl")  # rewritten, not duplicated
    assert not any(name.endswith(".tmp") for name in files)
    seqs = exported_seqs(to_directory)
    assert len(seqs) == len(set(seqs))


def test_only_operators_choose_a_directory_inside_the_roots(live_workspace, export_root):
    with pytest.raises(WardenError) as refused:
        destination_configure(
            reason="test set-up",
            workspace=live_workspace,
            kind="directory",
            directory=str(export_root),
            actor=SYSTEM,
        )
    assert refused.value.code == "permission_denied"
    for outside in ("/etc", str(export_root / ".." / "elsewhere"), "relative/dir"):
        with pytest.raises(WardenError) as refused:
            destination_configure(
                reason="test set-up",
                workspace=live_workspace,
                kind="directory",
                directory=outside,
                actor=SYSTEM,
                operator=True,
            )
        assert refused.value.code == "validation_error"


def test_directory_exports_are_off_without_roots(live_workspace, settings, tmp_path):
    settings.WARDEN_EXPORT_DIRECTORY_ROOTS = []
    with pytest.raises(WardenError, match="not enabled"):
        destination_configure(
            reason="test set-up",
            workspace=live_workspace,
            kind="directory",
            directory=str(tmp_path),
            actor=SYSTEM,
            operator=True,
        )


@pytest.fixture
def to_webhook(live_workspace, receiver, allow_hosts, allow_http):
    allow_hosts(live_workspace)
    with operator_seeding():
        configured = destination_configure(
            reason="test set-up",
            workspace=live_workspace,
            kind="webhook",
            url=receiver.url,
            actor=SYSTEM,
            batch_size=4,
        )
    receiver.secret = configured.secret
    return configured


def accepted_seqs(receiver):
    seqs = []
    seen = set()
    for got in receiver.received:
        delivery = got.headers[signing.DELIVERY_HEADER]
        if got.valid and delivery in receiver.processed and delivery not in seen:
            seen.add(delivery)
            seqs += [json.loads(line)["seq"] for line in got.body.decode().splitlines()]
    return seqs


def test_webhook_export_is_signed_jsonl(live_workspace, to_webhook, receiver):
    assert to_webhook.secret and to_webhook.secret not in repr(to_webhook)
    export_run(workspace=live_workspace, max_batches=1)
    got = receiver.received[0]
    assert got.valid
    assert got.headers["Content-Type"] == "application/x-ndjson"
    lines = got.body.decode().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4]
    assert got.headers["X-Warden-Export-First-Seq"] == "1"
    assert got.headers["X-Warden-Export-Last-Seq"] == "4"


def test_webhook_export_resumes_after_a_failure_without_repeats(
    live_workspace, to_webhook, receiver
):
    receiver.statuses = [200, 500]
    first = export_run(workspace=live_workspace)
    assert first.batches == 1 and "HTTP 500" in first.error
    destination = AuditExportDestination.objects.get()
    assert destination.last_exported_seq == 4 and destination.consecutive_failures == 1
    second = export_run(workspace=live_workspace)
    assert not second.error
    destination.refresh_from_db()
    assert destination.consecutive_failures == 0 and destination.last_error == ""
    # The failed batch was resent with the same delivery id; each entry accepted once.
    ids = [got.headers[signing.DELIVERY_HEADER] for got in receiver.received]
    assert ids[1] == ids[2]
    seqs = accepted_seqs(receiver)
    assert seqs == sorted(set(seqs))
    assert seqs == all_seqs(live_workspace)[: len(seqs)]
    assert destination.last_exported_seq == seqs[-1]


def test_webhook_destination_must_be_allowlisted(live_workspace, allow_http):
    with pytest.raises(WardenError, match="allowlist"):
        destination_configure(
            reason="test set-up",
            workspace=live_workspace,
            kind="webhook",
            url="https://logs.example.com/in",
            actor=SYSTEM,
        )


def test_export_task_retries_failures_and_fans_out(
    live_workspace, to_webhook, receiver, eager_retries
):
    receiver.statuses = [503]
    assert export_all.delay().get() == 1
    destination = AuditExportDestination.objects.get()
    assert destination.last_exported_seq == max(all_seqs(live_workspace))
    assert destination.consecutive_failures == 0
    assert len(receiver.received) == len(receiver.processed) + 1  # one 503, then all accepted


def test_configuration_is_audited_without_the_secret(live_workspace, to_webhook):
    entry = AuditEntry.objects.filter(target_type="audit_export_destination").get()
    assert entry.action == "workspace.settings_changed"
    assert to_webhook.secret not in json.dumps(entry.input)


def test_a_failing_export_raises_one_exception_per_failure_streak(
    live_workspace, to_webhook, receiver, settings
):
    from audit.models import ExceptionRecord

    settings.WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES = 2
    receiver.status = 500
    for _ in range(3):
        assert export_run(workspace=live_workspace).error
    [record] = ExceptionRecord.objects.filter(workspace=live_workspace, kind="delivery_failure")
    assert record.evidence["consecutive_failures"] == 2
    assert record.evidence["waiting_from_seq"] == 1
    assert record.audit_entry.action == "audit.exported"
    assert record.audit_entry.outcome == "delivery_failure"
    assert AuditExportDestination.objects.get().last_exported_seq == 0
    receiver.status = 200
    assert not export_run(workspace=live_workspace).error
    assert AuditExportDestination.objects.get().consecutive_failures == 0


# --- signed checkpoints go to the same destination ---------------------------------------


def test_a_checkpoint_is_posted_signed_to_the_webhook_and_retried_after_a_refusal(
    live_workspace, to_webhook, receiver
):
    checkpoint = checkpoint_create(workspace=live_workspace)
    receiver.statuses = [503]
    assert checkpoints_deliver(workspace=live_workspace) == 0
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).delivered_at is None
    assert checkpoint_all.delay().get() == 0  # nothing new to sign; delivery retried
    got = receiver.received[-1]
    assert got.valid  # signed with the destination's secret, like the entry batches
    assert got.headers[signing.EVENT_HEADER] == "audit.checkpoint"
    assert got.headers["Content-Type"] == "application/json"
    assert (
        got.headers[signing.DELIVERY_HEADER]
        == receiver.received[0].headers[signing.DELIVERY_HEADER]
    )  # the same delivery id for the same checkpoint
    document = json.loads(got.body)
    assert (document["seq"], document["hash"]) == (checkpoint.seq, checkpoint.hash)
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).delivered_to == receiver.url


def test_a_checkpoint_made_inside_a_write_leaves_right_after_the_commit(
    live_workspace, to_directory, settings, django_capture_on_commit_callbacks
):
    settings.WARDEN_AUDIT_CHECKPOINT_EVERY = 3
    head = AuditEntry.objects.filter(workspace=live_workspace).order_by("-seq").first().seq
    with django_capture_on_commit_callbacks(execute=True):
        append(live_workspace, 3 - head % 3)  # reaches the next multiple of 3
    [written] = to_directory.glob("*checkpoint*.json")
    seq = json.loads(written.read_text())["seq"]
    assert seq % 3 == 0 and seq > head
    assert AuditCheckpoint.objects.get(workspace=live_workspace, seq=seq).delivered_at
