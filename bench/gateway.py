"""Gateway benchmark: an allowed MCP `tools/call` through Warden's /mcp (gate, audit,
execution record, upstream call with Warden's credential) against the same call sent
to the upstream directly, same upstream, same client, same run; also the decision path
alone (POST /api/v1/actions, nothing executed) and Warden with its keep-alive pool off
(WARDEN_CONNECTOR_KEEPALIVE_SECONDS=0, the gateway before the pool), rounds alternating
so that a busy machine weighs on every path alike.

    .venv/bin/python bench/gateway.py [--requests 300] [--threads 2] [--rounds 3]

The upstream is a FastMCP server (official `mcp` SDK, stateless Streamable HTTP, JSON
answers) on a free loopback port; Warden runs under gunicorn (bench/decision.py) on
another. Needs a local PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench_gateway). Prints p50/p99 for both
paths, the p50/p99 Warden adds, and the ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import uvicorn
from benchdb import ensure_database
from decision import ROOT, bench_env, free_port, percentile, start_gunicorn
from mcp.server.fastmcp import Context, FastMCP

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench_gateway"
CREDENTIAL = "Bearer bench-upstream-credential"
CALL = {"name": "lookup", "arguments": {"customer_id": 7}}


def start_upstream() -> tuple[int, list]:
    seen: list = []
    server = FastMCP("bench-upstream", host="127.0.0.1", stateless_http=True, json_response=True)

    @server.tool(description="Look a customer up by id.")
    def lookup(customer_id: int, ctx: Context) -> dict:
        seen.append(ctx.request_context.request.headers.get("authorization"))
        return {"customer_id": customer_id, "name": "Ada Lovelace"}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runner = uvicorn.Server(
        uvicorn.Config(server.streamable_http_app(), log_level="warning", access_log=False)
    )
    threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 15
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return port, seen


def seed(env: dict[str, str], upstream_port: int) -> str:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from approvals.catalog import tool_update
    from approvals.guard import operator_seeding
    from approvals.models import Tool
    from common.actor import Actor
    from gateway.services import connector_create, connector_sync
    from keys.services import key_create
    from notifications.services import automation_settings_update
    from tenants.services import user_get_or_create, workspace_create

    actor = Actor.system("bench")
    suffix = uuid.uuid4().hex[:8]
    # An operator seeds the bench: going live, the connector and the enabled tool are
    # governed operations a human would approve through the door.
    with operator_seeding():
        owner = user_get_or_create(email=f"bench-{suffix}@bench.local")
        workspace = workspace_create(
            reason="benchmark set-up", slug=f"gw-{suffix}", name="Bench", owner=owner, actor=actor
        )
        workspace.mode, workspace.writes_enabled = "live", True
        workspace.save()
        automation_settings_update(
            reason="benchmark set-up",
            workspace=workspace,
            actor=actor,
            changes={"webhook_host_allowlist": ["127.0.0.1"]},
            operator=True,
        )
        connector = connector_create(
            reason="benchmark set-up",
            workspace=workspace,
            actor=actor,
            name="crm",
            url=f"http://127.0.0.1:{upstream_port}/mcp",
            headers={"Authorization": CREDENTIAL},
        )
        connector_sync(connector=connector, actor=actor)
        tool_update(
            reason="benchmark set-up",
            tool=Tool.objects.get(workspace=workspace, name="crm.lookup"),
            actor=actor,
            changes={"enabled": True, "level": "read", "confirmation": "never"},
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
    return issued.plaintext


def drive(port, path, headers, message, total, threads) -> tuple[list[float], int]:
    body = json.dumps(message)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        # Like gateway.outbound: no Nagle delay and a quick ACK on a kept-alive connection
        # (without them every call here waited ~40 ms for a delayed ACK, and the direct
        # path looked 40 ms slower than the upstream is).
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mine = []
        for _ in range(total // threads):
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            if hasattr(socket, "TCP_QUICKACK"):  # as gateway.outbound does (Linux)
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            response = conn.getresponse()
            answer = response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or b'"isError":true' in answer.replace(b" ", b""):
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies, errors[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per path and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = bench_env(database_url)
    env.update(
        WARDEN_CONNECTOR_PRIVATE_NETWORKS="127.0.0.0/8",
        WARDEN_WEBHOOK_ALLOW_HTTP="1",
        WARDEN_SECRETS_KEY=env.get("WARDEN_SECRETS_KEY")
        or "YmVuY2gtb25seS1mZXJuZXQta2V5LTMyLWJ5dGVzISE=",
    )
    ensure_database(database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    upstream_port, seen = start_upstream()
    key = seed(env, upstream_port)
    # Two Warden servers, same code and database: one reuses upstream connections (the
    # default), one opens a new connection per call (the gateway before the pool).
    port, port_unpooled = free_port(), free_port()
    server = start_gunicorn(env, port)  # the production server (config.asgi)
    unpooled = start_gunicorn({**env, "WARDEN_CONNECTOR_KEEPALIVE_SECONDS": "0"}, port_unpooled)
    accept = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {**CALL}}
    warden_message = {**message, "params": {**CALL, "name": "crm.lookup"}}
    as_agent = {**accept, "Authorization": f"Bearer {key}"}
    paths = {  # name: (port, path, headers, message, label)
        "direct": (
            upstream_port,
            "/mcp",
            {**accept, "Authorization": CREDENTIAL},
            message,
            "tools/call to the upstream directly",
        ),
        "decision": (
            port,
            "/api/v1/actions",
            as_agent,
            {"tool": "crm.lookup", "params": CALL["arguments"]},
            "decision only (POST /api/v1/actions)",
        ),
        "unpooled": (
            port_unpooled,
            "/mcp",
            as_agent,
            warden_message,
            "through Warden /mcp, new connection per call",
        ),
        "warden": (port, "/mcp", as_agent, warden_message, "through Warden /mcp, keep-alive pool"),
    }
    results: dict[str, tuple[list[float], int]] = {name: ([], 0) for name in paths}
    try:
        for p, path, headers, body, _ in paths.values():  # warm up
            drive(p, path, headers, body, 20, 2)
        for round_no in range(args.rounds):
            # The path measured later in a round came out slower whatever it was: swap
            # the two Warden paths every other round so neither carries that bias.
            order = list(paths)
            if round_no % 2:
                order[2], order[3] = order[3], order[2]
            for name in order:
                p, path, headers, body, _ = paths[name]
                lat, errors = drive(p, path, headers, body, args.requests, args.threads)
                results[name] = (results[name][0] + lat, results[name][1] + errors)
    finally:
        for process in (server, unpooled):
            process.terminate()
            process.wait(timeout=30)

    print(f"{args.threads} client threads, {args.rounds} alternating rounds, PostgreSQL")
    print(f"{'path':<48}{'calls':>7}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    summary = {}
    for name, (*_, label) in paths.items():
        lat, errors = results[name]
        summary[name] = (percentile(lat, 50), percentile(lat, 99))
        print(
            f"{label:<48}{len(lat):>7}{summary[name][0]:>9.2f}{summary[name][1]:>9.2f}{errors:>8}"
        )
    direct, decision = summary["direct"], summary["decision"]
    for name in ("unpooled", "warden"):
        through = summary[name]
        added = (through[0] - direct[0], through[1] - direct[1])
        to_direct = (through[0] / direct[0], through[1] / direct[1])
        to_decision = (added[0] / decision[0], added[1] / decision[1])
        print(
            f"{paths[name][4]}: adds p50 {added[0]:.2f} ms, p99 {added[1]:.2f} ms; "
            f"x direct p50 {to_direct[0]:.2f}, p99 {to_direct[1]:.2f}; "
            f"added / decision p50 {to_decision[0]:.2f}, p99 {to_decision[1]:.2f}"
        )
    print(f"upstream saw Warden's credential on every call: {set(seen) == {CREDENTIAL}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
