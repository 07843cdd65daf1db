"""Signals other apps listen to. Sent after commit only, so a receiver never sees a
row that was rolled back."""

from django.dispatch import Signal

# Sent with kwarg `confirmation_id` (UUID) when a ConfirmationRequest is created.
# The background-work app connects a receiver that notifies approvers.
confirmation_requested = Signal()
