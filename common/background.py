"""A per-process background lane for work that must not run in a request.

Without a broker (the embedded default, Celery eager) a task would run inside the
request that queued it: a webhook receiver that never answers would hold the agent's
answer for the whole timeout; with a broker that is down, each publish retries for a
while. Work handed here runs on one daemon thread instead, one item after another,
after the request has answered. What is queued here is never the only copy: the
outbox row stays pending until delivered, so work lost with the process (a crash) is
picked up by the outbox sweeper; a normal exit waits a bounded time for the lane.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger("warden.background")

_queue: queue.SimpleQueue = queue.SimpleQueue()
_lock = threading.Lock()
_thread: threading.Thread | None = None
_idle = threading.Condition()
_pending = 0
_exit_hook = False
# At a normal exit (a management command that published something), wait this long
# for queued work: about one webhook timeout.
EXIT_WAIT_SECONDS = 15


# Recurring work (the outbox sweeper without a broker): [interval, fn, next due].
_periodic: list[list] = []


def _call(fn, args) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("background work %s failed", getattr(fn, "__name__", fn))
    finally:
        connections.close_all()  # this thread's connections only


def _run_due() -> float:
    """Run the recurring work that is due; seconds until the next is due."""
    now = time.monotonic()
    for job in _periodic:
        if job[2] <= now:
            _call(job[1], ())
            job[2] = time.monotonic() + job[0]
    return min((job[2] for job in _periodic), default=now + 3600) - time.monotonic()


def _run() -> None:
    global _pending
    while True:
        try:
            fn, args = _queue.get(timeout=max(_run_due(), 0.01))
        except queue.Empty:
            continue
        _call(fn, args)
        with _idle:
            _pending -= 1
            _idle.notify_all()


def every(seconds: float, fn: Callable[[], object]) -> None:
    """Also run `fn()` on the lane every `seconds`, once the lane has started (in a
    process that handed it work), first after one interval."""
    with _lock:
        _periodic.append([seconds, fn, time.monotonic() + seconds])


def submit(fn: Callable, *args) -> None:
    """Run `fn(*args)` on the background thread, starting it on first use (and again
    in a forked child, where the parent's thread does not exist)."""
    global _thread, _pending, _exit_hook
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="warden-background", daemon=True)
            _thread.start()
        if not _exit_hook:
            atexit.register(wait_idle, EXIT_WAIT_SECONDS)
            _exit_hook = True
    with _idle:
        _pending += 1
    _queue.put((fn, args))


def wait_idle(timeout: float) -> bool:
    """Block until everything submitted so far has run (tests, graceful shutdown)."""
    with _idle:
        return _idle.wait_for(lambda: _pending == 0, timeout=timeout)
