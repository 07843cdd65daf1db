"""Migrations oversight.0001 and notifications.0008: the export destination, its batches
and anomaly findings move from notifications to oversight in state only. Their rows stay
where they are through the move and back, and so do their content types' permissions."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from approvals.guard import operator_seeding
from audit.services import exception_record
from oversight.models import AnomalyFinding, AuditExportBatch, AuditExportDestination
from tests.conftest import SYSTEM

BEFORE = [("notifications", "0007_approval_digest"), ("oversight", None)]
MOVED = ("auditexportdestination", "auditexportbatch", "anomalyfinding")

pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1]]).apps


def _content_type_ids(app_label: str) -> dict[str, int]:
    rows = ContentType.objects.filter(app_label=app_label, model__in=MOVED)
    return dict(rows.values_list("model", "pk"))


def _rows(workspace, key):
    with operator_seeding():  # set-up: a new destination is governed
        AuditExportDestination.objects.create(
            workspace=workspace, kind="directory", directory="exports", last_exported_seq=7
        )
    AuditExportBatch.objects.create(
        workspace=workspace,
        kind="directory",
        first_seq=1,
        last_seq=7,
        entries=7,
        sha256="a" * 64,
        target="batch-1.jsonl",
    )
    with transaction.atomic():
        exception = exception_record(
            workspace=workspace, actor=SYSTEM, kind="anomaly", severity="high", what="x", why="y"
        )
    now = timezone.now()
    AnomalyFinding.objects.create(
        workspace=workspace,
        key=key,
        kind="volume",
        window_start=now,
        window_end=now,
        exception_record=exception,
    )


def test_the_moved_models_keep_their_rows_and_content_types_both_ways(workspace, make_key):
    key, _ = make_key(workspace, scopes=["actions:read"])
    _rows(workspace, key)
    moved_types = _content_type_ids("oversight")
    assert set(moved_types) == set(MOVED)

    old = _migrate(BEFORE)  # backwards: notifications holds them again, same rows
    destination = old.get_model("notifications", "AuditExportDestination").objects.get()
    assert (destination.workspace_id, destination.last_exported_seq) == (workspace.pk, 7)
    assert old.get_model("notifications", "AuditExportBatch").objects.get().sha256 == "a" * 64
    assert old.get_model("notifications", "AnomalyFinding").objects.get().key_id == key.pk
    assert _content_type_ids("notifications") == moved_types
    assert _content_type_ids("oversight") == {}

    # Forward to the newest migrations of every app: later tests need the whole schema.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()
    assert AuditExportDestination.objects.get().last_exported_seq == 7
    assert AuditExportBatch.objects.get().target == "batch-1.jsonl"
    assert AnomalyFinding.objects.get().key_id == key.pk
    assert _content_type_ids("oversight") == moved_types
    assert _content_type_ids("notifications") == {}
