"""Signals of the tenancy layer, so the layers above act on membership changes without
tenants importing them."""

from django.dispatch import Signal

# Sent inside the transaction that removed a membership, before it commits, so whatever
# a receiver changes (keys revokes the departed member's keys) commits or rolls back
# with the removal. kwargs: user, workspace, actor.
member_removed = Signal()
