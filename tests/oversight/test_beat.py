"""The beat schedule names real tasks, and every task acknowledges late."""

from django.conf import settings

from config.celery import app

OURS = (
    "approvals.expire_confirmations",
    "notifications.deliver_webhook",
    "notifications.send_email",
    "notifications.sweep_outbox",
    "audit.verify_all_chains",
    "audit.verify_chain",
    "audit.export_all",
    "audit.export_workspace",
    "audit.detect_anomalies_all",
    "audit.detect_anomalies",
    "oversight.flag_unreported_results_all",
    "oversight.flag_unreported_results",
)


def test_every_scheduled_task_exists():
    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
        assert entry["options"]["expires"] > 0  # a backlog after an outage is dropped


def test_background_tasks_ack_late_so_a_dead_worker_loses_nothing():
    app.loader.import_default_modules()
    for name in OURS:
        assert app.tasks[name].acks_late, name
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
