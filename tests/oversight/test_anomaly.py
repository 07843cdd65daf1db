"""Anomaly detection on synthetic histories: a key is compared with its own past."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ActionRequest
from audit.models import AuditEntry, ExceptionRecord
from notifications.models import NotificationEvent, WebhookDelivery
from notifications.services import automation_settings_update
from oversight.anomaly import analyze_key, anomalies_detect, window_ending
from oversight.models import AnomalyFinding
from tenants.models import Role
from tests.notifications.conftest import SYSTEM

pytestmark = pytest.mark.usefixtures("operator_seeded")

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # window: 13:00-14:00 UTC
WINDOW_START, WINDOW_END = window_ending(NOW)
WORK_HOURS = range(8, 18)  # the key's usual hours (UTC)


@pytest.fixture
def tools(live_workspace):
    with operator_seeding():
        return {
            name: tool_create(
                reason="test set-up", workspace=live_workspace, actor=SYSTEM, name=name, level=level
            )
            for name, level in [
                ("crm.lookup", "read"),
                ("crm.search", "read"),
                ("payments.send", "external"),
            ]
        }


@pytest.fixture
def key(live_workspace, make_key):
    return make_key(live_workspace, scopes=["actions:read", "actions:external"])[0]


def requests(key, tool, at, n=1):
    digest = hashlib.sha256(b"{}").hexdigest()
    ActionRequest.objects.bulk_create(
        ActionRequest(
            workspace_id=key.workspace_id,
            key=key,
            requested_by=f"key:{key.pk}",
            tool_name=tool.name,
            tool=tool,
            params={},
            params_digest=digest,
            decision="allowed",
            status="allowed",
            policy_version=1,
            created_at=at + timedelta(seconds=i * (3000 // max(n, 1))),
        )
        for i in range(n)
    )


def history(key, tools, *, days=14, per_hour=3, hours=WORK_HOURS):
    """Steady weekday-like use of the read tools, ending before the window."""
    for day in range(days, 0, -1):
        base = WINDOW_START.replace(hour=0) - timedelta(days=day)
        for hour in hours:
            tool = tools["crm.lookup"] if hour % 2 else tools["crm.search"]
            requests(key, tool, base.replace(hour=hour), per_hour)


def kinds(findings):
    return sorted(f.kind for f in findings)


def detect(workspace):
    return anomalies_detect(workspace=workspace, now=NOW)


def test_a_key_behaving_as_usual_raises_nothing(live_workspace, key, tools):
    history(key, tools)
    requests(key, tools["crm.lookup"], WINDOW_START, 4)
    assert detect(live_workspace) == []
    assert not ExceptionRecord.objects.filter(kind="anomaly").exists()


def test_a_key_without_history_raises_nothing(live_workspace, key, tools):
    # Heavy, varied first-day use: new tools, a new level, odd hours, high volume.
    requests(key, tools["crm.lookup"], WINDOW_START, 150)
    requests(key, tools["payments.send"], WINDOW_START, 5)
    assert detect(live_workspace) == []


def test_a_young_key_raises_nothing_until_it_has_a_weeks_history(live_workspace, key, tools):
    history(key, tools, days=5, per_hour=5)
    requests(key, tools["payments.send"], WINDOW_START, 200)
    assert analyze_key(key, window_start=WINDOW_START, window_end=WINDOW_END) == []


def test_a_key_with_too_few_requests_raises_nothing(live_workspace, key, tools):
    history(key, tools, days=14, per_hour=1, hours=[9, 15])  # 28 requests
    requests(key, tools["payments.send"], WINDOW_START, 200)
    assert detect(live_workspace) == []


def test_volume_far_above_baseline_is_one_finding_with_its_numbers(live_workspace, key, tools):
    history(key, tools)
    requests(key, tools["crm.lookup"], WINDOW_START, 120)
    [finding] = detect(live_workspace)
    assert finding.kind == "volume"
    evidence = finding.exception_record.evidence
    assert evidence["window_requests"] == 120
    assert evidence["history_requests"] == 14 * len(WORK_HOURS) * 3
    assert evidence["baseline_hours"] == 14 * 24 - 8 + 13  # from the first active hour
    assert evidence["baseline_mean_per_hour"] == pytest.approx(
        420 / evidence["baseline_hours"], 1e-3
    )
    assert evidence["threshold"] >= 20
    record = finding.exception_record
    assert record.kind == "anomaly" and record.subject == f"key:{key.pk}"
    assert record.audit_entry.action == "anomaly.detected"


def test_a_moderate_rise_stays_under_the_floor(live_workspace, key, tools):
    history(key, tools)
    requests(key, tools["crm.lookup"], WINDOW_START, 15)  # 5x the usual hour, under 20
    assert detect(live_workspace) == []


def test_new_tool_and_new_level_are_flagged(live_workspace, key, tools):
    history(key, tools)
    requests(key, tools["payments.send"], WINDOW_START, 2)
    findings = detect(live_workspace)
    assert kinds(findings) == ["new_level", "new_tool"]
    by_kind = {f.kind: f for f in findings}
    assert by_kind["new_tool"].evidence["new_tools"] == {"payments.send": 2}
    assert by_kind["new_level"].evidence["new_levels"] == {"external": 2}
    assert by_kind["new_level"].evidence["known_levels"] == ["read"]
    assert by_kind["new_level"].exception_record.severity == "high"


def test_activity_at_a_never_active_hour_is_flagged(live_workspace, key, tools):
    history(key, tools, hours=[8, 9, 10, 11])  # never at 13:00
    requests(key, tools["crm.lookup"], WINDOW_START, 2)
    [finding] = detect(live_workspace)
    assert finding.kind == "new_hour"
    assert finding.evidence["new_hours_utc"] == {"13": 2}
    assert finding.evidence["known_hours_utc"] == [8, 9, 10, 11]


def test_a_window_is_checked_once(live_workspace, key, tools):
    history(key, tools)
    requests(key, tools["payments.send"], WINDOW_START, 2)
    assert len(detect(live_workspace)) == 2
    assert detect(live_workspace) == []
    assert anomalies_detect(workspace=live_workspace, now=NOW + timedelta(minutes=20)) == []
    assert AnomalyFinding.objects.count() == 2
    assert ExceptionRecord.objects.filter(kind="anomaly").count() == 2


def test_each_finding_notifies_admins(
    live_workspace,
    key,
    tools,
    make_endpoint,
    receiver,
    make_member,
    django_capture_on_commit_callbacks,
):
    make_endpoint(live_workspace, events=["anomaly.detected"])
    admin = make_member(live_workspace, Role.ADMIN)
    approver = make_member(live_workspace, Role.APPROVER)
    history(key, tools)
    requests(key, tools["crm.lookup"], WINDOW_START, 120)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(detect(live_workspace)) == 1
    event = NotificationEvent.objects.get(event="anomaly.detected")
    assert event.payload["data"]["kind"] == "volume"
    assert event.payload["data"]["evidence"]["window_requests"] == 120
    assert WebhookDelivery.objects.get(event=event).status == "delivered"
    assert receiver.processed and receiver.received[0].valid
    recipients = {to for message in mail.outbox for to in message.to}
    assert admin.email in recipients and approver.email not in recipients


def test_auto_suspend_suspends_the_key_revocably_and_records_it(live_workspace, key, tools):
    automation_settings_update(
        reason="test set-up",
        workspace=live_workspace,
        actor=SYSTEM,
        changes={"anomaly_auto_suspend": True},
    )
    history(key, tools)
    requests(key, tools["crm.lookup"], WINDOW_START, 120)
    [finding] = detect(live_workspace)
    key.refresh_from_db()
    assert key.suspended_at is not None and key.revoked_at is None
    entry = AuditEntry.objects.get(workspace=live_workspace, action="key.suspended")
    assert entry.actor == "system:anomaly-detection"
    assert str(finding.exception_record.pk) in entry.rationale


def test_without_auto_suspend_the_key_keeps_working(live_workspace, key, tools):
    history(key, tools)
    requests(key, tools["crm.lookup"], WINDOW_START, 120)
    assert len(detect(live_workspace)) == 1
    key.refresh_from_db()
    assert key.suspended_at is None


def test_detection_task_pins_the_window(live_workspace, key, tools):
    from oversight.tasks import detect_anomalies_task

    history(key, tools)
    requests(key, tools["crm.lookup"], WINDOW_START, 120)
    assert detect_anomalies_task.delay(str(live_workspace.pk), NOW.isoformat()).get() == 1
    assert detect_anomalies_task.delay(str(live_workspace.pk), NOW.isoformat()).get() == 0
