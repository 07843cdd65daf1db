"""Long-poll for an agent waiting on a human (GET /api/v1/actions/{id}?wait=N).

Server model: a waiting request holds one gunicorn gthread worker thread for at most
MAX_WAIT_SECONDS, re-reading one row by primary key with a growing sleep (0.2 s up to
1 s): 33 status reads for a full 30 s wait, no busy loop. Waits are a bounded pool, so
they never take the threads other calls need:
- at most WARDEN_WAIT_SLOTS_PER_PROCESS requests of one process wait at once (a
  non-blocking semaphore; the rest of the process's threads always serve other calls);
- at most WARDEN_WAITS_PER_KEY waits of one key at once, across every node (slots in
  the shared cache, each expiring after the longest wait, so a killed process frees
  its slots by itself; per process while the cache is down).
Past either bound the wait is refused at once with 429 `too_many_waits` and Retry-After
(nothing is held; the SDK retries after it). Agents that must wait longer, or in large
numbers, use the webhook instead (docs: "Call Warden from your agent")."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils import timezone

from approvals.models import ActionRequest
from approvals.selectors import action_request_get
from common.errors import WardenError
from common.shared_cache import SharedOrLocal
from tenants.models import Workspace

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 30
FIRST_DELAY = 0.2
MAX_DELAY = 1.0
BACKOFF = 1.5
# A refused wait asks again after 5-10 s (spread at random): every refusal costs an
# authenticated request, and a crowd of waiters refused together and told the same
# delay would come back as one burst that queues ahead of other calls.
WAIT_RETRY_AFTER_SECONDS = 5

# Indirection so tests can observe or drive the waits without real sleeping.
_sleep: Callable[[float], None] = time.sleep
_clock: Callable[[], float] = time.monotonic

_process_slots = threading.BoundedSemaphore(settings.WARDEN_WAIT_SLOTS_PER_PROCESS)
_key_slots = SharedOrLocal(
    "warden-wait-slots", logger, "Wait slots' cache unreachable (%s); capping per process"
)


class TooManyWaits(WardenError):
    """429 too_many_waits, with Retry-After: nothing was held or changed."""

    def __init__(self, detail: str) -> None:
        retry_after = WAIT_RETRY_AFTER_SECONDS + secrets.randbelow(WAIT_RETRY_AFTER_SECONDS + 1)
        super().__init__(
            "too_many_waits",
            "Too many long-polls are waiting; retry after the indicated delay or use a webhook.",
            {"limit": detail, "retry_after": retry_after},
        )
        self.headers = {"Retry-After": str(retry_after)}


def _slot_name(key_id, index: int) -> str:
    return f"wait-slot:{key_id}:{index}"


@contextmanager
def wait_slot(key) -> Iterator[None]:
    """One of this process's wait slots and one of the key's, for the length of a wait,
    or TooManyWaits at once."""
    if not _process_slots.acquire(blocking=False):
        raise TooManyWaits("process")
    try:
        expiry = MAX_WAIT_SECONDS + 10
        taken = None
        for index in range(settings.WARDEN_WAITS_PER_KEY):
            name = _slot_name(key.pk, index)
            if _key_slots.run(lambda store, name=name: store.add(name, 1, timeout=expiry)):
                taken = name
                break
        if taken is None:
            raise TooManyWaits("key")
        try:
            yield
        finally:
            _key_slots.run(lambda store: store.delete(taken))
    finally:
        _process_slots.release()


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
    if deadline <= _clock():
        return action
    with wait_slot(key):
        status = _poll(action.pk, deadline)
    if status == action.status:
        return action
    return action_request_get(workspace=workspace, pk=pk, key=key)


def _poll(pk, deadline: float) -> str:
    """The request's status once it is no longer pending, or at the deadline."""
    delay = FIRST_DELAY
    status = ActionRequest.Status.PENDING
    while status == ActionRequest.Status.PENDING:
        remaining = deadline - _clock()
        if remaining <= 0:
            break
        _sleep(min(delay, remaining))
        delay = min(delay * BACKOFF, MAX_DELAY)
        status = ActionRequest.objects.filter(pk=pk).values_list("status", flat=True).first()
    return status
