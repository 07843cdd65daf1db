"""Property-based fuzzing of the gate's endpoints against our own OpenAPI schema,
in process through the WSGI app, authenticated with a machine key: zero server errors.

Uses schemathesis' Python API (operation strategies driven by hypothesis) rather than
its pytest plugin, whose lazy fixture loader does not support pytest 9."""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from approvals.asking import action_submit
from approvals.demo import load_demo_tools
from approvals.guard import operator_seeding
from common.actor import Actor
from tenants.models import Role
from tests.approvals.conftest import SYSTEM

GATE_PATHS = r"^/api/v1/(actions|tools|approvals)"
EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def gate_schema(db, settings):
    from config.wsgi import application

    settings.ALLOWED_HOSTS = ["testserver", "localhost"]  # schemathesis' WSGI host
    # Calling the WSGI app directly fires request_started/finished, whose
    # close_old_connections would drop the test's transaction on PostgreSQL (Django's
    # test client disconnects it the same way).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application).include(
            path_regex=GATE_PATHS
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def demo_workspace(make_workspace):
    workspace = make_workspace(writes_enabled=True, mode="live")
    with operator_seeding():
        load_demo_tools(workspace=workspace, actor=SYSTEM)
    return workspace


@pytest.fixture
def demo_key(demo_workspace, make_key):
    key, plaintext = make_key(
        demo_workspace,
        scopes=["actions:read", "actions:write", "actions:external", "tools:write"],
        rate_limit_per_minute=100_000,
    )
    # Something pending, so the approval endpoints have rows to show.
    action_submit(key=key, tool_name="email.send", params={"to": "a@b.c"}, actor=Actor.for_key(key))
    return plaintext


@pytest.fixture
def approver_session(demo_workspace, make_member):
    """Session cookie and workspace header of a human approver (CSRF applies)."""
    user = make_member(demo_workspace, Role.ADMIN)
    browser = Client()
    browser.force_login(user)
    return {"sessionid": browser.cookies["sessionid"].value}, {
        "X-Warden-Workspace": demo_workspace.slug
    }


def operations(schema):
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found


# Hostile but well-formed values (issue 15.4): non-finite numbers (sent as the JSON
# tokens Infinity / NaN), NUL, unpaired surrogates, extreme dates, very long strings.
OVERFLOW = "__overflow__"  # becomes the number 1e400 in the JSON text
HOSTILE_VALUES = [
    OVERFLOW,
    float("inf"),
    float("-inf"),
    float("nan"),
    "\x00",
    "a\x00b",
    "\ud800",
    "x" * 10_000,
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
]


def with_hostile_value(case, value, index: int):
    """The generated case with one body field (and the params inside, when there are
    any) and every query parameter replaced by a hostile value."""
    if isinstance(case.body, dict):
        fields = list(case.body) or ["params"]
        body = {**case.body, fields[index % len(fields)]: value}
        if isinstance(body.get("params"), dict):
            body["params"] = {**body["params"], "hostile": value}
        case.body = body
    if case.query:
        case.query = {name: _in_url(value) for name in case.query}
    return case


def _in_url(value) -> str:
    """A URL cannot carry a lone surrogate (the client fails to encode it before any
    request is made): send the bytes it stands for instead."""
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("latin-1")
    return text


def raw_json(case) -> dict:
    """The body as JSON text with the non-finite tokens the requests library refuses to
    write (NaN, Infinity) and a float that overflows (1e400); lone surrogates travel as
    JSON escapes (\\ud800), which json.dumps writes.

    The case keeps only encodable text afterwards: schemathesis serializes the case's own
    body again to report the request (and its reproduction), and a lone surrogate there
    failed with UnicodeEncodeError inside schemathesis, not in Warden."""
    if not isinstance(case.body, dict):
        return {}
    text = json.dumps(case.body).replace(f'"{OVERFLOW}"', "1e400")
    case.body = _encodable(case.body)
    return {"data": text.encode()}


def _encodable(value):
    """The value with every string (keys too) made encodable as UTF-8."""
    if isinstance(value, str):
        return _in_url(value)
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    return value


def hostile_strategy(operation):
    return st.tuples(
        operation.as_strategy(), st.sampled_from(HOSTILE_VALUES), st.integers(0, 20)
    ).map(lambda drawn: with_hostile_value(*drawn))


def fuzz_all(
    ops, strategy=lambda operation: operation.as_strategy(), body=lambda case: {}, **call_kwargs
):
    for operation in ops:

        @given(case=strategy(operation))
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case):
            response = case.call(**call_kwargs, **body(case))
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()


def test_gate_endpoints_never_answer_5xx_to_a_key(gate_schema, demo_key):
    ops = operations(gate_schema)
    labels = {op.label for op in ops}
    assert "POST /api/v1/actions" in labels and "POST /api/v1/approvals/{id}/approve" in labels
    fuzz_all(ops, headers={"Authorization": f"Bearer {demo_key}"})


def test_gate_endpoints_never_answer_5xx_to_a_session(gate_schema, demo_key, approver_session):
    cookies, headers = approver_session
    fuzz_all(operations(gate_schema), cookies=cookies, headers=headers)


def test_gate_endpoints_never_answer_5xx_to_hostile_values(gate_schema, demo_key):
    fuzz_all(
        operations(gate_schema),
        strategy=hostile_strategy,
        body=raw_json,
        headers={"Authorization": f"Bearer {demo_key}"},
    )
