"""The hash chain, specified so anyone can re-verify it (docs: "Verifying a chain").

hash = SHA-256( prev_hash (64 lowercase hex chars, ASCII) || canonical_json(entry) )
canonical_json: UTF-8, keys sorted, no whitespace, non-ASCII kept as UTF-8
(Python: json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)).

Two implementations live here on purpose: `entry_payload` + `compute_hash` is the
readable reference (and what the documentation recipe mirrors); `row_hasher` builds the same
bytes field by field without building a dict per row, which is what lets
`verify_chain` walk well over 100,000 entries a second. A test holds them equal.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from audit.columns import ENTRY_COLUMNS, UNCHAINED_COLUMNS

GENESIS_HASH = "0" * 64

CHAINED_FIELDS = (
    "workspace",
    "seq",
    *(name for name in ENTRY_COLUMNS if name not in UNCHAINED_COLUMNS),
)

# What a queued entry (audit group commit) carries before it has a place in the chain:
# every column its chain entry will hold except seq and the hashes. The queue MAC is
# over the canonical JSON of exactly these (audit.signing.pending_mac_checker).
PENDING_FIELDS = ("workspace", *ENTRY_COLUMNS)

# Values fetched per row by the fast path, in this order (see `row_hasher`).
ROW_FIELDS = (*CHAINED_FIELDS[1:], "prev_hash", "hash")


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


def pending_message(workspace_id: Any, values: dict[str, Any]) -> bytes:
    """The bytes a queued entry's MAC covers: canonical JSON of PENDING_FIELDS, with the
    workspace as a UUID string and created_at formatted as in the chain. `values` are
    in the form the database gives back (the writer normalises them first)."""
    payload = {name: values[name] for name in PENDING_FIELDS[1:]}
    payload["workspace"] = str(workspace_id)
    payload["created_at"] = format_timestamp(values["created_at"])
    payload["type"] = "warden.audit.pending"
    return canonical_json(payload)


def compute_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(payload)).hexdigest()


# --- Write-side normalisation ----------------------------------------------------------
# What is hashed must be exactly what the database gives back, on PostgreSQL (jsonb,
# inet) and SQLite alike. So before hashing, values are brought to the form they will
# be read back in: JSON round trip (tuples -> lists, non-str keys -> str, UUIDs and
# datetimes -> strings), NUL characters and lone surrogates (refused by PostgreSQL text
# and jsonb, and not UTF-8) replaced by U+FFFD,
# non-finite floats -> strings, -0.0 -> 0.0, and floats Python prints with an exponent
# but jsonb prints as integers (1e16 and larger) -> the int jsonb gives back.

_FLOAT_AS_INT_FROM = 1e16


def _clean_str(value: str) -> str:
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (JSON "\ud800"): not storable, not hashable
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= _FLOAT_AS_INT_FROM:
            return int(Decimal(repr(value)))
        return value + 0.0  # -0.0 -> 0.0
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def normalize_json(value: Any) -> Any:
    """A JSON-safe copy of `value` that survives a database round trip unchanged."""
    return _clean(json.loads(json.dumps(value, cls=DjangoJSONEncoder)))


def clean_text(value: str) -> str:
    return _clean_str(value) if value else value


# --- Fast path -------------------------------------------------------------------------

_encode_str = json.encoder.encode_basestring  # the C encoder json.dumps uses (ensure_ascii=False)


def _make_json_encoder() -> Callable[[Any], str]:
    """Canonical JSON text of a value: json.dumps(sort_keys, compact, ensure_ascii=False),
    with CPython's C encoder built once instead of on every call."""
    make = json.encoder.c_make_encoder
    if make is None:
        return json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    encoder = make(None, None, _encode_str, None, ":", ",", True, False, True)
    return lambda value: "".join(encoder(value, 0))


_encode_json = _make_json_encoder()
canonical_json_text = _encode_json  # canonical_json() as str, for JSON-safe values
_scan_json = json.JSONDecoder().scan_once  # C scanner; jsonb text has no leading blanks


def decode_json_text(text: str) -> Any:
    return _scan_json(text, 0)[0]


def fast_timestamp(value: datetime) -> str:
    """format_timestamp, about 4x faster for the UTC datetimes Django returns."""
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def row_hasher(workspace_id: Any, *, input_as_text: bool = False) -> Callable[[str, tuple], str]:
    """`hash_row(prev_hash, row)` for a row tuple in ROW_FIELDS order (extra trailing
    values are ignored).

    `created_at` may be a datetime or the already formatted timestamp string; with
    `input_as_text`, `input` is the JSON text the database returned. Keys appear in
    sorted order: action, actor, client_ip, created_at, decision, input, outcome,
    policy_version, rationale, request_id, seq, target_id, target_type, tool,
    workspace. The workspace suffix is the same for every row, so it is built once.
    Text columns are NOT NULL in the table, so only client_ip and policy_version can
    be null."""
    tail = ',"workspace":' + _encode_str(str(workspace_id)) + "}"
    sha256 = hashlib.sha256
    enc = _encode_str
    encode_json = _encode_json
    scan = _scan_json

    def hash_row(prev_hash: str, row: tuple) -> str:
        (
            seq,
            created_at,
            actor,
            action,
            target_type,
            target_id,
            tool,
            input_,
            decision,
            rationale,
            policy_version,
            request_id,
            client_ip,
            outcome,
        ) = row[:14]
        if input_as_text:
            input_ = "{}" if input_ == "{}" else encode_json(scan(input_, 0)[0])
        else:
            input_ = "{}" if input_ == {} else encode_json(input_)
        if created_at.__class__ is not str:
            created_at = fast_timestamp(created_at)
        body = "".join(
            (
                prev_hash,
                '{"action":',
                enc(action),
                ',"actor":',
                enc(actor),
                ',"client_ip":',
                "null" if client_ip is None else enc(client_ip),
                ',"created_at":',
                enc(created_at),
                ',"decision":',
                enc(decision),
                ',"input":',
                input_,
                ',"outcome":',
                enc(outcome),
                ',"policy_version":',
                "null" if policy_version is None else str(int(policy_version)),
                ',"rationale":',
                enc(rationale),
                ',"request_id":',
                enc(request_id),
                ',"seq":',
                str(int(seq)),
                ',"target_id":',
                enc(target_id),
                ',"target_type":',
                enc(target_type),
                ',"tool":',
                enc(tool),
                tail,
            )
        )
        return sha256(body.encode("utf-8")).hexdigest()

    return hash_row
