"""Every audit action has one definition, events are checked against it where they are
made, and every call site records an event object (audit/events.py)."""

import ast
from pathlib import Path

import pytest
from django.db import transaction

from audit.events import EVENTS, AuditEvent, TargetType, UndeclaredEvent
from audit.models import AuditAction, AuditEntry, VersionLog
from audit.services import audit_record, audit_record_change
from tests.audit.helpers import AGENT

ROOT = Path(__file__).resolve().parents[2]
RECORDERS = {"audit_record": 1, "audit_record_change": 1, "audit_record_with": 2}
# The keyword form the event object replaced.
LEGACY_KEYWORDS = {
    "action", "target_type", "target_id", "tool", "input", "decision", "rationale",
    "policy_version", "outcome", "before", "after", "reason",
}  # fmt: skip


def test_every_action_has_a_schema():
    assert set(EVENTS) == set(AuditAction.values)
    assert all(EVENTS[action].action == action for action in AuditAction.values)


def test_every_schema_names_known_targets():
    for event in EVENTS.values():
        assert event.targets and event.targets <= set(TargetType)


@pytest.mark.parametrize(
    "make",
    [
        lambda: EVENTS["action.invented"],
        lambda: EVENTS[AuditAction.ACTION_DECIDED].event(target_type=TargetType.TOOL),
        lambda: AuditEvent(action=AuditAction.ACTION_DECIDED, target_type=""),
        lambda: EVENTS[AuditAction.ACTION_DECIDED].event(input={"params": {}, "surprise": 1}),
        lambda: EVENTS[AuditAction.AUDIT_EXPORTED].event(input={"entries": 1}),
        lambda: EVENTS[AuditAction.KEY_CREATED].event(input={"before": None}),
        lambda: EVENTS[AuditAction.ACTION_DECIDED].change(target_id=1, before={}, after={}),
    ],
    ids=[
        "unknown action",
        "wrong target",
        "no target",
        "undeclared field",
        "several targets, none named",
        "a change made as a plain event",
        "a plain event made as a change",
    ],
)
def test_an_undeclared_shape_is_refused_where_the_event_is_made(make):
    with pytest.raises(UndeclaredEvent):
        make()


def test_a_declared_shape_is_recorded_as_made(workspace):
    event = EVENTS[AuditAction.ACTION_DECIDED].event(
        target_id="a1",
        tool="crm.read",
        input={"params": {"anything": ["goes", "inside"]}, "dry_run": True, "reason": ""},
        decision="allowed",
        rationale="allowlist",
        policy_version=3,
        outcome="allowed",
    )
    with transaction.atomic():
        entry = audit_record(event, workspace=workspace, actor=AGENT)
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.action, stored.target_type, stored.target_id) == (
        "action.decided",
        "action_request",
        "a1",
    )
    assert (stored.tool, stored.input, stored.decision) == ("crm.read", event.input, "allowed")
    assert (stored.rationale, stored.policy_version, stored.outcome) == ("allowlist", 3, "allowed")


def test_a_config_change_is_recorded_only_with_its_version_log(workspace):
    change = EVENTS[AuditAction.WORKSPACE_SETTINGS_CHANGED].change(
        target_type=TargetType.WORKSPACE,
        target_id=workspace.pk,
        before={"a": 1},
        after={"a": 2},
        reason="test change",
    )
    before = AuditEntry.objects.filter(workspace=workspace).count()
    with pytest.raises(UndeclaredEvent, match="audit_record_change"), transaction.atomic():
        audit_record(change, workspace=workspace, actor=AGENT)
    assert AuditEntry.objects.filter(workspace=workspace).count() == before
    with transaction.atomic():
        entry = audit_record_change(change, workspace=workspace, actor=AGENT)
    log = VersionLog.objects.get(audit_entry=entry)
    assert (log.before, log.after, entry.outcome) == ({"a": 1}, {"a": 2}, "applied")


def _source_files():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        parts = relative.parts
        if parts[0].startswith(".") or parts[0] in {"tests", "clients"}:
            continue
        if "migrations" in parts:
            continue
        yield relative.as_posix(), path


def _legacy_calls(tree):
    """(line, name) of every recorder call without its event object, or with the old
    keywords; and how many recorder calls there are."""
    found, calls = [], 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in RECORDERS:
            continue
        calls += 1
        keywords = {k.arg for k in node.keywords}
        if len(node.args) < RECORDERS[name] or keywords & LEGACY_KEYWORDS:
            found.append((node.lineno, name))
    return found, calls


def test_every_call_site_records_an_event_object():
    offenders, calls = [], 0
    for relative, path in _source_files():
        found, count = _legacy_calls(ast.parse(path.read_text(), filename=relative))
        calls += count
        offenders += [f"{relative}:{line} {name}(...)" for line, name in found]
    assert calls > 30  # the scan sees the call sites
    assert not offenders, "record an event: audit_record(EVENTS[action].event(...), ...)"
