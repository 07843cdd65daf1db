"""Shared fixtures: workspaces, members, keys and API clients, built through services
so tests exercise the same paths as users."""

import itertools

import pytest
from django.core.cache import cache
from django.db import connection
from kombu import pools as kombu_pools
from rest_framework.test import APIClient

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from common import attempts
from common.actor import Actor
from keys import throttling
from keys.services import key_create
from notifications.services import automation_settings_update
from tenants.models import Role
from tenants.services import membership_add, user_get_or_create, workspace_create

SYSTEM = Actor.system("tests")
_seq = itertools.count(1)


# Audit tables refuse TRUNCATE (migration audit 0006), but Django's teardown of
# transactional tests flushes every table with TRUNCATE. In the test database only,
# those statement triggers are switched off; tests/audit/test_append_only.py switches
# them back on inside a test transaction to prove they refuse.
AUDIT_TRUNCATE_GUARDS = (
    "audit_auditentry",
    "audit_versionlog",
    "audit_exceptionrecord",
    "audit_auditchainhead",
    "audit_auditcheckpoint",
    "audit_auditquarantine",
    "audit_auditpending",
)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            for table in AUDIT_TRUNCATE_GUARDS:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_truncate")


@pytest.fixture
def operator_seeded():
    """For modules whose set-up calls the lower services directly (governance is not
    what they test): every governed write passes, as for an operator at a shell."""
    with operator_seeding():
        yield


@pytest.fixture(autouse=True)
def _celery_eager():
    """Each test starts with Celery eager over the in-memory broker (the test settings),
    whatever an earlier test left in the app's configuration: a test that publishes to a
    real broker for a while (tests/integration, tests/reliability) must not leave a later
    test's `.delay()` publishing through a closed producer pool."""
    from config.celery import app

    app.conf.update(task_always_eager=True, broker_url="memory://")
    # Eager `apply_async` still takes a producer from kombu's global pools, keyed by
    # broker; a test that closed one (switching brokers) leaves it closed in kombu's
    # registry, and every later `.delay()` fails with "Acquire on closed pool". The
    # registries key by kombu's eq-hash, so `dict.get(connection)` never finds a pool:
    # look at every registered pool instead.
    producers = list(kombu_pools.producers.values())
    pools = [app._pool, *kombu_pools.connections.values(), *producers]
    pools += [getattr(p, "connections", None) for p in producers]
    if any(getattr(p, "_closed", False) for p in pools if p is not None):
        kombu_pools.reset()
        app._pool = None
        app.amqp._producer_pool = None
    yield


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with empty counters, shared and per process, and no remembered
    cache outage: a test that made Redis unreachable left the guessing counters on
    their local fallback for 5 s of real time, and a following test's lockout, counted
    half there and half in the shared cache, did not hold (a flaky CI failure)."""
    for counters in (attempts._counters, throttling._counters):
        counters.down_until = 0.0
        counters.local.clear()
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_user(db):
    def make(email=None, password="pw-for-tests-1"):
        user = user_get_or_create(email=email or f"user{next(_seq)}@example.test")
        user.set_password(password)
        user.save()
        return user

    return make


@pytest.fixture
def make_workspace(db, make_user):
    def make(slug=None, owner=None, **settings):
        n = next(_seq)
        workspace = workspace_create(
            reason="test set-up",
            slug=slug or f"ws{n}",
            name=f"Workspace {n}",
            owner=owner or make_user(),
            actor=SYSTEM,
        )
        if settings:
            for field, value in settings.items():
                setattr(workspace, field, value)
            with operator_seeding():  # set-up, like an operator; tests use the door
                workspace.save()
        return workspace

    return make


@pytest.fixture
def make_member(make_user):
    def make(workspace, role=Role.MEMBER, email=None):
        user = make_user(email)
        with operator_seeding():
            membership_add(
                reason="test set-up", workspace=workspace, user=user, role=role, actor=SYSTEM
            )
        return user

    return make


@pytest.fixture
def make_key(make_member):
    """Returns (MachineKey, plaintext)."""

    def make(workspace, scopes=("actions:read",), tools=("*",), owner=None, **fields):
        owner = owner or make_member(workspace, Role.ADMIN)
        with operator_seeding():
            issued = key_create(
                workspace=workspace,
                name=fields.pop("name", f"agent-{next(_seq)}"),
                owner=owner,
                scopes=list(scopes),
                tool_allowlist=list(tools),
                actor=SYSTEM,
                reason=fields.pop("reason", "test set-up"),
                **fields,
            )
        return issued.key, issued.plaintext

    return make


@pytest.fixture
def key_client():
    def make(plaintext):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        return client

    return make


@pytest.fixture
def user_client():
    """A logged-in session client. CSRF checks are off here; tests of CSRF itself use
    APIClient(enforce_csrf_checks=True)."""

    def make(user, workspace=None):
        client = APIClient(enforce_csrf_checks=False)
        client.force_login(user)
        if workspace is not None:
            client.defaults["HTTP_X_WARDEN_WORKSPACE"] = workspace.slug
        return client

    return make


@pytest.fixture
def workspace(make_workspace):
    return make_workspace()


@pytest.fixture
def other_workspace(make_workspace):
    return make_workspace()


@pytest.fixture
def api_error():
    """Asserts a JSON error with a stable code and returns its body: never HTML, never 500."""

    def check(response, status, code):
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
        body = response.json()
        assert response.status_code == status, body
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "detail"}, body
        assert body["error"]["code"] == code, body
        return body

    return check


# --- the gate's usual cast: shared by tests/approvals, notifications, reliability, gateway


@pytest.fixture
def make_tool():
    """A catalog tool built through the catalog service (set-up: governance passes)."""

    def make(workspace, name="crm.lookup", **fields):
        with operator_seeding():
            return tool_create(
                workspace=workspace,
                actor=SYSTEM,
                name=name,
                reason=fields.pop("reason", "test set-up"),
                **fields,
            )

    return make


@pytest.fixture
def live_workspace(make_workspace):
    """Writes on, outbound off, live mode: the strictest realistic setup."""
    return make_workspace(writes_enabled=True, mode="live")


@pytest.fixture
def allow_hosts():
    """The operator allowlists hosts (by default the loopback one of the local fake
    upstreams and receivers) as destinations for a workspace's outbound calls."""

    def allow(workspace, entries=("127.0.0.1",)):
        with operator_seeding():  # set-up: widening the allowlist is governed
            return automation_settings_update(
                reason="test set-up",
                workspace=workspace,
                actor=SYSTEM,
                changes={"webhook_host_allowlist": list(entries)},
                operator=True,
            )

    return allow


@pytest.fixture
def agent(live_workspace, make_key, key_client):
    """(key, client) with every action scope and a `*` allowlist."""
    key, plaintext = make_key(
        live_workspace, scopes=["actions:read", "actions:write", "actions:external"]
    )
    return key, key_client(plaintext)


@pytest.fixture
def approver(live_workspace, make_member):
    return make_member(live_workspace, Role.APPROVER)


@pytest.fixture
def ask():
    """POST /api/v1/actions as `client`."""

    def call(client, tool, params=None, **extra):
        body = {"tool": tool, "params": params or {}, **extra}
        return client.post("/api/v1/actions", body, format="json")

    return call


@pytest.fixture
def approve(user_client):
    """A human's verdict through the API, in `workspace`."""

    def call(user, workspace, confirmation_id, verdict="approve", reason="looks right"):
        client = user_client(user, workspace)
        return client.post(
            f"/api/v1/approvals/{confirmation_id}/{verdict}", {"reason": reason}, format="json"
        )

    return call
