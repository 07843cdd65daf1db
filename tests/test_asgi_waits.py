"""The production server (config.asgi): a long-poll is parked on the event loop and
holds no thread, so other calls are served while waits pend; waits stay capped per key
(429 too_many_waits); a parked wait answers as soon as a human decides, or pending at
its deadline, and spends one unit of the key's rate limit. Driven through the ASGI
interface with the server's own thread pool (one thread, so a held thread would show)."""

import asyncio
import json
import time

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connections

from config.asgi import WardenASGI
from tests.approvals.conftest import postgres_only

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres():
    postgres_only()  # threads sharing SQLite's in-memory test database lock each other


@pytest.fixture
def pending(live_workspace, agent, make_tool, ask):
    """(key plaintext's client, action id, confirmation id) of a pending request."""
    _, client = agent
    make_tool(live_workspace, "email.send", level="external", confirmation="always")
    body = ask(client, "email.send", {"to": "a@example.test"}).json()
    detail = client.get(f"/api/v1/actions/{body['id']}").json()
    return body["id"], detail["confirmation"]["id"]


def _bearer(client) -> bytes:
    return client._credentials["HTTP_AUTHORIZATION"].encode()


async def _get(app, path: str, query: str, authorization: bytes) -> tuple[int, dict, dict]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), (b"authorization", authorization)],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
    }
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = []

    async def receive():
        if incoming:
            return incoming.pop()
        await asyncio.sleep(3600)  # the client stays connected

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def _serve(scenario):
    """Run `scenario(app)` on a fresh server with ONE request thread, then close the
    database connections its threads opened."""
    app = WardenASGI(get_wsgi_application(), threads=1)

    async def run():
        try:
            return await scenario(app)
        finally:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(app.pool, connections.close_all)
            await loop.run_in_executor(app.polls, connections.close_all)

    return asyncio.run(run())


def test_parked_waits_hold_no_thread_and_answer_when_a_human_decides(
    live_workspace, agent, pending, approver, approve
):
    _, client = agent
    action_id, confirmation_id = pending
    path, bearer = f"/api/v1/actions/{action_id}", _bearer(client)

    async def scenario(app):
        loop = asyncio.get_running_loop()
        waits = [asyncio.create_task(_get(app, path, "wait=20", bearer)) for _ in range(3)]
        await asyncio.sleep(0.5)
        # Three waits pending, one request thread: another call is still served at once.
        status, _, body = await asyncio.wait_for(_get(app, "/api/v1/whoami", "", bearer), 5)
        assert status == 200 and body["workspace"]["slug"] == live_workspace.slug
        assert not any(wait.done() for wait in waits)
        decided = time.monotonic()

        def decide():
            try:
                approve(approver, live_workspace, confirmation_id, reason="fine")
            finally:
                connections.close_all()

        await loop.run_in_executor(None, decide)
        answers = await asyncio.wait_for(asyncio.gather(*waits), 10)
        return answers, time.monotonic() - decided

    answers, seconds = _serve(scenario)
    assert [(status, body["status"]) for status, _, body in answers] == [(200, "approved")] * 3
    assert seconds < 5  # polled every POLL_SECONDS, not at the 20 s deadline


def test_parked_waits_are_capped_per_key_with_429(settings, agent, pending):
    settings.WARDEN_WAITS_PER_KEY = 1
    _, client = agent
    action_id, _ = pending
    path, bearer = f"/api/v1/actions/{action_id}", _bearer(client)

    async def scenario(app):
        first = asyncio.create_task(_get(app, path, "wait=2", bearer))
        await asyncio.sleep(0.5)
        refused = await asyncio.wait_for(_get(app, path, "wait=2", bearer), 5)
        answered = await first
        again = await _get(app, path, "wait=1", bearer)  # the slot was released
        return refused, answered, again

    refused, answered, again = _serve(scenario)
    status, headers, body = refused
    assert status == 429 and body["error"]["code"] == "too_many_waits"
    assert int(headers["retry-after"]) >= 1
    assert (answered[0], answered[2]["status"]) == (200, "pending")  # at its deadline
    assert (again[0], again[2]["status"]) == (200, "pending")


def test_a_parked_wait_spends_one_unit_of_the_rate_limit(
    live_workspace, make_key, key_client, pending
):
    _, plaintext = make_key(
        live_workspace,
        scopes=["actions:read", "actions:write", "actions:external"],
        rate_limit_per_minute=2,
    )
    client = key_client(plaintext)
    action_id, _ = pending
    # The limited key asks for its own pending request.
    own = client.post(
        "/api/v1/actions", {"tool": "email.send", "params": {"to": "b@x.test"}}, format="json"
    ).json()["id"]
    assert action_id != own

    async def scenario(app):
        # Call 2 of 2 this minute: parked, then run again for its answer (not counted).
        waited = await _get(app, f"/api/v1/actions/{own}", "wait=1", _bearer(client))
        limited = await _get(app, "/api/v1/whoami", "", _bearer(client))
        return waited, limited

    waited, limited = _serve(scenario)
    assert (waited[0], waited[2]["status"]) == (200, "pending")
    assert limited[0] == 429 and limited[2]["error"]["code"] == "rate_limited"


def test_bodies_are_read_as_django_asks_an_oversized_one_is_refused_unread(
    settings, live_workspace, agent, make_tool
):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    bearer = _bearer(client)
    chunk = b" " * 65536

    async def post(body_chunks, length: int):
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/actions",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"authorization", bearer),
                (b"content-type", b"application/json"),
                (b"content-length", str(length).encode()),
            ],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000),
        }
        received, sent = [0], []

        async def receive():
            received[0] += 1
            piece = next(body_chunks, None)
            if piece is None:
                await asyncio.sleep(3600)
            return {"type": "http.request", "body": piece[0], "more_body": piece[1]}

        async def send(message):
            sent.append(message)

        await app_holder[0](scope, receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"]), received[0]

    app_holder = []

    async def scenario(app):
        app_holder.append(app)
        huge = iter([(chunk, True)] * 10_000)  # 640 MiB announced and offered
        refused = await post(huge, 65536 * 10_000)
        payload = json.dumps({"tool": "crm.lookup", "params": {"id": 1}}).encode()
        halves = iter([(payload[:10], True), (payload[10:], False)])
        allowed = await post(halves, len(payload))
        return refused, allowed

    refused, allowed = _serve(scenario)
    assert refused[0] == 413 and refused[1]["error"]["code"] == "payload_too_large"
    assert refused[2] <= 2  # the body was not read
    assert allowed[0] == 200 and allowed[1]["decision"] == "allowed"
