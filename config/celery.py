import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("warden")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _require_secret_key(**kwargs) -> None:
    from config.startup import require_audit_signing_key, require_secret_key

    require_secret_key()
    require_audit_signing_key()


@worker_process_init.connect
def _start_telemetry(**kwargs) -> None:
    """Per worker process, after the fork (exporter threads do not survive one)."""
    from config.startup import start_telemetry

    start_telemetry()
