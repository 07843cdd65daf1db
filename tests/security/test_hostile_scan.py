"""Agent text is scanned in linear time (issue 21.7): a parameter shaped to make a
backtracking engine take quadratic time, at the 256 KiB body limit, is decided through
POST /api/v1/actions well under a second, for a tool the key may call and for one that
does not exist. (Before RE2, "//" + "/" * 20000 alone took seconds; at the limit,
minutes.) bench/hostile_scan.py prints the timings of the same shapes."""

import json
import time

import pytest
from django.conf import settings

from approvals.credential_scan import CREDENTIAL_PREFIX
from approvals.models import ActionRequest

pytestmark = pytest.mark.django_db

SECONDS = 1.0
# Room in the body for {"tool": ..., "params": {"q": ...}} and JSON escapes.
ROOM = 512


def _fill(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _nested(size: int) -> dict:
    """60 levels of objects, each holding a long string and a list of shorter ones."""
    depth, node = 60, {}
    each = size // depth // 2
    for level in range(depth):
        node = {"s": _fill("//" + "/" * 50, each), "l": [_fill("a", each // 4)] * 3, "n": node}
        node["k"] = level
    return node


def hostile_params(size: int) -> dict[str, dict]:
    """Shapes that made a backtracking credential scan quadratic, `size` bytes each."""
    return {
        "slashes": {"q": "//" + "/" * (size - 2)},
        "base64_run": {"q": _fill("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy+/", size)},
        "a_then_equals": {"q": "a" * (size - 1) + "="},
        "nested_json": {"q": _nested(size)},
        "url_prefixes": {"q": _fill("https://u:", size)},
        "userinfo_prefixes": {"q": _fill("://a:b", size)},
        "token_prefixes": {"q": _fill("eyJ", size)},
        "npm_lines": {"q": _fill("//a/:_authToken=", size)},
    }


def benign_params(size: int) -> dict:
    return {"q": _fill("The quick brown fox jumps over the lazy dog. ", size)}


@pytest.fixture
def size():
    return settings.WARDEN_API_MAX_BODY_BYTES - ROOM


def _timed(ask, client, tool, params):
    body_bytes = len(json.dumps({"tool": tool, "params": params}))
    assert body_bytes <= settings.WARDEN_API_MAX_BODY_BYTES, body_bytes
    # What is timed is the hostile request, not the process's first one (lazy imports,
    # the credential patterns' 0.6 s translation, RE2's first DFA states).
    ask(client, tool, {"q": "warm up " * 4})
    started = time.perf_counter()
    response = ask(client, tool, params)
    return response, time.perf_counter() - started


@pytest.mark.parametrize("shape", sorted(hostile_params(1024)))
def test_a_hostile_parameter_at_the_body_limit_is_decided_under_a_second(
    make_tool, live_workspace, agent, ask, size, shape
):
    make_tool(live_workspace, "crm.lookup", level="read")
    _, client = agent
    params = hostile_params(size)[shape]
    response, seconds = _timed(ask, client, "crm.lookup", params)
    assert response.status_code == 200, response.json()
    assert seconds < SECONDS, f"{shape}: {seconds:.2f}s"
    # Decided and stored as sent: none of these shapes is a credential.
    stored = ActionRequest.objects.get(pk=response.json()["id"]).params
    assert CREDENTIAL_PREFIX not in json.dumps(stored)


@pytest.mark.parametrize("shape", ["slashes", "userinfo_prefixes", "token_prefixes"])
def test_a_hostile_parameter_for_an_unknown_tool_is_refused_under_a_second(
    agent, ask, api_error, size, shape
):
    _, client = agent
    response, seconds = _timed(ask, client, "nothing.here", hostile_params(size)[shape])
    api_error(response, 403, "tool_not_allowed")
    assert seconds < SECONDS, f"{shape}: {seconds:.2f}s"


def test_a_credential_after_a_hostile_run_is_still_found(
    make_tool, live_workspace, agent, ask, size
):
    """Linear, and still scanning everything: the credential sits at the far end."""
    make_tool(live_workspace, "crm.lookup", level="read")
    _, client = agent
    url = "postgres://app:s3cr3t-pass@db.internal:5432/app"
    params = {"q": "//" + "/" * (size - 2 - len(url) - 1) + " " + url}
    response, seconds = _timed(ask, client, "crm.lookup", params)
    assert response.status_code == 200, response.json()
    assert seconds < SECONDS
    stored = ActionRequest.objects.get(pk=response.json()["id"]).params
    assert stored["q"].startswith(CREDENTIAL_PREFIX)
