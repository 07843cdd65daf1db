"""Pending confirmations past expires_at expire on the beat, each one recorded."""

from datetime import timedelta

import time_machine
from django.conf import settings
from django.utils import timezone

from approvals.models import ConfirmationRequest
from approvals.tasks import expire_confirmations
from audit.models import AuditEntry
from tests.notifications.conftest import ask_pending, gated_tool  # noqa: F401


def test_expiry_runs_every_minute_on_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["expire-confirmations"]
    assert entry["task"] == expire_confirmations.name
    assert entry["schedule"] == 60.0


def test_due_confirmations_expire_once_and_are_recorded(live_workspace, ask_pending):  # noqa: F811
    due = ask_pending(params={"deal": 1})
    fresh = ask_pending(params={"deal": 2})
    ConfirmationRequest.objects.filter(pk=due.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expire_confirmations.delay().get() == 1
    due.refresh_from_db()
    fresh.refresh_from_db()
    assert due.status == "expired" and fresh.status == "pending"
    recorded = AuditEntry.objects.filter(workspace=live_workspace, action="confirmation.expired")
    assert recorded.count() == 1
    # Idempotent: running again expires and records nothing more.
    assert expire_confirmations.delay().get() == 0
    assert recorded.count() == 1


def test_everything_expires_after_the_ttl(live_workspace, ask_pending):  # noqa: F811
    ask_pending()
    with time_machine.travel(
        timezone.now() + live_workspace.confirmation_ttl + timedelta(minutes=1)
    ):
        assert expire_confirmations.delay().get() == 1
    assert ConfirmationRequest.objects.get().status == "expired"
