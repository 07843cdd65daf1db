"""Scheduled audit export to a customer-owned destination (docs: "Scheduled export").

Each batch is: claim the workspace's destination row (FOR UPDATE SKIP LOCKED, so two
runs never send the same entries), read up to `batch_size` entries after the cursor,
send them, and only after the destination accepted them record the batch and move the
cursor, in one transaction. A failed send leaves the cursor where it was, so the next
run resumes from the last exported sequence number; under normal operation no entry is
sent twice. If a worker dies between a successful send and the commit, the batch is
sent again: a directory export then rewrites the same file (files are named after their
first sequence number), and a webhook receiver sees the same X-Warden-Delivery id and
the same `seq` values, so it can drop the repeat.

Destinations:
- directory: JSONL files `warden-audit-<slug>-<first seq>.jsonl`, written atomically
  (temporary file, fsync, rename) into a directory inside one of the operator's
  WARDEN_EXPORT_DIRECTORY_ROOTS. Only platform operators may set a directory.
- webhook: an HTTPS POST of the JSONL batch (application/x-ndjson), signed like
  notification webhooks, to a URL on the workspace's webhook host allowlist.

The destination's `format` says how each entry is written (audit/siem.py): Warden's
JSONL (the default), OCSF 1.2.0 API Activity events (`.ocsf.jsonl` files,
application/x-ndjson) or RFC 5424 syslog lines (`.syslog` files, text/plain). The
cursor, batches and checkpoints are the same whatever the format, and every format
carries the chained row unchanged, so the customer's copy verifies with the recipe.

Signed chain checkpoints (audit/checkpoints.py) go to the same destination as soon as
they are made, independently of the entry batches: a directory gets one file per
checkpoint, `warden-audit-<slug>-checkpoint-<seq>.json` (one JSON line; `cat` them into
one file for `audit_verify --checkpoints`, or pass the directory); a webhook gets a POST
of that line (application/json, event `audit.checkpoint`). A checkpoint is marked
delivered only once the destination accepted it; undelivered ones are retried by the
checkpoint beat task.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.checkpoints import checkpoint_line
from audit.events import EVENTS, TargetType
from audit.export import iter_export_lines
from audit.models import AuditAction, AuditCheckpoint, ExceptionRecord
from audit.services import audit_record, audit_record_change, exception_record
from audit.siem import FORMATS, encoder
from common import egress
from common.actor import Actor
from common.errors import WardenError
from notifications import signing, transport
from notifications.selectors import webhook_host_allowlist
from oversight.models import AuditExportBatch, AuditExportDestination
from tenants.models import Workspace

logger = logging.getLogger("warden.audit.export")
ACTOR = Actor.system("scheduled-export")
EXPORT_NAMESPACE = uuid.UUID("5b0a6f4e-8f0e-4d53-9a4b-3c8f2f0e7a11")
EXPORT_EVENT = "audit.export"
MAX_BATCH_SIZE = 5000


class ExportFailed(Exception):
    """The destination did not accept a batch (message is safe to store and show)."""


class BatchOutcome(StrEnum):
    SENT = "sent"
    NOTHING_NEW = "nothing_new"
    BUSY = "busy"  # another run holds the destination, or it is disabled/missing
    FAILED = "failed"


@dataclass(frozen=True)
class BatchResult:
    outcome: BatchOutcome
    entries: int = 0
    error: str = ""


@dataclass(frozen=True)
class ExportRun:
    batches: int
    entries: int
    last_exported_seq: int
    error: str = ""


@dataclass(frozen=True)
class ConfiguredDestination:
    destination: AuditExportDestination
    secret: str | None  # the webhook signing secret, shown once when (re)issued

    def __repr__(self) -> str:
        return f"ConfiguredDestination({self.destination!r}, secret='***')"


def export_roots() -> list[Path]:
    return [Path(root).resolve() for root in settings.WARDEN_EXPORT_DIRECTORY_ROOTS]


def check_directory(directory: str) -> Path:
    roots = export_roots()
    if not roots:
        raise egress.DestinationRefused(
            "Directory exports are not enabled on this server (WARDEN_EXPORT_DIRECTORY_ROOTS)."
        )
    path = Path(directory or "")
    if not path.is_absolute():
        raise egress.DestinationRefused("The export directory must be an absolute path.")
    resolved = path.resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        raise egress.DestinationRefused(
            "The export directory must be inside one of the server's export roots."
        )
    return resolved


def _refusal(field: str, exc: Exception) -> WardenError:
    return WardenError("validation_error", str(exc), {field: [str(exc)]})


@transaction.atomic
def destination_configure(
    *,
    workspace: Workspace,
    kind: str,
    actor: Actor,
    directory: str = "",
    url: str = "",
    enabled: bool = True,
    batch_size: int = 500,
    operator: bool = False,
    rotate_secret: bool = False,
    format: str = "jsonl",
    reason: str = "",
) -> ConfiguredDestination:
    """Create or change the workspace's destination; the cursor is kept (a new format
    applies from the next batch on)."""
    if kind not in AuditExportDestination.Kind.values:
        raise WardenError("validation_error", "Unknown destination kind.", {"kind": [kind]})
    if format not in FORMATS:
        raise WardenError(
            "validation_error",
            "Unknown export format.",
            {"format": [f"one of {', '.join(FORMATS)}"]},
        )
    if not 1 <= int(batch_size) <= MAX_BATCH_SIZE:
        raise WardenError(
            "validation_error", "batch_size out of range.", {"batch_size": [f"1-{MAX_BATCH_SIZE}"]}
        )
    existing = AuditExportDestination.objects.filter(workspace=workspace).first()
    if kind == AuditExportDestination.Kind.DIRECTORY:
        try:
            directory = str(check_directory(directory))
        except egress.DestinationRefused as exc:
            raise _refusal("directory", exc) from None
        kept = (
            existing is not None
            and existing.kind == AuditExportDestination.Kind.DIRECTORY
            and existing.directory == directory
        )
        if not operator and not kept:
            raise WardenError(
                "permission_denied", "Only platform operators may set an export directory."
            )
        url = ""
    else:
        try:
            egress.check_destination(url, webhook_host_allowlist(workspace))
        except egress.DestinationRefused as exc:
            raise _refusal("url", exc) from None
        directory = ""
    destination = (
        AuditExportDestination.objects.select_for_update().filter(workspace=workspace).first()
    )
    before = destination.snapshot() if destination else None
    if destination is None:
        destination = AuditExportDestination(workspace=workspace)
    new_secret = None
    needs_secret = kind == AuditExportDestination.Kind.WEBHOOK and (
        rotate_secret or not destination.secret
    )
    if needs_secret:
        new_secret = signing.new_secret()
        destination.secret = new_secret
    elif kind == AuditExportDestination.Kind.DIRECTORY:
        destination.secret = ""
    destination.kind = kind
    destination.directory = directory
    destination.url = url.strip()
    destination.enabled = enabled
    destination.batch_size = int(batch_size)
    destination.format = format
    destination.save()
    if before != destination.snapshot() or new_secret:
        event = EVENTS[AuditAction.WORKSPACE_SETTINGS_CHANGED].change(
            target_type=TargetType.AUDIT_EXPORT_DESTINATION,
            target_id=workspace.pk,
            before=before,
            after=destination.snapshot(),
            reason=f"{reason} (signing secret issued)" if new_secret and reason else reason,
        )
        audit_record_change(event, workspace=workspace, actor=actor)
    return ConfiguredDestination(destination=destination, secret=new_secret)


def _iter_lines(workspace: Workspace, after_seq: int):
    return iter_export_lines(workspace, after_seq=after_seq)


def _take(
    workspace: Workspace, after_seq: int, limit: int, format: str = "jsonl"
) -> list[tuple[int, str, str]]:
    """(seq, action, line in `format`) for up to `limit` entries after `after_seq`."""
    lines = _iter_lines(workspace, after_seq)
    encode = None if format == "jsonl" else encoder(format, workspace_slug=workspace.slug)
    try:
        taken = []
        for line in itertools.islice(lines, limit):
            line = line.rstrip("\n")
            if not line:
                continue
            row = json.loads(line)
            if encode is not None:  # the JSONL line itself stays inside (chain fields kept)
                line = encode(row).rstrip("\n")
            taken.append((int(row["seq"]), str(row.get("action", "")), line))
        return taken
    finally:
        close = getattr(lines, "close", None)
        if close:
            close()


SUFFIXES = {"jsonl": ".jsonl", "ocsf": ".ocsf.jsonl", "syslog": ".syslog"}
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "ocsf": "application/x-ndjson",
    "syslog": "text/plain; charset=utf-8",
}


def _write_file(destination: AuditExportDestination, workspace: Workspace, first: int, body):
    directory = check_directory(destination.directory)
    suffix = SUFFIXES.get(destination.format, ".jsonl")
    return _write_atomically(directory, f"warden-audit-{workspace.slug}-{first:012d}{suffix}", body)


def _write_atomically(directory: Path, name: str, body: bytes) -> str:
    """Temporary file, fsync, rename, fsync the directory: all or nothing on disk."""
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{name}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags, 0o640)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return name
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return name


def _post_signed(destination, workspace, body: bytes, delivery_id: str, headers: dict) -> str:
    """POST `body` to the destination's URL (checked against the workspace's host
    allowlist), signed with its secret after `headers`; anything but a 2xx fails."""
    target = egress.check_destination(destination.url, webhook_host_allowlist(workspace))
    headers = {
        **headers,
        **signing.signed_headers(secret=destination.secret, body=body, delivery_id=delivery_id),
    }
    timeout = float(settings.WARDEN_WEBHOOK_TIMEOUT_SECONDS)
    response = transport.post(target, body, headers, timeout=timeout)
    if not 200 <= response.status < 300:
        raise ExportFailed(f"HTTP {response.status}")
    return destination.url


def _post(destination, workspace, first: int, last: int, body: bytes) -> str:
    delivery_id = str(uuid.uuid5(EXPORT_NAMESPACE, f"{workspace.pk}:{first}:{last}"))
    headers = {
        "Content-Type": CONTENT_TYPES.get(destination.format, "application/x-ndjson"),
        "User-Agent": "Warden-Export/1",
        signing.EVENT_HEADER: EXPORT_EVENT,
        "X-Warden-Export-First-Seq": str(first),
        "X-Warden-Export-Last-Seq": str(last),
        "X-Warden-Export-Format": destination.format,
    }
    return _post_signed(destination, workspace, body, delivery_id, headers)


def failure_alarm() -> int:
    return int(settings.WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES)


def _record_failing(destination: AuditExportDestination, workspace: Workspace, first: int):
    """Once per failure streak: the export keeps retrying, but people should know."""
    exception_record(
        workspace=workspace,
        actor=ACTOR,
        kind=ExceptionRecord.Kind.DELIVERY_FAILURE,
        severity=ExceptionRecord.Severity.HIGH,
        what=f"Audit export ({destination.kind}) failed "
        f"{destination.consecutive_failures} times in a row",
        why="The destination did not accept the next batch; the cursor has not moved, so "
        "nothing is lost, but the off-site copy is falling behind.",
        evidence={
            "kind": destination.kind,
            "target": destination.directory or destination.url,
            "consecutive_failures": destination.consecutive_failures,
            "last_error": destination.last_error,
            "waiting_from_seq": first,
        },
        mitigation="Fix the destination; the next run resumes from the cursor.",
        subject=f"audit_export:{workspace.slug}",
        action=AuditAction.AUDIT_EXPORTED,
    )


def export_batch(*, workspace: Workspace, now: datetime | None = None) -> BatchResult:
    with transaction.atomic():
        destination = (
            AuditExportDestination.objects.select_for_update(skip_locked=True)
            .filter(workspace=workspace, enabled=True)
            .first()
        )
        if destination is None:
            return BatchResult(BatchOutcome.BUSY)
        now = now or timezone.now()
        rows = _take(
            workspace, destination.last_exported_seq, destination.batch_size, destination.format
        )
        if not rows:
            return BatchResult(BatchOutcome.NOTHING_NEW)
        first, last = rows[0][0], rows[-1][0]
        body = "".join(f"{line}\n" for _, _, line in rows).encode("utf-8")
        destination.last_attempt_at = now
        try:
            if destination.kind == AuditExportDestination.Kind.DIRECTORY:
                target = _write_file(destination, workspace, first, body)
            else:
                target = _post(destination, workspace, first, last, body)
        except (
            ExportFailed,
            egress.DestinationRefused,
            transport.TransportError,
            OSError,
        ) as exc:
            destination.last_error = f"{type(exc).__name__}: {exc}"[:500]
            destination.consecutive_failures += 1
            destination.save(
                update_fields=["last_attempt_at", "last_error", "consecutive_failures"]
            )
            if destination.consecutive_failures == failure_alarm():
                _record_failing(destination, workspace, first)
            logger.warning(
                "audit export of %s (seq %s-%s) failed: %s",
                workspace.pk,
                first,
                last,
                destination.last_error,
            )
            return BatchResult(BatchOutcome.FAILED, error=destination.last_error)
        # Accepted: record the batch and move the cursor together.
        digest = hashlib.sha256(body).hexdigest()
        batch = AuditExportBatch.objects.create(
            workspace=workspace,
            kind=destination.kind,
            first_seq=first,
            last_seq=last,
            entries=len(rows),
            sha256=digest,
            target=target[:500],
            sent_at=now,
        )
        destination.last_exported_seq = last
        destination.last_success_at = now
        destination.last_error = ""
        destination.consecutive_failures = 0
        destination.save()
        # A batch of nothing but earlier export records is not itself recorded, or every
        # run would export the previous run's record forever.
        if any(action != AuditAction.AUDIT_EXPORTED for _, action, _ in rows):
            event = EVENTS[AuditAction.AUDIT_EXPORTED].event(
                target_type=TargetType.AUDIT_EXPORT_BATCH,
                target_id=batch.pk,
                input={
                    "kind": destination.kind,
                    "format": destination.format,
                    "first_seq": first,
                    "last_seq": last,
                    "entries": len(rows),
                    "sha256": digest,
                    "target": target[:500],
                },
                outcome="sent",
            )
            audit_record(event, workspace=workspace, actor=ACTOR)
        return BatchResult(BatchOutcome.SENT, entries=len(rows))


def export_run(*, workspace: Workspace, max_batches: int = 20) -> ExportRun:
    """Send batches until caught up, a send fails, or `max_batches` were sent."""
    batches = entries = 0
    error = ""
    for _ in range(max_batches):
        result = export_batch(workspace=workspace)
        if result.outcome != BatchOutcome.SENT:
            error = result.error
            break
        batches += 1
        entries += result.entries
    cursor = (
        AuditExportDestination.objects.filter(workspace=workspace)
        .values_list("last_exported_seq", flat=True)
        .first()
    )
    return ExportRun(batches=batches, entries=entries, last_exported_seq=cursor or 0, error=error)


CHECKPOINT_EVENT = "audit.checkpoint"
CHECKPOINTS_PER_RUN = 200


def checkpoints_pending_workspaces() -> list:
    """Workspaces with an enabled destination and a checkpoint not yet delivered."""
    enabled = AuditExportDestination.objects.filter(enabled=True).values("workspace_id")
    pending = AuditCheckpoint.objects.filter(delivered_at__isnull=True, workspace_id__in=enabled)
    return list(pending.values_list("workspace_id", flat=True).distinct())


def _send_checkpoint(destination, workspace: Workspace, checkpoint: AuditCheckpoint) -> str:
    body = checkpoint_line(checkpoint).encode("utf-8")
    if destination.kind == AuditExportDestination.Kind.DIRECTORY:
        directory = check_directory(destination.directory)
        name = f"warden-audit-{workspace.slug}-checkpoint-{checkpoint.seq:012d}.json"
        _write_atomically(directory, name, body)
        return str(directory / name)
    delivery_id = str(uuid.uuid5(EXPORT_NAMESPACE, f"{workspace.pk}:checkpoint:{checkpoint.seq}"))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Warden-Export/1",
        signing.EVENT_HEADER: CHECKPOINT_EVENT,
    }
    return _post_signed(destination, workspace, body, delivery_id, headers)


def checkpoints_deliver(*, workspace: Workspace, now: datetime | None = None) -> int:
    """Send the workspace's undelivered checkpoints, oldest first, to its destination;
    stops at the first refusal (the next beat run retries). Returns how many went out.
    Sending one twice is harmless: same file name, same delivery id."""
    destination = AuditExportDestination.objects.filter(workspace=workspace, enabled=True).first()
    if destination is None:
        return 0
    pending = AuditCheckpoint.objects.filter(workspace=workspace, delivered_at__isnull=True)
    sent = 0
    for checkpoint in pending.order_by("seq")[:CHECKPOINTS_PER_RUN]:
        try:
            target = _send_checkpoint(destination, workspace, checkpoint)
        except (
            ExportFailed,
            egress.DestinationRefused,
            transport.TransportError,
            OSError,
        ) as exc:
            logger.warning(
                "audit checkpoint #%s of %s not delivered: %s",
                checkpoint.seq,
                workspace.pk,
                f"{type(exc).__name__}: {exc}"[:300],
            )
            break
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(
            delivered_at=now or timezone.now(), delivered_to=target[:500]
        )
        sent += 1
    return sent
