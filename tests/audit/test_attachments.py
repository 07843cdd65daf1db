"""Evidence objects (approval records, exception records, version logs) accept
attachment links: an https URL plus the SHA-256 of the document, audited, validated and
scoped to the workspace, through the API and the admin."""

import hashlib

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ApprovalRecord
from audit.attachments import attachment_add
from audit.models import AuditEntry, EvidenceAttachment, ExceptionRecord, VersionLog
from audit.services import exception_record
from audit.verify import verify_chain
from common.errors import WardenError
from tenants.models import Role
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

DOC = b"signed change request #42"
DIGEST = hashlib.sha256(DOC).hexdigest()
URL = "https://tickets.example.com/browse/SEC-42"


def _exception(workspace) -> ExceptionRecord:
    with transaction.atomic():
        return exception_record(
            workspace=workspace,
            actor=SYSTEM,
            kind=ExceptionRecord.Kind.POLICY_ERROR,
            severity=ExceptionRecord.Severity.MEDIUM,
            what="Condition of crm.x failed",
            why="TypeError",
        )


@pytest.fixture
def record(workspace):
    return _exception(workspace)


@pytest.fixture
def auditor(workspace, make_member):
    return make_member(workspace, Role.AUDITOR)


def _url(record) -> str:
    return f"/api/v1/audit/exceptions/{record.pk}/attachments"


