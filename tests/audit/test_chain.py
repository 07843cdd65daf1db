"""The canonical JSON and both hash implementations agree, before and after the
database round trip."""

import json
from datetime import UTC, datetime

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.chain import (
    ROW_FIELDS,
    compute_hash,
    entry_payload,
    fast_timestamp,
    format_timestamp,
    normalize_json,
    row_hasher,
)
from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from audit.verify import verify_chain
from common.actor import Actor
from tests.audit.helpers import AGENT, HUMAN, append

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.db_independent  # both hashers over plain values, no row
@settings(max_examples=200, deadline=None)
@given(
    input_=st.dictionaries(st.text(), json_values, max_size=5),
    actor=st.text(min_size=1),
    text=st.text(),
    seq=st.integers(min_value=1, max_value=2**62),
    version=st.none() | st.integers(min_value=0, max_value=2**31),
    ip=st.none() | st.sampled_from(["10.0.0.1", "2001:db8::1"]),
    micro=st.integers(min_value=0, max_value=999_999),
)
def test_fast_hasher_equals_the_reference(input_, actor, text, seq, version, ip, micro):
    created = datetime(2026, 1, 2, 3, 4, 5, micro, tzinfo=UTC)
    payload = {
        "workspace": "7d3c6f0e-1111-4222-8333-444455556666",
        "seq": seq,
        "created_at": format_timestamp(created),
        "actor": actor,
        "action": "action.decided",
        "target_type": text,
        "target_id": "",
        "tool": text,
        "input": input_,
        "decision": "",
        "rationale": text,
        "policy_version": version,
        "request_id": "",
        "client_ip": ip,
        "outcome": "",
    }
    prev = "ab" * 32
    fast = row_hasher(payload["workspace"])(
        prev, tuple(created if f == "created_at" else payload[f] for f in ROW_FIELDS[:-2])
    )
    assert fast == compute_hash(prev, payload)
    as_text = row_hasher(payload["workspace"], input_as_text=True)(
        prev,
        tuple(
            json.dumps(input_) if f == "input" else format_timestamp(created) if f == "created_at"
            else payload[f]
            for f in ROW_FIELDS[:-2]
        ),
    )  # fmt: skip
    assert as_text == fast


def test_fast_timestamp_matches_reference_including_whole_seconds():
    for value in (
        datetime(2026, 11, 23, 11, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 11, 0, 0, 7, tzinfo=UTC),
    ):
        assert fast_timestamp(value) == format_timestamp(value)


def test_normalize_json_makes_values_database_stable():
    value = normalize_json(
        {"t": (1, 2), 3: "a\x00b", "inf": float("inf"), "big": 1e300, "neg0": -0.0, "s": "\ud800"}
    )
    assert value == {
        "t": [1, 2], "3": "a\ufffdb", "inf": "inf", "big": 10**300, "neg0": 0.0, "s": "\ufffd"
    }  # fmt: skip
    assert str(value["neg0"]) == "0.0"


def test_stored_hash_recomputes_after_database_round_trip(workspace):
    tricky = {"é": '☃ \u2028 "q" \\', "n": [1.5, -0.0, 1e-07, 1e300, 123456789012345678], "z": None}
    [entry] = append(workspace, actor=HUMAN, input={"params": tricky})
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.client_ip == "2001:db8::1"
    assert compute_hash(stored.prev_hash, entry_payload(stored)) == stored.hash
    assert stored.hash == entry.hash


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    input_=st.dictionaries(st.text(), json_values, max_size=4),
    text=st.text(),
    ip=st.none() | st.ip_addresses().map(str),
)
def test_any_input_survives_the_database_and_verifies(workspace, input_, text, ip):
    """Whatever an agent sends (unicode, NUL, lone surrogates, odd floats, any IP), the
    stored row hashes to its stored hash, on this database's fast verify path too."""
    actor = Actor(f"key:{text[:40]}", client_ip=ip, request_id=text[:64])
    with transaction.atomic():
        event = EVENTS[AuditAction.ACTION_DECIDED].event(
            tool=text, input={"params": {"value": input_, text: text}}, rationale=text
        )
        entry = audit_record(event, workspace=workspace, actor=actor)
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert compute_hash(stored.prev_hash, entry_payload(stored)) == stored.hash
    result = verify_chain(workspace)
    assert result.ok, result


def test_lone_surrogates_and_nul_from_an_agent_are_stored_and_verify(workspace):
    evil = "a\ud800b\x00c\udfff"
    with transaction.atomic():
        event = EVENTS[AuditAction.ACTION_DECIDED].event(
            tool=evil, input={"params": {evil: [evil]}}, rationale=evil
        )
        entry = audit_record(event, workspace=workspace, actor=HUMAN)
    assert entry.tool == "a\ufffdb\ufffdc\ufffd"
    assert verify_chain(workspace).ok


def test_text_that_cleaning_lengthens_still_fits_its_column(workspace):
    """A tool name already cut to its 200-character column, made of lone surrogates
    that the chain spells out as escapes, is stored cut to the column, not refused."""
    surrogates = "\udc80" * 200
    with transaction.atomic():
        event = EVENTS[AuditAction.ACTION_DECIDED].event(tool=surrogates)
        entry = audit_record(event, workspace=workspace, actor=AGENT)
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert len(stored.tool) == 200 and "\udc80" not in stored.tool
    assert verify_chain(workspace).ok
