"""Failure counters for guessing resistance, over the Django cache (Redis in production).

Fixed windows with an atomic counter per (kind, identity, window): one round trip to
read every counter that applies, one per counter to add a failure, exact across
gunicorn workers. Identities are hashed, so the cache never holds a username or an
address in clear and hostile text cannot shape a cache key. Across a window boundary
an attacker gets at most twice the limit; the next window starts from zero.

Redis down: counting goes on per process (local memory) rather than failing the
login or the request, and Redis is left alone for a few seconds after an error, as
for the rate limit (keys/throttling.py, docs "Contention and faults")."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from common.shared_cache import SharedOrLocal, count_up

logger = logging.getLogger("warden.security")
_counters = SharedOrLocal(
    "warden-attempts-fallback",
    logger,
    "Attempt counters' cache unreachable (%s); counting per process",
)


@dataclass(frozen=True)
class Counter:
    """One failure budget: at most `limit` failures of `kind` per identity per window."""

    kind: str
    identity: str
    limit: int
    window_seconds: int

    def _window(self, now: float) -> int:
        return int(now // self.window_seconds)

    def cache_key(self, now: float) -> str:
        digest = hashlib.sha256(self.identity.encode("utf-8", "surrogatepass")).hexdigest()
        return f"attempts:{self.kind}:{digest[:32]}:{self._window(now)}"

    def retry_after(self, now: float) -> int:
        """Whole seconds until this window ends (at least 1)."""
        return max(1, int((self._window(now) + 1) * self.window_seconds - now + 0.999))

    def add_failure(self, now: float) -> int:
        """Counts one failure; returns the count in this window, this one included."""
        key = self.cache_key(now)
        return _counters.run(lambda store: count_up(store, key, self.window_seconds + 5))


def exhausted(counters: list[Counter], now: float | None = None) -> int | None:
    """Seconds to wait if any counter has used up its budget in this window, else None."""
    now = time.time() if now is None else now
    if not counters:
        return None
    keys = [c.cache_key(now) for c in counters]
    counts = _counters.run(lambda store: store.get_many(keys))
    waits = [c.retry_after(now) for c in counters if counts.get(c.cache_key(now), 0) >= c.limit]
    return max(waits) if waits else None


def add_failures(counters: list[Counter], now: float | None = None) -> list[Counter]:
    """Counts one failure on each counter; returns those that reached their limit with
    this failure (exactly once per window, so callers report a crossing only once)."""
    now = time.time() if now is None else now
    return [c for c in counters if c.add_failure(now) == c.limit]
