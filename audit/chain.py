"""The hash chain, specified so anyone can re-verify it (README: "Verifying a chain").

hash = SHA-256( prev_hash (64 lowercase hex chars, ASCII) || canonical_json(entry) )
canonical_json: UTF-8, keys sorted, no whitespace, non-ASCII kept as UTF-8.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

CHAINED_FIELDS = (
    "workspace",
    "seq",
    "created_at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "tool",
    "input",
    "decision",
    "rationale",
    "policy_version",
    "request_id",
    "client_ip",
    "outcome",
)


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def entry_payload(entry) -> dict[str, Any]:
    """The chained fields of an AuditEntry (or of an exported JSON row)."""
    get = entry.get if isinstance(entry, dict) else lambda f: getattr(entry, f)
    payload = {}
    for field in CHAINED_FIELDS:
        if field == "workspace":
            value = str(entry["workspace"] if isinstance(entry, dict) else entry.workspace_id)
        else:
            value = get(field)
        if isinstance(value, datetime):
            value = format_timestamp(value)
        payload[field] = value
    return payload


def compute_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(payload)).hexdigest()
