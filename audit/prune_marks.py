"""Retention checkpoints: the signed `audit.pruned` entry that vouches for the entries a
prune removed. Read by verification and written by pruning, so it sits below both."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

from audit.models import AuditAction, AuditEntry
from common.secrets import pepper

if TYPE_CHECKING:
    from tenants.models import Workspace


def _signing_key() -> bytes:
    configured = settings.WARDEN_AUDIT_CHECKPOINT_KEY
    secret = configured.encode() if configured else pepper()
    return hmac.new(secret, b"warden.audit.checkpoint", hashlib.sha256).digest()


def checkpoint_signature(workspace_id, through_seq: int, through_hash: str) -> str:
    message = f"{workspace_id}|{int(through_seq)}|{through_hash}".encode()
    return hmac.new(_signing_key(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    seq: int  # the audit.pruned entry itself
    through_seq: int
    through_hash: str
    signature_valid: bool


def latest_checkpoint(workspace: Workspace, *, up_to_seq: int | None = None) -> Checkpoint | None:
    """The newest retention checkpoint still in the chain (it supersedes older ones)."""
    rows = AuditEntry.objects.filter(workspace=workspace, action=AuditAction.AUDIT_PRUNED)
    if up_to_seq is not None:
        rows = rows.filter(seq__lte=up_to_seq)
    row = rows.order_by("-seq").values_list("seq", "input").first()
    if row is None:
        return None
    seq, data = row
    try:
        through_seq = int(data["pruned_through_seq"])
        through_hash = str(data["pruned_through_hash"])
        signature = str(data["signature"])
    except (KeyError, TypeError, ValueError):
        return Checkpoint(seq, 0, "", signature_valid=False)
    expected = checkpoint_signature(workspace.pk, through_seq, through_hash)
    return Checkpoint(
        seq, through_seq, through_hash, signature_valid=hmac.compare_digest(signature, expected)
    )
