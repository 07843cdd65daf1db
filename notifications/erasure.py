"""The notifications' share of erasure (approvals.erasure): outbox payloads and emails
quote a confirmation's summary (rendered from the params) and the agent's reason, in
plain text, outside the sealed store. When a request is erased, those copies are
overwritten in place; what was already delivered to a webhook or a mailbox is the
recipient's copy, outside Warden (docs/compliance/erasure.md)."""

from __future__ import annotations

from approvals.personal_data import ERASED
from notifications.models import DigestedConfirmation, EmailDelivery, NotificationEvent
from tenants.models import Workspace

ERASED_BODY = "This message quoted personal data that has since been erased."


def notifications_erase(workspace: Workspace, action_ids: list[str]) -> int:
    """Overwrite the quoted values in the events and emails about these requests."""
    if not action_ids:
        return 0
    events = list(
        NotificationEvent.objects.filter(
            workspace=workspace, payload__data__action_request_id__in=action_ids
        )
    )
    for event in events:
        data = event.payload.get("data") or {}
        for name in ("summary", "reason"):
            if data.get(name):
                data[name] = ERASED
        event.save(update_fields=["payload"])
    event_ids = {e.pk for e in events} | set(
        DigestedConfirmation.objects.filter(
            workspace=workspace, confirmation__action_request_id__in=action_ids
        ).values_list("event_id", flat=True)
    )
    emails = EmailDelivery.objects.filter(workspace=workspace, event_id__in=event_ids).update(
        body_text=ERASED_BODY, body_html=""
    )
    return len(events) + emails
