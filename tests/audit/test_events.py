"""Every audit action has a schema, and audit_record refuses an entry that breaks it
before anything is written (audit/events.py)."""

import pytest
from django.db import transaction

from audit.events import EVENTS, TargetType, UndeclaredEvent
from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from tests.audit.helpers import AGENT


def test_every_action_has_a_schema():
    assert set(EVENTS) == set(AuditAction.values)


def test_every_schema_names_known_targets():
    for event in EVENTS.values():
        assert event.targets and event.targets <= set(TargetType)


def _record(workspace, **fields):
    with transaction.atomic():
        return audit_record(workspace=workspace, actor=AGENT, **fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "action.invented", "target_type": "action_request"},
        {"action": AuditAction.ACTION_DECIDED, "target_type": "tool"},
        {"action": AuditAction.ACTION_DECIDED, "target_type": ""},
        {
            "action": AuditAction.ACTION_DECIDED,
            "target_type": "action_request",
            "input": {"params": {}, "surprise": 1},
        },
    ],
    ids=["unknown action", "wrong target", "no target", "undeclared field"],
)
def test_an_undeclared_shape_is_refused_and_nothing_is_written(workspace, fields):
    before = AuditEntry.objects.filter(workspace=workspace).count()
    with pytest.raises(UndeclaredEvent):
        _record(workspace, **fields)
    assert AuditEntry.objects.filter(workspace=workspace).count() == before


def test_a_declared_shape_is_recorded(workspace):
    entry = _record(
        workspace,
        action=AuditAction.ACTION_DECIDED,
        target_type=TargetType.ACTION_REQUEST,
        input={"params": {"anything": ["goes", "inside"]}, "dry_run": True, "reason": ""},
    )
    assert entry.target_type == "action_request"
