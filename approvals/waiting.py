"""Long-poll for an agent waiting on a human (GET /api/v1/actions/{id}?wait=N).

Production server model (config.asgi, docs "Running in production"): a wait holds no
thread. The view checks everything as for any call, takes one of the key's wait slots
and *parks* the request (`Parked`, handed to the server through the WSGI environ); the
server awaits it on its event loop (`WaitHub`: one status query per process every
POLL_SECONDS for all parked waits together), then runs the request again, marked
resumed (not counted twice against the rate limit, not waiting again), for the answer.

Threaded servers (gunicorn gthread, runserver, the test client): a waiting request
holds one worker thread for at most
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

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections
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


def _take_key_slot(key) -> str:
    """One of the key's wait slots (its name, to release), or TooManyWaits."""
    expiry = MAX_WAIT_SECONDS + 10
    for index in range(settings.WARDEN_WAITS_PER_KEY):
        name = _slot_name(key.pk, index)
        if _key_slots.run(lambda store, name=name: store.add(name, 1, timeout=expiry)):
            return name
    raise TooManyWaits("key")


def _release_key_slot(name: str) -> None:
    _key_slots.run(lambda store: store.delete(name))


@contextmanager
def wait_slot(key) -> Iterator[None]:
    """One of this process's wait slots and one of the key's, for the length of a wait,
    or TooManyWaits at once."""
    if not _process_slots.acquire(blocking=False):
        raise TooManyWaits("process")
    try:
        taken = _take_key_slot(key)
        try:
            yield
        finally:
            _release_key_slot(taken)
    finally:
        _process_slots.release()


@dataclass
class Parked:
    """A wait handed to an async server: it holds one of the key's slots (release it
    once, when the wait ends) and no thread."""

    pk: object
    deadline: float  # on `_clock`
    slot: str

    def release(self) -> None:
        _release_key_slot(self.slot)


PARK = "warden.park"  # WSGI environ: a callable taking a Parked (set by config.asgi)
RESUMED = "warden.resumed"  # WSGI environ: the parked request, run again for its answer


def action_request_wait(
    *,
    workspace: Workspace,
    pk,
    key,
    seconds: float,
    park: Callable[[Parked], None] | None = None,
) -> ActionRequest | None:
    """The key's action request, once it is no longer pending, its confirmation is past
    expiry (the agent's re-call then answers confirmation_expired), or `seconds` elapsed.
    Between reads only the status column of the already-scoped row is polled.
    `park` (from an async server): hand the wait to it, holding a key slot, and return
    the pending request at once; the server answers when the wait ends."""
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
    if park is not None:
        park(Parked(pk=action.pk, deadline=deadline, slot=_take_key_slot(key)))
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


class WaitHub:
    """The parked waits of one async server process, resolved by one status query every
    POLL_SECONDS for all of them (run in `run_sync`'s thread), however many wait."""

    POLL_SECONDS = 0.25

    def __init__(self, run_sync: Callable) -> None:
        self._run_sync = run_sync  # async callable(fn, *args): fn run off the loop
        self._waiting: dict[object, list[asyncio.Future]] = {}
        self._poller: asyncio.Task | None = None

    async def wait(self, parked: Parked) -> None:
        """Until the request is no longer pending or its deadline passes."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(parked.pk, []).append(future)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            await asyncio.wait_for(future, max(parked.deadline - _clock(), 0))
        except TimeoutError:
            pass
        finally:
            futures = self._waiting.get(parked.pk, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(parked.pk, None)

    async def _poll(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.POLL_SECONDS)
            pks = list(self._waiting)
            try:
                done = await self._run_sync(_decided_among, pks)
            except Exception:  # the database is away: the waits run to their deadlines
                logger.exception("Polling parked waits failed")
                continue
            for pk in done:
                for future in self._waiting.pop(pk, []):
                    if not future.done():
                        future.set_result(None)


def _decided_among(pks: list) -> list:
    """Which of these requests are no longer pending (one query)."""
    close_old_connections()
    return list(
        ActionRequest.objects.filter(pk__in=pks)
        .exclude(status=ActionRequest.Status.PENDING)
        .values_list("pk", flat=True)
    )
