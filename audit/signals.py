"""Signals of the evidence layer, for higher layers to act on without being imported."""

from django.dispatch import Signal

# Sent after the transaction that signed a checkpoint committed; kwargs: workspace_id.
# oversight.tasks delivers it to the workspace's export destination.
checkpoint_signed = Signal()
