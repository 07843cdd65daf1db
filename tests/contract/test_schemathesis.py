"""schemathesis over the whole API schema, in process through the WSGI app, once with
a machine key and once with a human session (cookie + CSRF token): every answer must
be documented (status code, content type, body schema) and none may be a 5xx. Then
the stateful phase chains operations through links schemathesis infers from the
schema (create a key, read it, rotate it...), with the same checks.

Uses schemathesis' Python API rather than its pytest plugin, whose lazy fixture loader
does not support pytest 9. Bounded: EXAMPLES per operation and STATEFUL_* below; the
counts of the last run are in README ("API contract")."""

from collections import Counter

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.stateful import run_state_machine_as_test

from approvals.asking import action_submit
from approvals.demo import load_demo_tools
from approvals.guard import operator_seeding
from common.actor import Actor
from tenants.models import Role
from tests.conftest import SYSTEM

EXAMPLES = 10
STATEFUL_SCENARIOS = 40
STATEFUL_STEPS = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

pytestmark = pytest.mark.slow


@pytest.fixture
def api_schema(db, settings):
    from config.wsgi import application

    settings.ALLOWED_HOSTS = ["testserver", "localhost"]  # schemathesis' WSGI host
    settings.WARDEN_USER_RATE_PER_MINUTE = 1_000_000  # fuzzing is not the rate test
    # Calling the WSGI app directly fires request_started/finished, whose
    # close_old_connections would drop the test's transaction on PostgreSQL.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def demo_workspace(make_workspace):
    workspace = make_workspace(writes_enabled=True, mode="live")
    with operator_seeding():  # set-up, like an operator at a shell
        load_demo_tools(workspace=workspace, actor=SYSTEM)
    return workspace


@pytest.fixture
def key_auth(demo_workspace, make_key):
    key, plaintext = make_key(
        demo_workspace,
        scopes=["workspace:admin"],
        rate_limit_per_minute=100_000,
    )
    # Something pending, so the approval and action endpoints have rows to show.
    action_submit(key=key, tool_name="email.send", params={"to": "a@b.c"}, actor=Actor.for_key(key))
    return {"headers": {"Authorization": f"Bearer {plaintext}"}}


@pytest.fixture
def session_auth(demo_workspace, key_auth, make_member):
    """A human admin's session cookie, its CSRF token and the workspace header."""
    browser = Client()
    browser.force_login(make_member(demo_workspace, Role.ADMIN))
    token = _get_new_csrf_string()
    return {
        "cookies": {"sessionid": browser.cookies["sessionid"].value, "csrftoken": token},
        "headers": {"X-CSRFToken": token, "X-Warden-Workspace": demo_workspace.slug},
    }


class Run:
    """Counts cases and statuses, and collects every failed check (all of them, not
    just the first), so one run reports the whole picture."""

    def __init__(self):
        self.cases = 0
        self.statuses = Counter()
        self.failures = []

    def check(self, case, response):
        self.cases += 1
        self.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as failure:
            found = getattr(failure, "exceptions", (failure,))
            titles = sorted({getattr(f, "title", type(f).__name__) for f in found})
            self.failures.append(f"{case.method} {case.path} -> {response.status_code}: {titles}")

    def report(self, who: str) -> str:
        return f"{who}: {self.cases} cases, statuses {dict(sorted(self.statuses.items()))}"


def fuzz(schema, auth, *, skip=()) -> Run:
    run = Run()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in skip:
            continue

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def one(case):
            run.check(case, case.call(**auth))

        one()
    return run


def test_every_operation_keeps_its_contract_for_a_key(api_schema, key_auth):
    run = fuzz(api_schema, key_auth)
    print(run.report("key"))
    assert run.failures == [], run.failures
    assert run.cases >= 30 * EXAMPLES // 2


def test_every_operation_keeps_its_contract_for_a_session(api_schema, session_auth):
    # Logging out would end the session under test (tests/contract covers it).
    run = fuzz(api_schema, session_auth, skip={"DELETE /api/v1/session"})
    print(run.report("session"))
    assert run.failures == [], run.failures
    assert run.statuses[200] > 0


