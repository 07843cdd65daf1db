"""audit_replay_run (issue 27, item 6): a recorded run (a key's calls in a window, or a
trace) replayed in order under the policy of its time and today's, against the
recorded outputs, each divergence reported; --fail-on-divergence makes it an exit
status."""

import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from approvals.asking import action_submit
from approvals.catalog import tool_create, tool_update
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ConfirmationRequest
from approvals.params import canonical_json
from approvals.results import action_report_result
from oversight.replay import trace_id_of
from tenants.services import workspace_update
from tests.conftest import SYSTEM
from tests.entry_points import entry_point

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def run(workspace, make_key):
    """A key's run: a read that reported its output, then a write that never did."""
    with operator_seeding():
        live = workspace_update(
            reason="test change",
            workspace=workspace,
            actor=SYSTEM,
            changes={"writes_enabled": True, "mode": "live"},
        )
        tool_create(
            reason="test change", workspace=live, actor=SYSTEM, name="crm.lookup", level="read"
        )
        tool_create(
            reason="test change", workspace=live, actor=SYSTEM, name="crm.update", level="write"
        )
    key, _ = make_key(live, scopes=["actions:read", "actions:write"], tools=["crm.*"])
    read = action_submit(key=key, tool_name="crm.lookup", params={"q": "acme"}, actor=SYSTEM)
    action_report_result(
        action_request=read.action, key=key, status="succeeded", output={"rows": 2}, actor=SYSTEM
    )
    write = action_submit(key=key, tool_name="crm.update", params={"deal": 7}, actor=SYSTEM)
    ActionRequest.objects.filter(pk=write.action.pk).update(
        created_at=timezone.now() + timedelta(seconds=1)
    )
    return live, key, read.action, write.action


def replay(*args) -> str:
    out = io.StringIO()
    call_command("audit_replay_run", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def as_json(*args) -> dict:
    return json.loads(replay(*args, "--format", "json"))


@entry_point("command:audit_replay_run")
def test_a_run_is_replayed_in_order_and_each_divergence_is_reported(run):
    _live, key, read, write = run
    with operator_seeding():
        tool_update(
            tool=write.tool, actor=SYSTEM, changes={"confirmation": "always"}, reason="risky"
        )
    report = as_json("--key", str(key.pk))
    assert [s["action_id"] for s in report["steps"]] == [str(read.pk), str(write.pk)]
    first, second = report["steps"]
    assert first["divergences"] == []
    assert first["output"]["source"] == "agent" and first["output"]["status"] == "succeeded"
    assert first["output"]["sha256"] == first["output"]["chain_sha256"] != ""
    assert [d["kind"] for d in second["divergences"]] == ["now_differs", "output_missing"]
    assert second["then"]["outcome"] == "allowed"
    assert second["now"]["outcome"] == "requires_confirmation"
    assert (report["divergences"], report["first_divergence"]) == (2, 2)
    with pytest.raises(CommandError, match="2 divergence") as failed:
        replay("--key", str(key.pk), "--fail-on-divergence")
    assert failed.value.returncode == 1
    text = replay("--key", str(key.pk))
    assert "#1 " in text and "#2 " in text
    assert "! now_differs: allowed then, requires_confirmation under today's policy" in text
    assert "2 divergence(s), first at #2" in text


@entry_point("command:audit_replay_run")
def test_a_clean_run_passes_with_fail_on_divergence(run):
    _live, key, read, _write = run
    until = (read.created_at + timedelta(milliseconds=1)).isoformat()
    text = replay("--key", str(key.pk), "--until", until, "--fail-on-divergence")
    assert text.strip().endswith("no divergence") and "#2" not in text


def test_an_output_that_no_longer_matches_the_chain_diverges(run):
    _live, key, read, _write = run
    ActionRequest.objects.filter(pk=read.pk).update(result_output={"rows": 3})
    first = as_json("--key", str(key.pk))["steps"][0]
    assert [d["kind"] for d in first["divergences"]] == ["output_mismatch"]


def test_pruned_plain_copies_replay_on_their_digests(run):
    """Once the plain copy is gone (minimisation today, erasure tomorrow) the stored
    digest is what is held to the chain's."""
    _live, key, read, _write = run
    digest = hashlib.sha256(canonical_json({"rows": 2})).hexdigest()
    ActionRequest.objects.filter(pk=read.pk).update(
        plain_pruned_at=timezone.now(),
        result_output=None,
        sealed_output="",
        plain_params={},
        sealed_params="",
        result_output_sha256=digest,
    )
    first = as_json("--key", str(key.pk))["steps"][0]
    assert first["output"]["plain_copy"] == "pruned" and first["output"]["sha256"] == digest
    assert first["divergences"] == []
    assert any("pruned" in note for note in first["notes"])
    ActionRequest.objects.filter(pk=read.pk).update(result_output_sha256="0" * 64)
    first = as_json("--key", str(key.pk))["steps"][0]
    assert [d["kind"] for d in first["divergences"]] == ["output_mismatch"]


def test_a_trace_selects_the_calls_that_waited_inside_it(run, make_key):
    live, key, _read, _write = run
    with operator_seeding():
        tool_create(
            reason="test change",
            workspace=live,
            actor=SYSTEM,
            name="crm.delete",
            level="write",
            confirmation="always",
        )
    pending = action_submit(key=key, tool_name="crm.delete", params={"deal": 7}, actor=SYSTEM)
    ConfirmationRequest.objects.filter(action_request=pending.action).update(
        trace_parent=TRACEPARENT
    )
    for given in (TRACE, TRACEPARENT, TRACE.upper()):
        report = as_json("--trace", given, "--workspace", live.slug)
        assert [s["action_id"] for s in report["steps"]] == [str(pending.action.pk)]
        assert report["run"]["trace_id"] == TRACE
        assert report["steps"][0]["divergences"] == []  # pending: no output expected
    assert as_json("--trace", "0" * 31 + "1")["steps"] == []


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "Give --key"),
        (("--trace", "not-a-trace"), "not a trace id"),
        (("--key", "nope"), "No machine key"),
        (("--key", "00000000-0000-0000-0000-000000000000"), "No machine key"),
        (("--trace", TRACE, "--workspace", "nowhere"), "No workspace"),
        (("--trace", TRACE, "--since", "yesterday-ish"), "since"),
    ],
)
def test_bad_input_is_a_clear_error(db, args, message):
    with pytest.raises(CommandError, match=message):
        replay(*args)


def test_trace_ids_are_read_from_traceparents():
    assert trace_id_of(TRACEPARENT) == TRACE
    assert trace_id_of("0" * 32) == ""
    assert trace_id_of("xyz") == ""
