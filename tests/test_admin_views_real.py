"""The admin's own views (object tools, the approval queue, evidence pages) run as in a
browser: outside any test transaction (tests/entry_points.py), each checking the change
and its audit entry are both there, or both absent on a refusal."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest
from audit.models import AuditEntry, EvidenceAttachment, ExceptionRecord, VersionLog
from audit.services import exception_record
from keys.models import MachineKey
from keys.services import key_rotate
from tenants.models import Membership, Role
from tests.conftest import SYSTEM
from tests.entry_points import entry_point

KEY_RE = re.compile(r"wdn_[0-9a-f]{12}_[A-Za-z0-9_-]{32,}")
KEYS = "/admin/keys/machinekey/"
QUEUE = "/admin/approvals/confirmationrequest/"
DOC_DIGEST = hashlib.sha256(b"change request").hexdigest()
LINK = {"url": "https://tickets.example.com/SEC-42", "sha256": DOC_DIGEST, "title": "Ticket"}


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def audit(workspace, action, **filters):
    return AuditEntry.objects.filter(workspace=workspace, action=action, **filters)


@pytest.fixture
def owner(workspace):
    return Membership.objects.get(workspace=workspace, role=Role.OWNER).user


# --- keys: revoke, rotate, claim, unsuspend -----------------------------------------------


@entry_point("adminview:keys_machinekey_revoke", "adminview:keys_machinekey_rotate")
def test_key_page_rotate_and_revoke_change_the_key_with_their_entries(
    workspace, owner, make_key, key_client
):
    key, old = make_key(workspace, owner=owner)
    client = browser(owner)
    response = client.post(f"{KEYS}{key.pk}/rotate/", {"reason": "test change", "grace_hours": "0"})
    [new] = KEY_RE.findall(response.content.decode())
    assert key_client(old).get("/api/v1/whoami").status_code == 401
    assert key_client(new).get("/api/v1/whoami").status_code == 200
    assert audit(workspace, "key.rotated", target_id=str(key.pk)).count() == 1
    client.post(f"{KEYS}{key.pk}/revoke/", {"reason": "leaked"})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert audit(workspace, "key.revoked", target_id=str(key.pk), rationale="leaked").exists()


@entry_point("adminview:keys_machinekey_claim")
def test_the_owner_claims_a_secret_rotated_by_someone_else(
    workspace, owner, make_member, make_key, key_client
):
    from common.actor import Actor

    holder = make_member(workspace, Role.ADMIN)
    key, _ = make_key(workspace, owner=holder)
    with transaction.atomic():
        key_rotate(key=key, actor=Actor.for_user(owner))  # the secret awaits its owner
    response = browser(holder).post(f"{KEYS}{key.pk}/claim/")
    [secret] = KEY_RE.findall(response.content.decode())
    assert key_client(secret).get("/api/v1/whoami").status_code == 200
    assert audit(workspace, "key.rotated", target_id=str(key.pk)).count() == 2
    key.refresh_from_db()
    assert not key.secret_pending


@pytest.fixture
def ask_gated(workspace, make_key, key_client):
    """An agent asks for a tool that always needs a human: returns the confirmation."""
    from approvals import catalog
    from approvals.guard import operator_seeding

    with operator_seeding():
        catalog.tool_create(reason="test set-up",
            workspace=workspace, actor=SYSTEM, name="crm.update", level="read",
            confirmation="always",
        )  # fmt: skip
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    agent = key_client(plaintext)

    def ask(deal):
        response = agent.post(
            "/api/v1/actions", {"tool": "crm.update", "params": {"deal": deal}}, format="json"
        )
        assert response.status_code == 202, response.json()
        return ConfirmationRequest.objects.get(action_request_id=response.json()["id"])

    return ask


# --- the approval queue -------------------------------------------------------------------


@entry_point(
    "adminview:keys_machinekey_unsuspend",
    "adminview:approvals_confirmationrequest_review",
    "adminview:approvals_confirmationrequest_decide",
)
def test_lifting_a_suspension_is_filed_reviewed_and_approved_in_the_admin(
    workspace, owner, make_member, make_key
):
    key, _ = make_key(workspace, name="suspended-agent")
    MachineKey.objects.filter(pk=key.pk).update(suspended_at=timezone.now())
    browser(owner).post(f"{KEYS}{key.pk}/unsuspend/", {"reason": "false alarm"})
    request = ActionRequest.objects.get(workspace=workspace, tool_name="warden.key.unsuspend")
    confirmation = request.confirmation
    approver = make_member(workspace, Role.ADMIN)
    client = browser(approver)
    assert 'id="decide-form"' in client.get(f"{QUEUE}{confirmation.pk}/").content.decode()
    client.post(f"{QUEUE}{confirmation.pk}/decide/", {"verdict": "approve", "reason": "ok"})
    key.refresh_from_db()
    assert key.suspended_at is None
    assert audit(workspace, "key.unsuspended", target_id=str(key.pk)).count() == 1
    assert audit(workspace, "confirmation.approved", target_id=str(confirmation.pk)).count() == 1
    assert ApprovalRecord.objects.filter(confirmation=confirmation).count() == 1


@entry_point("adminview:approvals_confirmationrequest_bulk_deny")
def test_bulk_deny_denies_each_request_with_its_entry(workspace, make_member, ask_gated):
    pending = [ask_gated(1), ask_gated(2)]
    approver = make_member(workspace, Role.APPROVER)
    browser(approver).post(
        f"{QUEUE}bulk-deny/", {"ids": [str(c.pk) for c in pending], "reason": "not now"}
    )
    for confirmation in pending:
        confirmation.refresh_from_db()
        assert confirmation.status == ConfirmationRequest.Status.DENIED
        assert audit(workspace, "confirmation.denied", target_id=str(confirmation.pk)).exists()


# --- evidence pages ---------------------------------------------------------------------


@entry_point("adminview:audit_auditentry_verify")
def test_verify_button_records_the_verification(workspace, make_member):
    auditor = make_member(workspace, Role.AUDITOR)
    response = browser(auditor).post(
        "/admin/audit/auditentry/verify/", {"workspace": workspace.slug}
    )
    assert response.status_code == 200 and "verifies" in response.content.decode()
    assert audit(workspace, "audit.verified").count() == 1


@entry_point(
    "adminview:privacy_summary",
    "adminview:privacy_summary_workspace",
    "adminview:privacy_summary_pdf",
)
def test_privacy_summary_pages_and_the_recorded_download(workspace, make_member):
    auditor = make_member(workspace, Role.AUDITOR)
    client = browser(auditor)
    index = client.get("/admin/audit/auditentry/privacy-summary/", follow=True)
    assert index.status_code == 200
    page = f"/admin/audit/auditentry/privacy-summary/{workspace.slug}/"
    assert client.get(page).status_code == 200
    response = client.get(f"{page}pdf/")
    assert response["Content-Type"] == "application/pdf"
    assert audit(workspace, "privacy_summary.downloaded").count() == 1


@pytest.fixture
def open_exception(workspace):
    with transaction.atomic():
        return exception_record(
            workspace=workspace,
            actor=SYSTEM,
            kind=ExceptionRecord.Kind.POLICY_ERROR,
            severity=ExceptionRecord.Severity.MEDIUM,
            what="Condition of crm.x failed",
            why="TypeError",
        )


@entry_point("adminview:audit_exceptionrecord_resolve")
def test_resolving_an_exception_in_the_admin_is_recorded(workspace, make_member, open_exception):
    admin = make_member(workspace, Role.ADMIN)
    page = f"/admin/audit/exceptionrecord/{open_exception.pk}/resolve/"
    browser(admin).post(page, {"reason": ""})
    open_exception.refresh_from_db()
    assert open_exception.resolved_at is None
    assert not audit(workspace, "exception.resolved").exists()
    browser(admin).post(page, {"reason": "fixed the rule", "mitigation": "rule v2"})
    open_exception.refresh_from_db()
    assert open_exception.resolved_at is not None
    assert audit(workspace, "exception.resolved").count() == 1


@entry_point(
    "adminview:audit_exceptionrecord_attach",
    "adminview:audit_versionlog_attach",
    "adminview:approvals_approvalrecord_attach",
)
def test_attaching_links_to_evidence_in_the_admin_is_recorded(
    workspace, make_member, open_exception, ask_gated
):
    auditor = make_member(workspace, Role.AUDITOR)
    client = browser(auditor)
    approver = make_member(workspace, Role.APPROVER)
    confirmation = ask_gated(1)
    browser(approver).post(
        f"{QUEUE}{confirmation.pk}/decide/", {"verdict": "approve", "reason": "ok"}
    )
    record = ApprovalRecord.objects.get(confirmation=confirmation)
    log = VersionLog.objects.filter(workspace=workspace).first()
    targets = [
        f"/admin/audit/exceptionrecord/{open_exception.pk}/attach/",
        f"/admin/audit/versionlog/{log.pk}/attach/",
        f"/admin/approvals/approvalrecord/{record.pk}/attach/",
    ]
    for url in targets:
        client.post(url, LINK)
    bad = client.post(
        targets[0], {"reason": "test change", **LINK, "url": "http://plain.example.com"}
    )
    assert bad.status_code in (200, 302)
    assert EvidenceAttachment.objects.filter(workspace=workspace).count() == 3
    assert audit(workspace, "evidence.attachment_added").count() == 3


@entry_point("adminview:keys_machinekey_unattended")
def test_switching_unattended_on_is_filed_and_off_applies_at_once_in_the_admin(
    workspace, owner, make_key
):
    key, _ = make_key(workspace, name="night-agent")
    browser(owner).post(f"{KEYS}{key.pk}/unattended/", {"reason": "batch jobs"})
    key.refresh_from_db()
    assert key.unattended_mode is False  # filed for a second person, not applied
    request = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert request.confirmation.status == "pending"
    with transaction.atomic(), operator_seeding():
        MachineKey.objects.filter(pk=key.pk).update(unattended_mode=True)
    browser(owner).post(f"{KEYS}{key.pk}/unattended/", {"reason": "back to attended"})
    key.refresh_from_db()
    assert key.unattended_mode is False  # narrowing: at once
    assert audit(workspace, "key.updated", target_id=str(key.pk)).count() == 1
