"""JSONL export of a workspace's chain, verifiable by the receiver (README recipe).

Each line is the canonical JSON (keys sorted, no whitespace, UTF-8) of one entry's
chained fields plus `prev_hash` and `hash`, newline-terminated. Rows are read in
keyset-paginated chunks on (workspace, seq) as tuples, so memory stays constant
however long the chain; the same generator serves the command, the scheduled export
and the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from audit.chain import ROW_FIELDS, fast_timestamp
from audit.models import AuditEntry
from tenants.models import Workspace

CHUNK_SIZE = 2000

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def encode_line(row: dict) -> str:
    """Canonical JSON of one exported row, newline-terminated."""
    return _encode(row) + "\n"


def export_queryset(workspace: Workspace, *, after_seq: int = 0, since: datetime | None = None):
    rows = AuditEntry.objects.filter(workspace=workspace, seq__gt=after_seq)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    return rows.order_by("seq")


def iter_export_rows(
    workspace: Workspace,
    *,
    after_seq: int = 0,
    since: datetime | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[dict]:
    """The exported objects, oldest first."""
    rows = export_queryset(workspace, after_seq=after_seq, since=since)
    workspace_id = str(workspace.pk)
    last = after_seq
    while True:
        chunk = list(rows.filter(seq__gt=last).values_list(*ROW_FIELDS)[:chunk_size])
        if not chunk:
            return
        for values in chunk:
            row = dict(zip(ROW_FIELDS, values, strict=True))
            row["created_at"] = fast_timestamp(row["created_at"])
            row["workspace"] = workspace_id
            yield row
        if len(chunk) < chunk_size:
            return
        last = chunk[-1][0]


def iter_export_lines(
    workspace: Workspace,
    *,
    after_seq: int = 0,
    since: datetime | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[str]:
    """One canonical JSON line per entry (str, trailing newline), oldest first."""
    for row in iter_export_rows(workspace, after_seq=after_seq, since=since, chunk_size=chunk_size):
        yield encode_line(row)


def export_count(workspace: Workspace, *, after_seq: int = 0, since: datetime | None = None) -> int:
    return export_queryset(workspace, after_seq=after_seq, since=since).count()
