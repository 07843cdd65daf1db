"""Expiry of pending confirmations (Celery beat, every minute). The service expires
each due request and records it; running twice expires nothing twice."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from approvals.services import confirmations_expire_due


@shared_task(
    name="approvals.expire_confirmations",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=3,
)
def expire_confirmations() -> int:
    return confirmations_expire_due()
