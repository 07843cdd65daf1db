"""The HTTP load driver the benches share: keep-alive clients, latencies in ms."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

BODY = json.dumps({"tool": "crm.lookup", "params": {"id": 1}})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def drive(
    ports: list[int],
    keys: list[str],
    endpoint: str,
    total: int,
    threads: int,
    seconds: float | None = None,
) -> tuple[list[float], float, int]:
    """`total` requests over `threads` keep-alive connections, thread i on port i % N
    with key i % M; `endpoint` is "decision" (an allowed POST /actions), "floor" (the
    bench-only durable-write floor, bench/floor_urls.py) or "whoami".
    Stops early after `seconds`. Returns latencies (ms), elapsed seconds, errors."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = None if seconds is None else time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ports[i % len(ports)], timeout=30)
        headers = {
            "Authorization": f"Bearer {keys[i % len(keys)]}",
            "Content-Type": "application/json",
        }
        mine = []
        for _ in range(total // threads):
            if stop_at is not None and time.monotonic() > stop_at:
                break
            started = time.perf_counter()
            if endpoint == "decision":
                conn.request("POST", "/api/v1/actions", body=BODY, headers=headers)
            elif endpoint == "floor":
                conn.request("POST", "/bench/floor", body=BODY, headers=headers)
            else:
                conn.request("GET", "/api/v1/whoami", headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, time.perf_counter() - started, errors[0]
