"""Hostile-scan benchmark (issue 21.7): agent parameters shaped to make a backtracking
credential scan quadratic, at the API body limit (256 KiB), against a benign parameter
of the same size, same process, same run.

    .venv/bin/python bench/hostile_scan.py [--repeat 5] [--python-bytes 8192]

For each shape it prints the median of `--repeat` runs of
  scan     approvals.credential_scan.mask over the params (the RE2 scan, issue target
           < 100 ms),
  decide   POST /api/v1/actions in-process (Django test client: auth, gate, scan,
           storage, audit; a read tool, so every request is allowed and stored),
and both as a multiple of the benign baseline. With `--python-bytes N` (0: off) it also
times detect-secrets' own Python patterns on the shape cut to N bytes, the scan before
RE2, for contrast (quadratic: 4x the bytes, about 16x the time).

Needs a local PostgreSQL (BENCH_SCAN_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench_scan; created and migrated if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from benchdb import ensure_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench_scan"
ROOM = 512  # the rest of the body: {"tool": ..., "params": {"q": ...}}


def _fill(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _nested(size: int) -> dict:
    depth, node = 60, {}
    each = size // depth // 2
    for level in range(depth):
        node = {"s": _fill("//" + "/" * 50, each), "l": [_fill("a", each // 4)] * 3, "n": node}
        node["k"] = level
    return node


def shapes(size: int) -> dict[str, dict]:
    """The same shapes as tests/security/test_hostile_scan.py; "benign" first."""
    return {
        "benign": {"q": _fill("The quick brown fox jumps over the lazy dog. ", size)},
        "slashes": {"q": "//" + "/" * (size - 2)},
        "base64_run": {"q": _fill("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy+/", size)},
        "a_then_equals": {"q": "a" * (size - 1) + "="},
        "nested_json": {"q": _nested(size)},
        "url_prefixes": {"q": _fill("https://u:", size)},
        "userinfo_prefixes": {"q": _fill("://a:b", size)},
        "token_prefixes": {"q": _fill("eyJ", size)},
        "npm_lines": {"q": _fill("//a/:_authToken=", size)},
        "random_printable": {"q": _random(size)},
    }


def _random(size: int) -> str:
    import random

    rng = random.Random(21)
    alphabet = "abcdefABCDEF0123456789:/@=._-+ '"
    return "".join(rng.choice(alphabet) for _ in range(size))


def setup(database_url: str):
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-" + "k" * 50,
        # base64 of a bench-only 32-byte Ed25519 seed (audit checkpoints and entry MACs)
        WARDEN_AUDIT_SIGNING_KEY=os.environ.get("WARDEN_AUDIT_SIGNING_KEY")
        or "YmVuY2gtb25seS1hdWRpdC1zaWduaW5nLWtleS0zMmI=",
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from approvals.catalog import tool_create
    from approvals.guard import operator_seeding
    from common.actor import Actor
    from keys.services import key_create
    from tenants.services import user_get_or_create, workspace_create

    call_command("migrate", verbosity=0)
    actor = Actor.system("bench")
    suffix = uuid.uuid4().hex[:8]
    owner = user_get_or_create(email=f"bench-{suffix}@bench.local")
    workspace = workspace_create(
        reason="benchmark set-up", slug=f"scan-{suffix}", name="Bench", owner=owner, actor=actor
    )
    with operator_seeding():  # set-up, as an operator at a shell
        tool_create(
            reason="benchmark set-up",
            workspace=workspace,
            actor=actor,
            name="crm.lookup",
            level="read",
        )
        issued = key_create(
            reason="benchmark set-up",
            workspace=workspace,
            name="bench-agent",
            owner=owner,
            scopes=["actions:read"],
            tool_allowlist=["crm.*"],
            rate_limit_per_minute=100_000,
            actor=actor,
        )
    return Client(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")


def median_ms(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def python_scan_ms(params: dict, size: int) -> float:
    """detect-secrets' Python patterns over the strings of `params`, cut to `size`."""
    from common.credentials import PATTERNS

    def strings(value):
        if isinstance(value, str):
            yield value[:size]
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    texts, budget = [], size
    for text in strings(params):  # the first `size` characters of text in all
        texts.append(text[:budget])
        budget -= len(texts[-1])
        if budget <= 0:
            break
    started = time.perf_counter()
    for text in texts:
        for _, pattern in PATTERNS:
            if pattern.search(text):
                break
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--python-bytes", type=int, default=8192)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_SCAN_DATABASE_URL", DEFAULT_DB)
    ensure_database(database_url)
    client = setup(database_url)

    from django.conf import settings

    from approvals.credential_scan import mask

    size = settings.WARDEN_API_MAX_BODY_BYTES - ROOM
    print(f"parameter size {size:,} bytes (body limit {settings.WARDEN_API_MAX_BODY_BYTES:,})")
    header = f"{'shape':<18} {'scan ms':>8} {'x benign':>8} {'decide ms':>10} {'x benign':>8}"
    if args.python_bytes:
        header += f"  {'python re ms @ ' + str(args.python_bytes) + ' B':>22}"
    print(header)
    warm = json.dumps({"tool": "crm.lookup", "params": shapes(4096)["benign"]})
    for _ in range(3):  # the process's first requests (lazy imports, first DFA states)
        client.post("/api/v1/actions", warm, content_type="application/json")
    base_scan = base_decide = None
    for name, params in shapes(size).items():
        body = json.dumps({"tool": "crm.lookup", "params": params})
        assert len(body) <= settings.WARDEN_API_MAX_BODY_BYTES, (name, len(body))

        def decide(body=body):
            response = client.post("/api/v1/actions", body, content_type="application/json")
            assert response.status_code == 200, response.content[:300]

        scan = median_ms(lambda params=params: mask(params), args.repeat)
        decided = median_ms(decide, args.repeat)
        base_scan = base_scan or scan
        base_decide = base_decide or decided
        line = (
            f"{name:<18} {scan:>8.1f} {scan / base_scan:>8.1f} "
            f"{decided:>10.1f} {decided / base_decide:>8.1f}"
        )
        if args.python_bytes:
            line += f"  {python_scan_ms(params, args.python_bytes):>22.1f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
