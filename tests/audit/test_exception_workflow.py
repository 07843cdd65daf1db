"""Exceptions are a workflow: resolved with a reason, from the API and the admin."""

import pytest
from django.test import Client

from audit.models import AuditEntry, ExceptionRecord
from audit.services import exception_record
from tenants.models import Role
from tests.conftest import SYSTEM


@pytest.fixture
def record(workspace):
    from django.db import transaction

    with transaction.atomic():
        return exception_record(
            workspace=workspace,
            actor=SYSTEM,
            kind=ExceptionRecord.Kind.POLICY_ERROR,
            severity=ExceptionRecord.Severity.MEDIUM,
            what="Condition of crm.x failed",
            why="TypeError",
        )


def url(record):
    return f"/api/v1/audit/exceptions/{record.pk}/resolve"


def test_an_admin_resolves_with_a_reason_and_it_is_audited(
    workspace, record, make_member, user_client
):
    admin = make_member(workspace, Role.ADMIN)
    response = user_client(admin, workspace).post(
        url(record), {"reason": "condition fixed", "mitigation": "v2 of the rule"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["resolved"] is True
    record.refresh_from_db()
    assert record.resolved_by == f"user:{admin.email}" and record.mitigation == "v2 of the rule"
    entry = AuditEntry.objects.get(action="exception.resolved")
    assert entry.rationale == "condition fixed"


def test_a_reason_is_required(workspace, record, make_member, user_client, api_error):
    admin = make_member(workspace, Role.ADMIN)
    api_error(
        user_client(admin, workspace).post(url(record), {}, format="json"), 400, "validation_error"
    )
    record.refresh_from_db()
    assert record.resolved_at is None


def test_an_auditor_may_read_but_not_resolve(
    workspace, record, make_member, user_client, api_error
):
    auditor = make_member(workspace, Role.AUDITOR)
    response = user_client(auditor, workspace).post(url(record), {"reason": "x"}, format="json")
    api_error(response, 403, "forbidden_by_scope")


def test_keys_may_not_resolve(workspace, record, make_key, key_client, api_error):
    _, plaintext = make_key(workspace, scopes=["workspace:admin"])
    api_error(
        key_client(plaintext).post(url(record), {"reason": "x"}, format="json"), 403, "humans_only"
    )


def test_another_workspace_cannot_see_it(
    record, other_workspace, make_member, user_client, api_error
):
    admin = make_member(other_workspace, Role.ADMIN)
    response = user_client(admin, other_workspace).post(url(record), {"reason": "x"}, format="json")
    api_error(response, 404, "not_found")


def test_resolving_twice_is_a_conflict(workspace, record, make_member, user_client, api_error):
    client = user_client(make_member(workspace, Role.ADMIN), workspace)
    client.post(url(record), {"reason": "done"}, format="json")
    api_error(client.post(url(record), {"reason": "again"}, format="json"), 409, "conflict")


def test_resolve_from_the_admin(workspace, record, make_member):
    admin = make_member(workspace, Role.ADMIN)
    browser = Client()
    browser.force_login(admin)
    page = f"/admin/audit/exceptionrecord/{record.pk}/resolve/"
    assert browser.get(page).status_code == 200
    browser.post(page, {"reason": ""})
    record.refresh_from_db()
    assert record.resolved_at is None
    browser.post(page, {"reason": "fixed the rule", "mitigation": "rule v2"})
    record.refresh_from_db()
    assert record.resolved_at is not None and record.mitigation == "rule v2"
