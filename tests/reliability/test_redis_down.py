"""Rate limits while Redis is down: each process keeps counting on its own, so a key is
still refused past its limit (never waved through), and nothing answers 500. When
Redis returns, counting is shared again."""

import time

import pytest
import redis

from keys import throttling
from tests.reliability.server import free_port


def redis_cache(port: int) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/5",
            "KEY_PREFIX": "reliability-tests",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


@pytest.fixture(autouse=True)
def _fresh_breaker(monkeypatch):
    monkeypatch.setattr(throttling._counters, "down_until", 0.0)
    monkeypatch.setattr(throttling._counters, "retry_seconds", 0.2)


def whoami_statuses(client, count: int) -> list[int]:
    return [client.get("/api/v1/whoami").status_code for _ in range(count)]


def test_with_redis_unreachable_the_limit_holds_per_process(
    settings, workspace, make_key, key_client, api_error, caplog
):
    settings.CACHES = redis_cache(free_port())  # nothing listens there
    _, plaintext = make_key(workspace, rate_limit_per_minute=3)
    client = key_client(plaintext)
    assert whoami_statuses(client, 3) == [200, 200, 200]
    refused = client.get("/api/v1/whoami")
    api_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1
    assert "Rate-limit cache unreachable" in caplog.text


@pytest.mark.slow
def test_redis_stopping_and_returning_under_traffic(
    settings, workspace, make_key, key_client, api_error, redis_server
):
    port, start, stop = redis_server
    settings.CACHES = redis_cache(port)
    key, plaintext = make_key(workspace, rate_limit_per_minute=4)
    client = key_client(plaintext)
    direct = redis.Redis(port=port, db=5)
    counter = f"*throttle:key:{key.pk}:*".encode()

    assert whoami_statuses(client, 2) == [200, 200]
    assert direct.keys(counter), "not counted in Redis"

    stop()
    during = whoami_statuses(client, 6)
    assert 500 not in during
    assert during[:4] == [200] * 4 and set(during[4:]) == {429}  # local count from zero

    start()
    time.sleep(0.3)  # past the breaker's pause
    assert client.get("/api/v1/whoami").status_code == 200
    assert direct.keys(counter), "not counted in Redis again"
