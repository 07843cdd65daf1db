"""Property-based fuzzing of the gate's endpoints against our own OpenAPI schema,
in process through the WSGI app, authenticated with a machine key: zero server errors.

Uses schemathesis' Python API (operation strategies driven by hypothesis) rather than
its pytest plugin, whose lazy fixture loader does not support pytest 9."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from approvals.demo import load_demo_tools
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
def demo_key(make_workspace, make_key):
    workspace = make_workspace(writes_enabled=True, mode="live")
    load_demo_tools(workspace=workspace, actor=SYSTEM)
    _, plaintext = make_key(
        workspace,
        scopes=["actions:read", "actions:write", "actions:external", "tools:write"],
        rate_limit_per_minute=100_000,
    )
    return plaintext


def operations(schema):
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found


def test_gate_endpoints_never_answer_5xx(gate_schema, demo_key):
    headers = {"Authorization": f"Bearer {demo_key}"}
    ops = operations(gate_schema)
    labels = {op.label for op in ops}
    assert "POST /api/v1/actions" in labels and "POST /api/v1/approvals/{id}/approve" in labels
    for operation in ops:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()
