"""Signals other apps listen to. Sent after commit only, so a receiver never sees a
row that was rolled back."""

from django.dispatch import Signal

# Sent with kwarg `confirmation_id` (UUID) when a ConfirmationRequest is created.
# The background-work app connects a receiver that notifies approvers.
confirmation_requested = Signal()

# Sent with kwargs `action_id` (UUID) and `event` ("action.approved", "action.denied",
# "action.expired", "action.executed") when an agent's request reaches that state, so
# agents can be told instead of polling (notifications publishes it as a webhook).
action_decided = Signal()
