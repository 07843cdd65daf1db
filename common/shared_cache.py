"""Counters over the Django cache (Redis in production) that survive a Redis outage.

While the shared cache is unreachable, each process counts in its own memory rather
than failing the request; after an error the shared cache is left alone for a few
seconds, so an unreachable server costs one timeout, not one per call. The rate limit
(keys/throttling.py) and the guessing counters (common/attempts.py) each keep their
own fallback (docs: "Contention and faults")."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError

SHARED_RETRY_SECONDS = 5


def count_up(store, key: str, timeout: int) -> int:
    """Add-or-increment: atomic on Redis and on local memory."""
    if store.add(key, 1, timeout=timeout):
        return 1
    try:
        return store.incr(key)
    except ValueError:  # expired between add and incr
        store.add(key, 1, timeout=timeout)
        return 1


class SharedOrLocal:
    """The shared cache, or this process's memory while the shared cache is down;
    `outage` is logged (with the error's type) once per outage."""

    def __init__(self, name: str, logger: logging.Logger, outage: str) -> None:
        self.local = LocMemCache(name, {"OPTIONS": {"MAX_ENTRIES": 100_000}})
        self.down_until = 0.0
        self.retry_seconds = SHARED_RETRY_SECONDS
        self._logger = logger
        self._outage = outage
        self._lock = threading.Lock()

    def run(self, operation: Callable[[Any], Any]) -> Any:
        """Runs `operation` on the shared cache, or on local memory while it is down."""
        now = time.monotonic()
        if now >= self.down_until:
            try:
                return operation(cache)
            except (RedisError, OSError) as exc:
                with self._lock:
                    first = self.down_until <= now
                    self.down_until = now + self.retry_seconds
                if first:
                    self._logger.warning(self._outage, type(exc).__name__)
        return operation(self.local)
