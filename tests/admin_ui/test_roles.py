"""One table: what each role may open or do in the admin, for one workspace's objects.

`outsider` is the owner of another workspace: a full admin elsewhere, nothing here.
302 means "sent to the login page" (no admin access at all); 404 means the object is
invisible (scoped away); 403 means the page exists for the user but the role forbids it.
"""

import pytest
from django.db import transaction

from approvals.models import ApprovalRecord, ConfirmationRequest
from audit.models import AuditAction, AuditEntry, ExceptionRecord
from audit.services import exception_record
from common.actor import Actor
from tenants.models import Role

OK, LOGIN, FORBIDDEN, HIDDEN = 200, 302, 403, 404
ROLES = ("owner", "admin", "approver", "auditor", "member", "outsider")

# page -> expected status per role, in ROLES order.
GET_MATRIX = {
    "queue": (OK, OK, OK, FORBIDDEN, LOGIN, OK),
    "review": (OK, OK, OK, FORBIDDEN, LOGIN, HIDDEN),
    "audit_list": (OK, OK, FORBIDDEN, OK, LOGIN, OK),
    "audit_detail": (OK, OK, FORBIDDEN, OK, LOGIN, HIDDEN),
    "exception_detail": (OK, OK, FORBIDDEN, OK, LOGIN, HIDDEN),
    "approval_records": (OK, OK, FORBIDDEN, OK, LOGIN, OK),
    "version_logs": (OK, OK, FORBIDDEN, OK, LOGIN, OK),
    "privacy_page": (OK, OK, FORBIDDEN, OK, LOGIN, HIDDEN),
    "privacy_pdf": (OK, OK, FORBIDDEN, OK, LOGIN, HIDDEN),
    "admin_home": (OK, OK, OK, OK, LOGIN, OK),
}


@pytest.fixture
def world(workspace, other_workspace, make_member, make_key, make_pending):
    users = {
        role: make_member(workspace, role)
        for role in (Role.ADMIN, Role.APPROVER, Role.AUDITOR, Role.MEMBER)
    }
    users[Role.OWNER] = workspace.memberships.get(role=Role.OWNER).user
    users["outsider"] = other_workspace.memberships.get(role=Role.OWNER).user
    key, _ = make_key(workspace, owner=users[Role.MEMBER])
    pending = make_pending(workspace, key, count=3)
    with transaction.atomic():
        exception = exception_record(
            workspace=workspace,
            actor=Actor.system("tests"),
            kind="anomaly",
            severity="low",
            what="w",
            why="y",
        )
    entry = AuditEntry.objects.filter(workspace=workspace).first()
    urls = {
        "queue": "/admin/approvals/confirmationrequest/",
        "review": f"/admin/approvals/confirmationrequest/{pending[0].pk}/",
        "audit_list": "/admin/audit/auditentry/",
        "audit_detail": f"/admin/audit/auditentry/{entry.pk}/change/",
        "exception_detail": f"/admin/audit/exceptionrecord/{exception.pk}/change/",
        "approval_records": "/admin/approvals/approvalrecord/",
        "version_logs": "/admin/audit/versionlog/",
        "privacy_page": f"/admin/audit/auditentry/privacy-summary/{workspace.slug}/",
        "privacy_pdf": f"/admin/audit/auditentry/privacy-summary/{workspace.slug}/pdf/",
        "admin_home": "/admin/",
    }
    return {"workspace": workspace, "users": users, "urls": urls, "pending": pending}


def _status(response) -> int:
    # Django's admin answers a missing or unpermitted object on the change view by
    # redirecting to the admin home with a message, not with a 404.
    if response.status_code == 302 and "/admin/login/" not in response["Location"]:
        return HIDDEN
    return response.status_code


@pytest.mark.parametrize("page", sorted(GET_MATRIX))
@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
def test_pages_by_role(world, admin_client_for, page, role_index):
    role = ROLES[role_index]
    expected = GET_MATRIX[page][role_index]
    response = admin_client_for(world["users"][role]).get(world["urls"][page])
    assert _status(response) == expected, (page, role, response.status_code)


@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
def test_queue_rows_by_role(world, admin_client_for, role_index):
    role = ROLES[role_index]
    response = admin_client_for(world["users"][role]).get(world["urls"]["queue"])
    if response.status_code != 200:
        return
    shown = {row["confirmation"].pk for row in response.context["rows"]}
    mine = {c.pk for c in world["pending"]}
    assert shown == (set() if role == "outsider" else mine)


@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
def test_audit_rows_by_role(world, admin_client_for, role_index):
    role = ROLES[role_index]
    response = admin_client_for(world["users"][role]).get(world["urls"]["audit_list"])
    if response.status_code != 200:
        return
    workspaces = {e.workspace_id for e in response.context["cl"].result_list}
    if role == "outsider":
        assert world["workspace"].pk not in workspaces
    else:
        assert workspaces == {world["workspace"].pk}


# role -> may deny through the admin (approve_actions); the key belongs to the member.
DENY_ALLOWED = {
    "owner": True,
    "admin": True,
    "approver": True,
    "auditor": False,
    "member": False,
    "outsider": False,
}


@pytest.mark.parametrize("role", ROLES)
def test_deny_by_role(world, admin_client_for, role):
    confirmation = world["pending"][0]
    admin_client_for(world["users"][role]).post(
        f"/admin/approvals/confirmationrequest/{confirmation.pk}/decide/",
        {"verdict": "deny", "reason": f"{role} says no"},
    )
    confirmation.refresh_from_db()
    assert (confirmation.status == ConfirmationRequest.Status.DENIED) is DENY_ALLOWED[role]
    assert ApprovalRecord.objects.exists() is DENY_ALLOWED[role]


@pytest.mark.parametrize("role", ROLES)
def test_verify_by_role(world, admin_client_for, role):
    admin_client_for(world["users"][role]).post(
        "/admin/audit/auditentry/verify/", {"workspace": world["workspace"].slug}
    )
    verified = AuditEntry.objects.filter(
        workspace=world["workspace"], action=AuditAction.AUDIT_VERIFIED
    ).exists()
    assert verified is (role in ("owner", "admin", "auditor"))


def test_exception_records_are_never_editable(world, admin_client_for):
    record = ExceptionRecord.objects.get(workspace=world["workspace"])
    response = admin_client_for(world["users"][Role.OWNER]).post(
        f"/admin/audit/exceptionrecord/{record.pk}/change/",
        {"reason": "test change", "what": "rewritten"},
    )
    assert response.status_code == 403
    record.refresh_from_db()
    assert record.what == "w"
