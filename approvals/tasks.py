"""Periodic gate work (Celery beat): expiry of pending confirmations every minute, and
the daily pruning of plain copies. Both are thin over services and idempotent."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from approvals.confirmations import confirmations_expire_due
from approvals.minimisation import plain_copies_prune_all
from common.actor import Actor


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


@shared_task(
    name="approvals.prune_plain_copies",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
)
def prune_plain_copies() -> int:
    """Daily data minimisation: plain copies past each workspace's period become
    digests (the service audits every batch; running twice prunes nothing twice)."""
    results = plain_copies_prune_all(actor=Actor.system("retention"))
    return sum(sum(r.pruned.values()) for r in results)
