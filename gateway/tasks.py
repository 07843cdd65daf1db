"""Scheduled catalog sync (Celery beat, WARDEN_CONNECTOR_SYNC_SECONDS): every enabled MCP
connector is synced on its own, so an upstream that changed a tool after review has it
disabled without anyone pressing sync. Thin over gateway.services."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from common.actor import Actor
from gateway.services import connector_sync_scheduled, connectors_to_sync


@shared_task(name="gateway.sync_connectors", acks_late=True)
def sync_connectors() -> int:
    """Fan out: one task per connector, so one slow or failing upstream delays no other."""
    ids = connectors_to_sync()
    for pk in ids:
        sync_connector.delay(str(pk))
    return len(ids)


@shared_task(
    name="gateway.sync_connector",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=30,
    max_retries=3,
)
def sync_connector(connector_id: str) -> dict | None:
    return connector_sync_scheduled(connector_id=connector_id, actor=Actor.system("sync"))
