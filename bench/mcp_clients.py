"""Connect-to-first-call time of real MCP clients against a live Warden (docs
"Connecting an agent"): from nothing (no session, no token) to the answer of the first
`tools/call`, the way each client does it.

    .venv/bin/python bench/mcp_clients.py [--runs 5]

- `mcp SDK, static key`: the official Python client with `Authorization: Bearer wdn_…`:
  initialize, tools/list, tools/call.
- `mcp SDK, OAuth`: the same client with its OAuthClientProvider and empty storage:
  the 401, protected-resource and authorization-server metadata, dynamic registration,
  PKCE authorization with a scripted human's consent (two HTTP requests, no think
  time), the token, then initialize, tools/list, tools/call.
- `mcp SDK, OAuth reconnect`: the same with the tokens of an earlier connection.
- `OpenAI Agents SDK, static key`: `MCPServerStreamableHttp` connect, list_tools,
  call_tool (what an agent run does before the model sees a result).
- `MCP Inspector CLI, static key`: one `mcp-inspector --cli … --method tools/call`
  process (Node start-up included), if MCP_INSPECTOR or ~/.cache/warden-inspector has it.

The upstream is a FastMCP server on a loopback port; Warden runs under gunicorn
(2 workers, gthread) on another, with a local PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/warden_bench_mcp_clients). Prints min / median / max
in milliseconds per client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from benchdb import ensure_database
from decision import ROOT, bench_env, free_port, start_gunicorn
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.server.fastmcp import FastMCP
from mcp.shared.auth import OAuthClientMetadata

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench_mcp_clients"
CALLBACK = "http://127.0.0.1:33420/callback"
ARGUMENTS = {"customer_id": 42}


def start_upstream() -> int:
    server = FastMCP("bench-upstream", host="127.0.0.1", stateless_http=True, json_response=True)

    @server.tool(description="Look a customer up by id.")
    def lookup(customer_id: int) -> dict:
        return {"customer_id": customer_id, "name": "Ada Lovelace"}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    runner = uvicorn.Server(
        uvicorn.Config(server.streamable_http_app(), log_level="warning", access_log=False)
    )
    threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 15
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return sock.getsockname()[1]


def seed(env: dict[str, str], upstream_port: int) -> dict:
    """A live workspace with the upstream's tool enabled (read, no confirmation), a
    static key, and its owner's browser session for the OAuth consent."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

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
    with operator_seeding():
        owner = user_get_or_create(email=f"bench-{suffix}@bench.local")
        workspace = workspace_create(
            reason="benchmark set-up", slug=f"mc-{suffix}", name="Bench", owner=owner, actor=actor
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
            headers={},
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
    browser = Client()
    browser.force_login(owner)
    return {
        "key": issued.plaintext,
        "workspace_id": str(workspace.pk),
        "session_cookie": f"{settings.SESSION_COOKIE_NAME}="
        + browser.cookies[settings.SESSION_COOKIE_NAME].value,
        "csrf_cookie_name": settings.CSRF_COOKIE_NAME,
    }


# --- the clients ---------------------------------------------------------------------------


async def _list_and_call(client: ClientSession) -> None:
    await client.initialize()
    tools = (await client.list_tools()).tools
    result = await client.call_tool(tools[0].name, ARGUMENTS)
    if result.isError:
        raise RuntimeError(f"the first call failed: {result.content}")


async def sdk_static(url: str, world: dict) -> None:
    headers = {"Authorization": f"Bearer {world['key']}"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as client,
    ):
        await _list_and_call(client)


class _Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens = self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


class _Hidden(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


class _Human:
    """The logged-in owner's browser: shows the consent page and submits it at once."""

    def __init__(self, world: dict) -> None:
        self.world = world
        self.callback: tuple[str, str | None] | None = None

    async def redirect(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(timeout=30) as browser:
            shown = await browser.get(
                authorization_url, headers={"Cookie": self.world["session_cookie"]}
            )
            shown.raise_for_status()
            form = _Hidden()
            form.feed(shown.text)
            csrf = shown.cookies.get(self.world["csrf_cookie_name"])
            answered = await browser.post(
                authorization_url.split("?")[0],
                data={
                    **form.fields,
                    "workspace": self.world["workspace_id"],
                    "granted_scopes": ["actions:read"],
                    "tool_allowlist": "crm.*",
                    "allow": "on",
                },
                headers={
                    "Referer": authorization_url,
                    "Cookie": f"{self.world['session_cookie']}; "
                    f"{self.world['csrf_cookie_name']}={csrf}",
                },
            )
        if answered.status_code != 302:
            raise RuntimeError(f"consent answered {answered.status_code}")
        query = parse_qs(urlsplit(answered.headers["location"]).query)
        self.callback = (query["code"][0], query.get("state", [None])[0])

    async def callback_handler(self):
        return self.callback


async def sdk_oauth(url: str, world: dict, storage: _Memory | None = None) -> None:
    """With `storage` holding tokens from an earlier run: a reconnect, no consent."""
    human = _Human(world)
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="bench client",
            redirect_uris=[CALLBACK],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage if storage is not None else _Memory(),
        redirect_handler=human.redirect,
        callback_handler=human.callback_handler,
    )
    async with (
        httpx.AsyncClient(auth=provider, timeout=30) as http,
        streamable_http_client(url, http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as client,
    ):
        await _list_and_call(client)


async def agents_static(url: str, world: dict) -> None:
    from agents.mcp import MCPServerStreamableHttp

    params = {"url": url, "headers": {"Authorization": f"Bearer {world['key']}"}, "timeout": 30}
    async with MCPServerStreamableHttp(params=params, name="warden") as server:
        tools = await server.list_tools()
        result = await server.call_tool(tools[0].name, ARGUMENTS)
        if result.isError:
            raise RuntimeError(f"the first call failed: {result.content}")


def inspector_path() -> str | None:
    explicit = os.environ.get("MCP_INSPECTOR")
    cached = Path.home() / ".cache/warden-inspector/node_modules/.bin/mcp-inspector"
    for candidate in (explicit, str(cached)):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def inspector_static(url: str, world: dict, inspector: str) -> None:
    done = subprocess.run(
        [
            inspector,
            "--cli",
            url,
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {world['key']}",
            "--method",
            "tools/call",
            "--tool-name",
            "crm-lookup",
            "--tool-arg",
            "customer_id=42",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(Path.home())},
    )
    if done.returncode != 0 or "Ada Lovelace" not in done.stdout:
        raise RuntimeError(f"inspector: {done.returncode} {done.stdout[-500:]}{done.stderr[-500:]}")


def timed(runs: int, once) -> list[float]:
    once()  # warm-up: gunicorn workers import, connections open
    figures = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        figures.append((time.perf_counter() - started) * 1000)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = bench_env(database_url)
    env.update(
        WARDEN_CONNECTOR_PRIVATE_NETWORKS="127.0.0.0/8",
        WARDEN_WEBHOOK_ALLOW_HTTP="1",
        WARDEN_SECRETS_KEY=env.get("WARDEN_SECRETS_KEY")
        or "YmVuY2gtb25seS1mZXJuZXQta2V5LTMyLWJ5dGVzISE=",
        WARDEN_OAUTH_REGISTRATIONS_PER_HOUR="0",  # every OAuth run registers a client
    )
    ensure_database(database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    world = seed(env, start_upstream())
    port = free_port()
    server = start_gunicorn(env, port, "gthread")
    url = f"http://127.0.0.1:{port}/mcp"
    stored = _Memory()  # filled by the reconnect's warm-up, the one consent it needs
    clients = {
        "mcp SDK, static key": lambda: asyncio.run(sdk_static(url, world)),
        "mcp SDK, OAuth (registration + consent)": lambda: asyncio.run(sdk_oauth(url, world)),
        "mcp SDK, OAuth reconnect (stored tokens)": lambda: asyncio.run(
            sdk_oauth(url, world, stored)
        ),
        "OpenAI Agents SDK, static key": lambda: asyncio.run(agents_static(url, world)),
    }
    inspector = inspector_path()
    if inspector:
        clients["MCP Inspector CLI 2.x, static key"] = lambda: inspector_static(
            url, world, inspector
        )
    try:
        print(f"connect-to-first-call, {args.runs} runs each (ms): min / median / max")
        for name, once in clients.items():
            try:
                figures = timed(args.runs, once)
            except Exception as error:  # one client failing does not hide the others
                print(f"  {name:42} failed: {error}")
                continue
            print(
                f"  {name:42} {min(figures):7.0f} / {statistics.median(figures):7.0f} / "
                f"{max(figures):7.0f}"
            )
        if not inspector:
            print("  MCP Inspector CLI: not installed (see .ci/run install_inspector)")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