def test_an_auditor_attaches_a_link_to_an_exception_and_it_is_audited(
    workspace, record, auditor, user_client
):
    client = user_client(auditor, workspace)
    response = client.post(
        _url(record), {"url": URL, "sha256": DIGEST, "title": "Change request"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"] == URL and body["sha256"] == DIGEST
    assert body["target_type"] == "exception_record" and body["target_id"] == str(record.pk)
    assert body["added_by"] == f"user:{auditor.email}"
    listed = client.get(_url(record)).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    entry = AuditEntry.objects.get(workspace=workspace, action="evidence.attachment_added")
    assert entry.target_type == "exception_record" and entry.target_id == str(record.pk)
    assert entry.input["url"] == URL and entry.input["sha256"] == DIGEST
    assert verify_chain(workspace).ok


def test_a_version_log_takes_attachments_too(workspace, auditor, user_client):
    log = VersionLog.objects.filter(workspace=workspace).first()
    client = user_client(auditor, workspace)
    url = f"/api/v1/audit/versions/{log.pk}/attachments"
    response = client.post(url, {"url": URL, "sha256": f"SHA256:{DIGEST.upper()}"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["sha256"] == DIGEST  # normalised
    assert len(client.get(url).json()["results"]) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "http://tickets.example.com/SEC-42"),
        ("url", "ftp://tickets.example.com/SEC-42"),
        ("url", "javascript:alert(1)"),
        ("url", "https://"),
        ("url", "https://ann:hunter2@tickets.example.com/SEC-42"),
        ("url", "https://bucket.s3.amazonaws.com/x?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"),
        ("url", "https://tickets.example.com/a b"),
        ("url", "https://tickets.example.com:99999/x"),
        ("url", "https://example.com/" + "a" * 2000),
        ("url", ""),
        ("sha256", DIGEST[:-1]),
        ("sha256", "z" * 64),
        ("sha256", ""),
        ("sha256", "md5:" + DIGEST),
        ("title", "two\nlines"),
        ("title", "t" * 201),
    ],
)
def test_bad_input_is_refused_and_nothing_is_kept(
    workspace, record, auditor, user_client, api_error, field, value
):
    body = {"url": URL, "sha256": DIGEST, field: value}
    response = user_client(auditor, workspace).post(_url(record), body, format="json")
    error = api_error(response, 400, "validation_error")
    assert field in error["error"]["detail"]
    assert not EvidenceAttachment.objects.exists()
    assert not AuditEntry.objects.filter(action="evidence.attachment_added").exists()


def test_unknown_fields_and_missing_digest_are_refused(
    workspace, record, auditor, user_client, api_error
):
    client = user_client(auditor, workspace)
    api_error(client.post(_url(record), {"url": URL}, format="json"), 400, "validation_error")
    extra = {"url": URL, "sha256": DIGEST, "mirror": "elsewhere"}
    api_error(client.post(_url(record), extra, format="json"), 400, "validation_error")
    assert not EvidenceAttachment.objects.exists()


def test_another_workspaces_object_answers_as_if_it_did_not_exist(
    workspace, other_workspace, auditor, user_client, make_member, api_error
):
    theirs = _exception(other_workspace)
    client = user_client(auditor, workspace)
    api_error(
        client.post(_url(theirs), {"url": URL, "sha256": DIGEST}, format="json"),
        404,
        "not_found",
    )
    api_error(client.get(_url(theirs)), 404, "not_found")
    their_log = VersionLog.objects.filter(workspace=other_workspace).first()
    api_error(
        client.post(
            f"/api/v1/audit/versions/{their_log.pk}/attachments",
            {"url": URL, "sha256": DIGEST},
            format="json",
        ),
        404,
        "not_found",
    )
    assert not EvidenceAttachment.objects.exists()
    # Their own auditor sees nothing of ours either.
    their_auditor = make_member(other_workspace, Role.AUDITOR)
    api_error(
        user_client(their_auditor, other_workspace).get(_url(_exception(workspace))),
        404,
        "not_found",
    )


def test_machine_keys_may_not_attach(workspace, record, make_key, key_client, api_error):
    _, plaintext = make_key(workspace, scopes=["audit:read", "workspace:admin"])
    response = key_client(plaintext).post(
        _url(record), {"url": URL, "sha256": DIGEST}, format="json"
    )
    api_error(response, 403, "humans_only")


def test_a_role_without_audit_access_may_not_attach(
    workspace, record, make_member, user_client, api_error
):
    approver = make_member(workspace, Role.APPROVER)
    response = user_client(approver, workspace).post(
        _url(record), {"url": URL, "sha256": DIGEST}, format="json"
    )
    api_error(response, 403, "forbidden_by_scope")
    assert not EvidenceAttachment.objects.exists()


def test_the_service_refuses_an_object_of_another_workspace(workspace, other_workspace):
    theirs = _exception(other_workspace)
    with pytest.raises(WardenError) as refused:
        attachment_add(workspace=workspace, target=theirs, url=URL, sha256=DIGEST, actor=SYSTEM)
    assert refused.value.code == "not_found"


def test_attachments_are_append_only(workspace, record):
    attachment = attachment_add(
        workspace=workspace, target=record, url=URL, sha256=DIGEST, actor=SYSTEM
    )
    attachment.url = "https://elsewhere.example.com/"
    with pytest.raises(Exception, match="append-only"):
        attachment.save()
    with pytest.raises(Exception, match="append-only"):
        EvidenceAttachment.objects.all().delete()


# --- the admin ------------------------------------------------------------------------


@pytest.fixture
def approval_record(workspace, make_key, key_client, make_member, user_client):
    with operator_seeding():
        tool_create(reason="test set-up",
            workspace=workspace, actor=SYSTEM, name="email.send", level="read",
            confirmation="always",
        )  # fmt: skip
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    asked = key_client(plaintext).post(
        "/api/v1/actions", {"tool": "email.send", "params": {"to": "ann"}}, format="json"
    )
    assert asked.status_code == 202, asked.json()
    approver = make_member(workspace, Role.APPROVER)
    confirmation_id = (
        ApprovalRecord._meta.get_field("confirmation")
        .related_model.objects.get(action_request_id=asked.json()["id"])
        .pk
    )
    decided = user_client(approver, workspace).post(
        f"/api/v1/approvals/{confirmation_id}/approve", {"reason": "ok"}, format="json"
    )
    assert decided.status_code == 200, decided.json()
    return ApprovalRecord.objects.get(workspace=workspace)


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_auditor_attaches_a_link_to_an_approval_in_the_admin(
    workspace, approval_record, auditor
):
    client = _admin(auditor)
    page = f"/admin/approvals/approvalrecord/{approval_record.pk}/change/"
    assert "Attach a link" in client.get(page).content.decode()
    attach = f"/admin/approvals/approvalrecord/{approval_record.pk}/attach/"
    assert client.get(attach).status_code == 200
    response = client.post(attach, {"url": URL, "sha256": DIGEST, "title": "Ticket"})
    assert response.status_code == 302 and response["Location"] == page
    attachment = EvidenceAttachment.objects.get()
    assert attachment.target_type == "approval_record"
    assert attachment.target_id == str(approval_record.pk)
    shown = client.get(page).content.decode()
    assert URL in shown and DIGEST in shown
    assert AuditEntry.objects.filter(action="evidence.attachment_added").count() == 1


def test_the_admin_refuses_a_bad_link_and_keeps_nothing(workspace, record, auditor):
    client = _admin(auditor)
    attach = f"/admin/audit/exceptionrecord/{record.pk}/attach/"
    response = client.post(attach, {"url": "http://x.example.com", "sha256": "abc"}, follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Not attached" in text and "https" in text
    assert not EvidenceAttachment.objects.exists()


def test_the_admin_hides_another_workspaces_objects(
    workspace, other_workspace, auditor, make_member
):
    theirs = _exception(other_workspace)
    client = _admin(auditor)
    for path in (
        f"/admin/audit/exceptionrecord/{theirs.pk}/attach/",
        f"/admin/audit/versionlog/{VersionLog.objects.filter(workspace=other_workspace).first().pk}/attach/",
        "/admin/approvals/approvalrecord/not-a-uuid/attach/",
    ):
        assert client.get(path).status_code == 404
        assert client.post(path, {"url": URL, "sha256": DIGEST}).status_code == 404
    assert not EvidenceAttachment.objects.exists()


def test_on_postgresql_the_database_itself_refuses_changes(workspace, record):
    if connection.vendor != "postgresql":
        pytest.skip("the database trigger exists on PostgreSQL only")
    attachment_add(workspace=workspace, target=record, url=URL, sha256=DIGEST, actor=SYSTEM)
    for sql in (
        "UPDATE audit_evidenceattachment SET url = 'https://elsewhere.example.com/'",
        "DELETE FROM audit_evidenceattachment",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert EvidenceAttachment.objects.get().url == URL


def test_listing_costs_the_same_queries_however_many_links(
    workspace, record, auditor, user_client, django_assert_max_num_queries
):
    client = user_client(auditor, workspace)
    for n in range(5):
        attachment_add(
            workspace=workspace, target=record, url=f"{URL}/{n}", sha256=DIGEST, actor=SYSTEM
        )
    with django_assert_max_num_queries(7):
        response = client.get(_url(record))
    assert len(response.json()["results"]) == 5
