"""Signals other apps listen to. Sent after commit only, so a receiver never sees a
row that was rolled back."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

from approvals.models import ActionRequest, ConfirmationRequest

# Sent with kwarg `confirmation_id` (UUID) when a ConfirmationRequest is created.
# The background-work app connects a receiver that notifies approvers.
confirmation_requested = Signal()

# Sent with kwargs `action_id` (UUID), `workspace_id` and `event` ("action.approved",
# "action.denied", "action.expired", "action.executed") when an agent's request
# reaches that state, so agents can be told instead of polling (notifications
# publishes it as a webhook).
action_decided = Signal()


def announce_confirmation_requested(confirmation_id) -> None:
    """Send `confirmation_requested` once the current transaction commits."""
    transaction.on_commit(
        lambda: confirmation_requested.send(
            sender=ConfirmationRequest, confirmation_id=confirmation_id
        )
    )


def announce_action_decided(action: ActionRequest, event: str) -> None:
    """Send `action_decided` once the state change has committed. Only agents' requests
    are announced; governed changes have their own trail."""
    if action.key_id is None:
        return
    action_id, workspace_id = action.pk, action.workspace_id
    transaction.on_commit(
        lambda: action_decided.send(
            sender=ActionRequest, action_id=action_id, workspace_id=workspace_id, event=event
        )
    )
