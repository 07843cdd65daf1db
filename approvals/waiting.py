"""Long-poll for an agent waiting on a human (GET /api/v1/actions/{id}?wait=N).

Server model: the request holds one gunicorn gthread worker thread (and its database
connection) for at most MAX_WAIT_SECONDS, re-reading one row by primary key with a
growing sleep (0.2 s up to 1 s): 33 status reads for a full 30 s wait, no busy
loop. Capacity is workers x threads concurrent waiters; agents that must wait longer,
or in large numbers, use the webhook instead (README: "Call Warden from your agent")."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.utils import timezone

from approvals.models import ActionRequest
from approvals.selectors import action_request_get
from tenants.models import Workspace

MAX_WAIT_SECONDS = 30
FIRST_DELAY = 0.2
MAX_DELAY = 1.0
BACKOFF = 1.5

# Indirection so tests can observe or drive the waits without real sleeping.
_sleep: Callable[[float], None] = time.sleep
_clock: Callable[[], float] = time.monotonic


def action_request_wait(*, workspace: Workspace, pk, key, seconds: float) -> ActionRequest | None:
    """The key's action request, once it is no longer pending, its confirmation is past
    expiry (the agent's re-call then answers confirmation_expired), or `seconds` elapsed.
    Between reads only the status column of the already-scoped row is polled."""
    action = action_request_get(workspace=workspace, pk=pk, key=key)
    if action is None or action.status != ActionRequest.Status.PENDING:
        return action
    confirmation = getattr(action, "confirmation", None)
    deadline = _clock() + min(max(seconds, 0), MAX_WAIT_SECONDS)
    if confirmation is not None:
        expires_in = (confirmation.expires_at - timezone.now()).total_seconds()
        deadline = min(deadline, _clock() + max(expires_in, 0))
    delay = FIRST_DELAY
    status = action.status
    while status == ActionRequest.Status.PENDING:
        remaining = deadline - _clock()
        if remaining <= 0:
            break
        _sleep(min(delay, remaining))
        delay = min(delay * BACKOFF, MAX_DELAY)
        status = ActionRequest.objects.filter(pk=action.pk).values_list("status", flat=True).first()
    if status == action.status:
        return action
    return action_request_get(workspace=workspace, pk=pk, key=key)
