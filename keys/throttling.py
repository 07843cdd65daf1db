"""Per-credential rate limit over the Django cache (Redis in production).

A fixed one-minute window with an atomic counter: one cache round trip per call,
and exact across gunicorn workers (DRF's SimpleRateThrottle keeps a history list
with a read-modify-write that races between processes).

Redis down: the limit is never lifted and never a 500. Each process counts on its own
(local memory) until Redis answers again, so a key gets at most its limit per process
during the outage (README: "Contention and faults"). After a failure Redis is left
alone for a few seconds, so an unreachable server costs one timeout, not one per call.
"""

import logging
import threading
import time

from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from keys.principal import rate_identity

logger = logging.getLogger("warden.throttling")

WINDOW_SECONDS = 60
SHARED_RETRY_SECONDS = 5

# Per-process counters, used only while the shared cache is unreachable.
_local = LocMemCache("warden-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
_shared_down_until = 0.0
_state_lock = threading.Lock()


def _count(store, cache_key: str) -> int:
    """Add-or-increment: atomic on Redis and on local memory."""
    if store.add(cache_key, 1, timeout=WINDOW_SECONDS + 5):
        return 1
    try:
        return store.incr(cache_key)
    except ValueError:  # expired between add and incr
        store.add(cache_key, 1, timeout=WINDOW_SECONDS + 5)
        return 1


def _count_anywhere(cache_key: str) -> int:
    global _shared_down_until
    now = time.monotonic()
    if now >= _shared_down_until:
        try:
            return _count(cache, cache_key)
        except (RedisError, OSError) as exc:
            with _state_lock:
                first = _shared_down_until <= now
                _shared_down_until = now + SHARED_RETRY_SECONDS
            if first:
                logger.warning(
                    "Rate-limit cache unreachable (%s); limiting per process until it returns",
                    type(exc).__name__,
                )
    return _count(_local, cache_key)


def window_hit(ident: str) -> tuple[int, float]:
    """Count one call for `ident` in the current minute: (calls so far, seconds left)."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    count = _count_anywhere(f"throttle:{ident}:{window}")
    return count, (window + 1) * WINDOW_SECONDS - now


class PrincipalRateThrottle(BaseThrottle):
    """Runs inside DRF's initial(), before the Principal exists (refused calls count
    too), so it asks keys.principal for the same identity and budget."""

    def allow_request(self, request, view) -> bool:
        identity = rate_identity(request)
        if identity is None:
            return True
        ident, limit = identity
        count, self._wait = window_hit(ident)
        return count <= limit

    def wait(self) -> float:
        return max(1.0, getattr(self, "_wait", WINDOW_SECONDS))