@pytest.mark.parametrize("who", ["key", "session"])
def test_stateful_sequences_keep_the_contract(api_schema, key_auth, session_auth, who):
    auth = key_auth if who == "key" else session_auth
    run = Run()
    base = api_schema.exclude(path_regex=r"/session$").as_state_machine()

    class Machine(base):
        # Every scenario starts from the same data (a savepoint rolled back after it),
        # so the rules hypothesis may draw do not depend on earlier scenarios.
        def setup(self):
            self.savepoint = transaction.savepoint()

        def teardown(self):
            transaction.savepoint_rollback(self.savepoint)
            cache.clear()

        def get_call_kwargs(self, case):
            return auth

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            run.check(case, response)

    run_state_machine_as_test(
        Machine,
        settings=hypothesis_settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
    print(run.report(f"stateful {who}"))
    assert run.failures == [], run.failures
    assert run.cases > STATEFUL_SCENARIOS


# --- data checks: the schema says exactly what the server accepts (issue 26.6) --------
DATA_EXAMPLES = 10

# Positive data these operations refuse for a rule OpenAPI 3.0 cannot state: a CEL
# condition's grammar and variables, a policy document's own schema and YAML text,
# addresses the egress checks refuse (https, resolution, the allowlist), header names
# (no propertyNames in 3.0), allowlist patterns, an owner who must be a member, an
# expiry in the future. Each answers 400 validation_error / policy_invalid naming the
# field (400 only: any other failure of theirs counts); nothing else may be refused,
# nor accepted against the schema.
SEMANTIC_RULES = {
    "POST /api/v1/tools",
    "PATCH /api/v1/tools/{id}",
    "POST /api/v1/connectors",
    "PATCH /api/v1/connectors/{id}",
    "POST /api/v1/keys",
    "POST /api/v1/policy/plan",
    "POST /api/v1/policy/test",
    "POST /api/v1/policy/apply",
    "POST /api/v1/policy/simulate",  # proposed catalog entries: the policy document's tools
    "PATCH /api/v1/workspace",  # outbound allowlist entries; outbound_hosts sent alone
    # confirmed <-> confirmation_token: stated in x-warden-requires, as an object-level
    # anyOf breaks generated clients (common/api/schema.py).
    "POST /api/v1/actions",
    # `reason` must be there and not blank, answered with the stable 400 reason_required
    # by the one rule (audit.services.require_reason) rather than the serializer's generic
    # validation_error; the field's description says so, `required` does not (and the
    # confirmed re-call of a governed workspace change needs none). Open: issue 26.6.
    "POST /api/v1/members",
    "DELETE /api/v1/workspace",
}


@pytest.fixture
def agent_key_auth(demo_workspace, make_key):
    key, plaintext = make_key(
        demo_workspace,
        scopes=["actions:read", "actions:write", "actions:external", "tools:write"],
        rate_limit_per_minute=100_000,
    )
    action_submit(key=key, tool_name="email.send", params={"to": "a@b.c"}, actor=Actor.for_key(key))
    return {"headers": {"Authorization": f"Bearer {plaintext}"}}


def fuzz_data(schema, auth) -> dict[str, str]:
    """Positive cases with positive_data_acceptance, negative ones with
    negative_data_rejection, for every operation; the failures as
    "METHOD path -> status: title" (unique), each with the first answer's body."""
    from schemathesis import GenerationMode
    from schemathesis.checks import negative_data_rejection, positive_data_acceptance

    # OpenAPI 3.0 cannot constrain the keys of a free-form object (no propertyNames):
    # every declared string carries TEXT_PATTERN; the fuzzer keeps NUL out of the rest.
    schema.config.generation.update(allow_x00=False)
    # A body over WARDEN_API_MAX_BODY_BYTES is refused unread with 413: a rejection of
    # invalid data like 400 (no schema-valid body reaches the limit: lengths, items and
    # headers are bounded).
    schema.config.checks.negative_data_rejection.expected_statuses.append("413")
    failures: dict[str, str] = {}

    def run(operation, mode, check):
        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=DATA_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def one(case):
            response = case.call(**auth)
            try:
                case.validate_response(response, checks=[check])
            except (AssertionError, FailureGroup) as failure:
                for found in getattr(failure, "exceptions", (failure,)):
                    title = getattr(found, "title", type(found).__name__)
                    key = f"{case.operation.label} -> {response.status_code}: {title}"
                    failures.setdefault(key, response.text[:300])

        one()

    for result in schema.get_all_operations():
        operation = result.ok()
        run(operation, GenerationMode.POSITIVE, positive_data_acceptance)
        run(operation, GenerationMode.NEGATIVE, negative_data_rejection)
    return dict(sorted(failures.items()))


@pytest.mark.parametrize("who", ["agent", "admin"])
def test_the_schema_states_what_the_server_accepts(api_schema, agent_key_auth, key_auth, who):
    failures = fuzz_data(api_schema, agent_key_auth if who == "agent" else key_auth)
    print(f"{who}: {len(failures)} unique failures")
    for failure, answer in failures.items():
        print(f"  {failure}\n      {answer}")
    unexplained = [
        failure
        for failure in failures
        if failure.split(" -> ")[0] not in SEMANTIC_RULES
        or not failure.endswith("-> 400: Schema-valid request rejected")
    ]
    assert unexplained == []
