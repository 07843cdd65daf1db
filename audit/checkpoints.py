"""Signed checkpoints: what the chain looked like, in words the database cannot forge.

A checkpoint is the canonical JSON (keys sorted, compact, UTF-8) of
    {"type": "warden.audit.checkpoint", "v": 1, "workspace": "<uuid>", "seq": N,
     "hash": "<hash of entry N>", "signed_at": "<UTC, microseconds, Z>", "key_id": "..."}
signed with Ed25519 (audit/signing.py); the exported line is that object plus
"signature" (base64). Anyone with the public key verifies it offline (docs).

One is made every WARDEN_AUDIT_CHECKPOINT_EVERY entries (inside the audited write that
reaches the multiple, under the chain-head lock) and by the `audit.checkpoint_all` beat
task every WARDEN_AUDIT_CHECKPOINT_SECONDS for chains that moved since their last one.
Before signing, the entries since the previous checkpoint are verified (links, hashes,
entry MACs): a checkpoint never launders entries someone slipped into the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audit import signing
from audit.chain import canonical_json, format_timestamp
from audit.models import AuditChainHead, AuditCheckpoint

if TYPE_CHECKING:
    from tenants.models import Workspace

CHECKPOINT_TYPE = "warden.audit.checkpoint"


def checkpoint_every() -> int:
    return max(int(settings.WARDEN_AUDIT_CHECKPOINT_EVERY), 1)


def checkpoint_payload(checkpoint: AuditCheckpoint) -> dict:
    """The signed fields (everything but the signature)."""
    return {
        "type": CHECKPOINT_TYPE,
        "v": 1,
        "workspace": str(checkpoint.workspace_id),
        "seq": int(checkpoint.seq),
        "hash": checkpoint.hash,
        "signed_at": format_timestamp(checkpoint.signed_at),
        "key_id": checkpoint.key_id,
    }


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict:
    """What is exported: the signed fields plus the signature."""
    return {**checkpoint_payload(checkpoint), "signature": checkpoint.signature}


def checkpoint_line(checkpoint: AuditCheckpoint) -> str:
    return canonical_json(checkpoint_document(checkpoint)).decode("utf-8") + "\n"


@dataclass(frozen=True)
class SignedPoint:
    """A checkpoint as the verifier sees it, from the table or an exported file. Its
    signature is checked only when a verdict depends on it (`signature_valid`): a
    verifier walking a long chain with a checkpoint every few minutes should not spend
    more time on signatures than on the chain."""

    seq: int
    hash: str
    source: str  # "database" or the file name
    workspace: str
    signed_at: str
    key_id: str
    signature: str

    def payload(self) -> dict:
        return {
            "type": CHECKPOINT_TYPE,
            "v": 1,
            "workspace": self.workspace,
            "seq": self.seq,
            "hash": self.hash,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
        }


def signature_valid(point: SignedPoint, keys: dict) -> bool:
    """Does the point carry a signature by a trusted key over exactly what it says?"""
    public = keys.get(point.key_id)
    if public is None:
        return False
    return signing.verify(canonical_json(point.payload()), point.signature, public)


def stored_points(workspace: Workspace, *, latest_only: bool = False) -> list[SignedPoint]:
    """The workspace's checkpoints from the table, oldest first (signatures unchecked)."""
    rows = AuditCheckpoint.objects.filter(workspace=workspace)
    rows = rows.order_by("-seq")[:1] if latest_only else rows.order_by("seq")
    ws = str(workspace.pk)
    return [
        SignedPoint(seq, digest, "database", ws, format_timestamp(at), key, signature)
        for seq, digest, at, key, signature in rows.values_list(
            "seq", "hash", "signed_at", "key_id", "signature"
        )
    ]


class CheckpointFileError(ValueError):
    """An exported checkpoint file that cannot be read."""


def _file_lines(path: Path) -> Iterable[tuple[str, str]]:
    paths = sorted(path.glob("*checkpoint*.json*")) if path.is_dir() else [path]
    for one in paths:
        for line in one.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield one.name, line


def file_points(workspace: Workspace, path: str | Path) -> list[SignedPoint]:
    """This workspace's checkpoints from an exported file (JSON lines) or a directory of
    them, oldest first (signatures unchecked); lines of other workspaces are skipped,
    anything that is not a checkpoint line is refused."""
    workspace_id = str(workspace.pk)
    points = []
    try:
        lines = list(_file_lines(Path(path)))
    except OSError as exc:
        raise CheckpointFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    for name, line in lines:
        try:
            document = json.loads(line)
            if document["type"] != CHECKPOINT_TYPE:
                raise ValueError
            if document["workspace"] != workspace_id:
                continue
            point = SignedPoint(
                int(document["seq"]),
                str(document["hash"]),
                name,
                workspace_id,
                str(document["signed_at"]),
                str(document["key_id"]),
                str(document["signature"]),
            )
        except (ValueError, KeyError, TypeError):
            raise CheckpointFileError(f"{name}: not a checkpoint line") from None
        points.append(point)
    return sorted(points, key=lambda p: p.seq)


def checkpoint_sign(workspace: Workspace, seq: int, entry_hash: str) -> AuditCheckpoint:
    checkpoint = AuditCheckpoint(
        workspace=workspace,
        seq=seq,
        hash=entry_hash,
        signed_at=timezone.now(),
        key_id=signing.key_id(),
    )
    checkpoint.signature = signing.sign(canonical_json(checkpoint_payload(checkpoint)))
    checkpoint.save(force_insert=True)
    return checkpoint


def workspaces_due() -> list:
    """Workspaces whose chain head moved past their latest checkpoint."""
    latest = (
        AuditCheckpoint.objects.filter(workspace=OuterRef("workspace"))
        .order_by("-seq")
        .values("seq")[:1]
    )
    heads = AuditChainHead.objects.annotate(signed=Subquery(latest)).filter(seq__gt=0)
    return [
        head.workspace_id
        for head in heads.only("workspace", "seq")
        if head.signed is None or head.signed < head.seq
    ]
