"""Per-credential rate limit over the Django cache (Redis in production).

A fixed one-minute window with an atomic counter: one cache round trip per call,
and exact across gunicorn workers (DRF's SimpleRateThrottle keeps a history list
with a read-modify-write that races between processes)."""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from keys.models import MachineKey

WINDOW_SECONDS = 60


def window_hit(ident: str) -> tuple[int, float]:
    """Count one call for `ident` in the current minute: (calls so far, seconds left)."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    cache_key = f"throttle:{ident}:{window}"
    if cache.add(cache_key, 1, timeout=WINDOW_SECONDS + 5):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=WINDOW_SECONDS + 5)
            count = 1
    return count, (window + 1) * WINDOW_SECONDS - now


class PrincipalRateThrottle(BaseThrottle):
    def _identity(self, request) -> tuple[str, int] | None:
        if isinstance(request.auth, MachineKey):
            return f"key:{request.auth.pk}", request.auth.rate_limit_per_minute
        if request.user is not None and request.user.is_authenticated:
            return f"user:{request.user.pk}", settings.WARDEN_USER_RATE_PER_MINUTE
        return None

    def allow_request(self, request, view) -> bool:
        identity = self._identity(request)
        if identity is None:
            return True
        ident, limit = identity
        count, self._wait = window_hit(ident)
        return count <= limit

    def wait(self) -> float:
        return max(1.0, getattr(self, "_wait", WINDOW_SECONDS))
