"""Per-credential rate limit over the Django cache (Redis in production).

A fixed one-minute window with an atomic counter: one cache round trip per call,
and exact across gunicorn workers (DRF's SimpleRateThrottle keeps a history list
with a read-modify-write that races between processes).

Redis down: the limit is never lifted and never a 500. Each process counts on its own
(local memory) until Redis answers again, so a key gets at most its limit per process
during the outage (docs: "Contention and faults"). After a failure Redis is left
alone for a few seconds, so an unreachable server costs one timeout, not one per call.
"""

import logging
import time

from rest_framework.throttling import BaseThrottle

from common.shared_cache import SharedOrLocal, count_up
from keys.principal import rate_identity

logger = logging.getLogger("warden.throttling")

WINDOW_SECONDS = 60

# Per-process counters, used only while the shared cache is unreachable.
_counters = SharedOrLocal(
    "warden-throttle-fallback",
    logger,
    "Rate-limit cache unreachable (%s); limiting per process until it returns",
)


def window_hit(ident: str) -> tuple[int, float]:
    """Count one call for `ident` in the current minute: (calls so far, seconds left)."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    cache_key = f"throttle:{ident}:{window}"
    count = _counters.run(lambda store: count_up(store, cache_key, WINDOW_SECONDS + 5))
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
