"""The embedded default under contention: a real server (`runserver`, one thread per
connection) on a SQLite file, hit by many clients at the same instant. No answer is
ever a 500, and each state change happens exactly once."""

from collections import Counter

import pytest

from tests.reliability.server import WardenServer, all_at_once

pytestmark = pytest.mark.slow

CONFIRMS = 50
PAIRS = 20  # 40 denies (two per confirmation), 40 result reports (two per action)


@pytest.fixture(scope="module")
def server(migrated_sqlite, tmp_path_factory):
    """One server for the module, seeded once: each test races over objects of its own
    (the approved confirmation, the ones to deny, the allowed actions)."""
    running = WardenServer(migrated_sqlite, tmp_path_factory.mktemp("contention"))
    yield running.start(str(PAIRS))
    running.stop()


def statuses(replies) -> Counter:
    return Counter(reply.status for reply in replies)


def test_fifty_concurrent_confirmed_recalls_allow_exactly_once(server):
    confirm = server.seed["confirm"]
    body = {
        "tool": "crm.update_stage",
        "params": confirm["params"],
        "confirmed": True,
        "confirmation_token": confirm["token"],
    }
    replies = all_at_once(
        [server.agent_call("POST", "/api/v1/actions", body) for _ in range(CONFIRMS)]
    )
    assert statuses(replies) == {200: 1, 409: CONFIRMS - 1}, [r.body for r in replies]
    refused = {r.body["error"]["code"] for r in replies if r.status == 409}
    assert refused == {"confirmation_used"}
    (allowed,) = [r for r in replies if r.status == 200]
    assert allowed.body["decision"] == "allowed"
    status = server.as_agent("GET", f"/api/v1/actions/{allowed.body['id']}")
    assert status.body["status"] == "allowed"


def test_concurrent_denies_decide_each_confirmation_once(server):
    calls = [
        server.approver_call("POST", f"/api/v1/approvals/{pk}/deny", {"reason": "not now"})
        for pk in server.seed["to_deny"] * 2
    ]
    replies = all_at_once(calls)
    assert statuses(replies) == {200: PAIRS, 409: PAIRS}, [r.body for r in replies]
    assert {r.body["error"]["code"] for r in replies if r.status == 409} == {"already_decided"}
    denied = Counter(r.body["id"] for r in replies if r.status == 200)
    assert set(denied) == set(server.seed["to_deny"]) and set(denied.values()) == {1}


def test_concurrent_result_reports_are_recorded_once(server):
    calls = [
        server.agent_call(
            "POST", f"/api/v1/actions/{pk}/result", {"status": "succeeded", "output": {"ok": 1}}
        )
        for pk in server.seed["allowed"] * 2
    ]
    replies = all_at_once(calls)
    assert statuses(replies) == {200: PAIRS, 409: PAIRS}, [r.body for r in replies]
    assert {r.body["error"]["code"] for r in replies if r.status == 409} == {"conflict"}
    for pk in server.seed["allowed"]:
        assert server.as_agent("GET", f"/api/v1/actions/{pk}").body["status"] == "executed"
