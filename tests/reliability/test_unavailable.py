"""The 503 contract: a lock wait that ran out, a serialization failure, a deadlock or a
lost connection answers `503 unavailable` with Retry-After, never 500, and leaves
nothing written; a retry then succeeds. A real defect stays a 500."""

import sqlite3
import threading

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection, connections, transaction
from django.test import RequestFactory

from approvals.asking import action_submit
from approvals.catalog import tool_create
from approvals.confirmations import confirmation_approve
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ConfirmationRequest
from audit import services as audit_services
from audit.models import AuditEntry
from common.actor import Actor
from common.middleware import ApiJsonErrorsMiddleware
from tenants.models import Role

SYSTEM = Actor.system("tests")


def wrapped(cause: Exception) -> OperationalError:
    """What Django raises for a driver error: its own class, the driver's as cause."""
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError as exc:
        return exc


TRANSIENT = {
    "sqlite busy": wrapped(sqlite3.OperationalError("database is locked")),
    "postgres serialization": wrapped(
        psycopg.errors.SerializationFailure("could not serialize access")
    ),
    "postgres deadlock": wrapped(psycopg.errors.DeadlockDetected("deadlock detected")),
    "postgres lock timeout": wrapped(psycopg.errors.LockNotAvailable("lock timeout")),
    "connection lost": wrapped(psycopg.OperationalError("server closed the connection")),
    "connection closed": InterfaceError("connection already closed"),
}


def assert_unavailable(response, api_error):
    body = api_error(response, 503, "unavailable")
    assert int(response["Retry-After"]) >= 1
    assert body["error"]["detail"] == {"retry_after": int(response["Retry-After"])}
    return body


@pytest.fixture
def read_tool(live_workspace):
    with operator_seeding():
        return tool_create(
            reason="test set-up",
            workspace=live_workspace,
            actor=SYSTEM,
            name="crm.lookup",
            level="read",
        )


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_transient_error_mid_decision_answers_503_and_writes_nothing(
    agent, read_tool, monkeypatch, api_error, error
):
    _, client = agent
    decisions_before = AuditEntry.objects.count()

    def fail(*args, **kwargs):
        raise error

    # The chain append, after the action row was written in the same transaction.
    monkeypatch.setattr(audit_services, "_chain_and_write", fail)
    body = {"tool": "crm.lookup", "params": {"id": 1}, "idempotency_key": "retry-me"}
    response = client.post("/api/v1/actions", body, format="json")
    assert_unavailable(response, api_error)
    assert not ActionRequest.objects.exists()
    assert AuditEntry.objects.count() == decisions_before

    monkeypatch.undo()
    retried = client.post("/api/v1/actions", body, format="json")
    assert retried.status_code == 200, retried.json()
    assert ActionRequest.objects.count() == 1


def test_a_real_defect_is_still_a_500_not_a_retry(agent, read_tool, monkeypatch, api_error):
    _, client = agent

    def fail(*args, **kwargs):
        raise wrapped(sqlite3.OperationalError("no such table: audit_auditentry"))

    monkeypatch.setattr(audit_services, "_chain_and_write", fail)
    response = client.post("/api/v1/actions", {"tool": "crm.lookup"}, format="json")
    api_error(response, 500, "internal_error")
    assert "Retry-After" not in response


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_the_api_middleware_maps_what_escapes_a_view_the_same_way(error):
    request = RequestFactory().get("/api/v1/whoami")
    response = ApiJsonErrorsMiddleware(lambda r: None).process_exception(request, error)
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert b'"code": "unavailable"' in response.content


def test_outside_the_api_the_middleware_leaves_errors_to_django():
    request = RequestFactory().get("/admin/")
    error = TRANSIENT["sqlite busy"]
    assert ApiJsonErrorsMiddleware(lambda r: None).process_exception(request, error) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_postgres_lock_timeout_answers_503_then_the_retry_is_allowed_once(
    live_workspace, agent, make_member, api_error
):
    """A confirmation row held by another transaction longer than lock_timeout."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    key, client = agent
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=live_workspace,
            actor=SYSTEM,
            name="crm.update_stage",
            level="write",
            confirmation="always",
        )
    outcome = action_submit(
        key=key, tool_name="crm.update_stage", params={"deal": 1}, actor=Actor.for_key(key)
    )
    confirmation = ConfirmationRequest.objects.get()
    confirmation_approve(
        confirmation=confirmation,
        reason="fine",
        actor=Actor.for_user(make_member(live_workspace, Role.APPROVER)),
    )
    body = {
        "tool": "crm.update_stage",
        "params": {"deal": 1},
        "confirmed": True,
        "confirmation_token": outcome.confirmation_token,
    }
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                ConfirmationRequest.objects.select_for_update().get(pk=confirmation.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        assert_unavailable(client.post("/api/v1/actions", body, format="json"), api_error)
        confirmation.refresh_from_db()
        assert confirmation.status == ConfirmationRequest.Status.APPROVED  # untouched
    finally:
        release.set()
        holder.join(timeout=30)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    retried = client.post("/api/v1/actions", body, format="json")
    assert retried.status_code == 200, retried.json()
    again = client.post("/api/v1/actions", body, format="json")
    api_error(again, 409, "confirmation_used")
