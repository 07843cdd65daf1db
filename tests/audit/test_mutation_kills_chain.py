"""Tests written to kill surviving mutants of audit/chain.py (docs/mutation.md).

The chain is self-consistent: a change to how entries are hashed changes the writer and
the verifier alike, so every "chain intact" test stays green. What must not change is the
published recipe ("Verifying a chain"): anyone re-verifies an export with nothing but
SHA-256 and canonical JSON, and a queued entry's MAC written before an upgrade must still
verify after it. So these tests compute the expected bytes with the documented recipe,
written out here independently of audit.chain, and hold the module to it.
"""

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest

from audit.chain import (
    GENESIS_HASH,
    PENDING_FIELDS,
    ROW_FIELDS,
    canonical_json,
    clean_text,
    compute_hash,
    decode_json_text,
    entry_payload,
    fast_timestamp,
    format_timestamp,
    normalize_json,
    pending_message,
    row_hasher,
)

pytestmark = pytest.mark.db_independent

WORKSPACE = uuid.UUID("7d3c6f0e-1111-4222-8333-444455556666")
# 03:04:05.000005 at UTC+2: the chain spells it in UTC, microseconds zero-padded
CREATED = datetime(2026, 1, 2, 3, 4, 5, 5, tzinfo=timezone(timedelta(hours=2)))
CREATED_TEXT = "2026-01-02T01:04:05.000005Z"

COLUMNS = {
    "seq": 7,
    "actor": "agent:café-bot",
    "action": "action.decided",
    "target_type": "tool",
    "target_id": "crm.read",
    "tool": "crm.read",
    "input": {"b": [1, 2.5, None], "a": "ü", "z": {"y": True}},
    "decision": "allowed",
    "rationale": "the tool needs no confirmation",
    "policy_version": 3,
    "request_id": "req-1",
    "client_ip": "10.0.0.1",
    "outcome": "",
}
# what the chain hashes: every chained column, the workspace as a string, created_at in UTC
PAYLOAD = {**COLUMNS, "workspace": str(WORKSPACE), "created_at": CREATED_TEXT}


def documented_hash(prev_hash: str, payload: dict) -> str:
    """The recipe of docs "Verifying a chain", independent of audit.chain."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode("ascii") + body.encode("utf-8")).hexdigest()


def test_an_entrys_payload_is_exactly_its_chained_columns_in_utc():
    entry = SimpleNamespace(**COLUMNS, workspace_id=WORKSPACE, created_at=CREATED, mac="m")
    assert entry_payload(entry) == PAYLOAD
    # an exported JSON row names its workspace under "workspace"
    exported = {**COLUMNS, "workspace": str(WORKSPACE), "created_at": CREATED_TEXT, "hash": "h"}
    assert entry_payload(exported) == PAYLOAD


def test_the_hash_follows_the_published_recipe_byte_for_byte():
    prev = "ab" * 32
    assert canonical_json(PAYLOAD) == json.dumps(
        PAYLOAD, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert b"caf\xc3\xa9" in canonical_json(PAYLOAD)  # non-ASCII kept as UTF-8, not \u00e9
    assert compute_hash(prev, PAYLOAD) == documented_hash(prev, PAYLOAD)
    assert compute_hash(GENESIS_HASH, PAYLOAD) == documented_hash("0" * 64, PAYLOAD)
    # the fast path a verifier walks with: datetime or text timestamp, input as object or text
    row = tuple(CREATED if f == "created_at" else COLUMNS[f] for f in ROW_FIELDS[:-2])
    assert row_hasher(WORKSPACE)(prev, row) == documented_hash(prev, PAYLOAD)
    as_text = tuple(
        json.dumps(v) if f == "input" else CREATED_TEXT if f == "created_at" else v
        for f, v in zip(ROW_FIELDS[:-2], row, strict=True)
    )
    assert row_hasher(WORKSPACE, input_as_text=True)(prev, as_text) == documented_hash(
        prev, PAYLOAD
    )


def test_timestamps_are_spelled_in_utc_with_six_digit_microseconds():
    assert format_timestamp(CREATED) == CREATED_TEXT
    assert fast_timestamp(CREATED) == CREATED_TEXT
    assert fast_timestamp(datetime(2026, 1, 2, 1, 4, 5, 5, tzinfo=UTC)) == CREATED_TEXT


def test_timestamps_do_not_follow_the_servers_local_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # what a TIME_ZONE setting does to the process
    time.tzset()
    try:
        assert format_timestamp(CREATED) == CREATED_TEXT
        assert fast_timestamp(CREATED) == CREATED_TEXT
    finally:
        monkeypatch.undo()
        time.tzset()


def test_jsonb_text_decodes_to_the_value_it_spells():
    assert decode_json_text('{"a":[1,"\u00fc",null]}') == {"a": [1, "ü", None]}


def test_a_queued_entrys_mac_covers_every_pending_column_under_its_type():
    values = {**COLUMNS, "created_at": CREATED}
    values.pop("seq")
    values["actor_type"] = "agent"
    assert set(values) == set(PENDING_FIELDS[1:])  # the test covers every column
    expected = {
        **values,
        "workspace": str(WORKSPACE),
        "created_at": CREATED_TEXT,
        "type": "warden.audit.pending",
    }
    message = pending_message(WORKSPACE, values)
    assert message == json.dumps(
        expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def test_values_are_normalised_to_what_the_database_gives_back():
    ident = uuid.UUID("00000000-0000-4000-8000-000000000001")
    value = {
        "id": ident,
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "amount": Decimal("1.50"),
        "big": 1e16,  # jsonb prints 1e16 as an integer
        "below": 9.5e15,
        "neg": -0.0,
        "inf": float("inf"),
        "pair": (1, 2),
        3: "int key",
        "text": "a\x00b\ud800c",
    }
    got = normalize_json(value)
    assert got == {
        "id": str(ident),
        "at": "2026-01-02T03:04:05Z",
        "amount": "1.50",
        "big": 10**16,
        "below": 9.5e15,
        "neg": 0.0,
        "inf": "inf",
        "pair": [1, 2],
        "3": "int key",
        "text": "a\ufffdb\ufffdc",
    }
    assert type(got["big"]) is int and type(got["below"]) is float
    assert str(got["neg"]) == "0.0"
    assert clean_text("x\x00\udfff") == "x\ufffd\ufffd"
    assert clean_text("") == ""
