"""Signal receivers: thin, and they never break the caller. The gate sends
`confirmation_requested` after its transaction commits; if publishing fails here
(database hiccup), the outbox sweeper backfills the notification later."""

from __future__ import annotations

import logging

from approvals.models import ConfirmationRequest
from notifications import services
from notifications.slack import services as slack

logger = logging.getLogger("warden.notifications")


def on_confirmation_requested(sender=None, *, confirmation_id, **kwargs) -> None:
    try:
        services.notify_confirmation_requested(confirmation_id=confirmation_id)
    except Exception:
        logger.exception(
            "could not publish confirmation.requested for %s; the sweeper will retry",
            confirmation_id,
        )
    try:
        slack.slack_messages_plan(confirmation_id=confirmation_id)
    except Exception:
        logger.exception("could not queue the Slack messages of %s", confirmation_id)


def on_action_decided(sender=None, *, action_id, workspace_id, event, **kwargs) -> None:
    try:
        services.notify_action_decided(action_id=action_id, workspace_id=workspace_id, event=event)
    except Exception:
        logger.exception("could not publish %s for %s", event, action_id)
    try:
        for pk in ConfirmationRequest.objects.filter(action_request_id=action_id).values_list(
            "pk", flat=True
        ):
            slack.queue_update(pk)
    except Exception:
        logger.exception("could not queue the Slack update of %s", action_id)
