import io

import pytest
from pypdf import PdfReader

from audit.models import AuditAction, AuditChainHead, AuditEntry
from oversight.privacy import privacy_summary_build
from oversight.privacy_pdf import privacy_summary_pdf
from tenants.models import ROLE_PERMISSIONS, Role

PAGE = "/admin/audit/auditentry/privacy-summary/{slug}/"
PDF = "/admin/audit/auditentry/privacy-summary/{slug}/pdf/"
API = "/api/v1/privacy-summary"


def _downloads(workspace):
    return AuditEntry.objects.filter(
        workspace=workspace, action=AuditAction.PRIVACY_SUMMARY_DOWNLOADED
    )


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    # Lines wrap anywhere in a PDF: compare with whitespace collapsed.
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture
def populated(workspace, make_key, make_tool, make_pending):
    key, _ = make_key(workspace, scopes=["actions:write", "audit:read"])
    tool = make_tool(workspace, "crm.update", data_classes=["pii", "financial"])
    make_tool(workspace, "billing.pay", data_classes=["financial"], secret_params=["card"])
    make_pending(workspace, key, count=3, tool=tool)
    return workspace


def test_summary_counts_records_and_data_classes(populated):
    summary = privacy_summary_build(workspace=populated)
    counts = summary["stored"]["counts"]
    assert counts["tools"] == 2
    assert counts["action_requests"] == 3
    assert counts["confirmation_requests"] == 3
    assert counts["machine_keys"] == 1
    assert counts["audit_entries"] == AuditEntry.objects.filter(workspace=populated).count()
    by_class = summary["stored"]["by_data_class"]
    assert by_class["pii"] == {"tools": 1, "action_requests": 3}
    assert by_class["financial"] == {"tools": 2, "action_requests": 3}
    assert by_class["secrets"] == {"tools": 0, "action_requests": 0}
    assert summary["stored"]["secret_params"] == [{"tool": "billing.pay", "params": ["card"]}]


def test_summary_states_secrets_sharing_roles_and_chain_head(populated):
    summary = privacy_summary_build(workspace=populated)
    head = AuditChainHead.objects.get(workspace=populated)
    assert summary["audit_chain_head"] == {"seq": head.seq, "hash": head.hash}
    assert summary["anonymized_sharing"]["opted_in"] is False
    assert "has not opted in" in summary["anonymized_sharing"]["text"]
    assert "digest" in summary["stored"]["key_secrets"]
    roles = {r["role"]: r for r in summary["access"]["roles"]}
    assert {p["codename"] for p in roles["auditor"]["permissions"]} == set(
        ROLE_PERMISSIONS[Role.AUDITOR]
    )
    assert roles["owner"]["members"] == 1
    assert summary["access"]["keys_with_audit_read"] == 1
    titles = [s["title"] for s in summary["sections"]]
    assert "Where key secrets are" in titles and "What never leaves" in titles


def test_summary_does_not_count_other_workspaces(populated, other_workspace):
    summary = privacy_summary_build(workspace=other_workspace)
    assert summary["stored"]["counts"]["action_requests"] == 0
    assert summary["stored"]["counts"]["tools"] == 0


def test_pdf_opens_and_contains_the_figures(populated):
    summary = privacy_summary_build(workspace=populated)
    text = _pdf_text(privacy_summary_pdf(summary))
    assert populated.name in text
    assert summary["audit_chain_head"]["hash"][:16] in text.replace(" ", "")
    assert "3 action requests made by agents" in text
    assert "2 tools in the catalog" in text
    assert "has not opted in" in text


def test_pdf_survives_text_outside_latin1(populated):
    populated.name = "Équipe 東京 ✓"
    populated.save()
    summary = privacy_summary_build(workspace=populated)
    assert _pdf_text(privacy_summary_pdf(summary)).startswith("Privacy summary")


# -- the admin page and the PDF download, per role -------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.OWNER, 200), (Role.ADMIN, 200), (Role.AUDITOR, 200), (Role.APPROVER, 403)],
)
def test_admin_page_by_role(populated, role_users, admin_client_for, role, status):
    response = admin_client_for(role_users[role]).get(PAGE.format(slug=populated.slug))
    assert response.status_code == status


def test_member_is_sent_to_the_login_page(populated, role_users, admin_client_for):
    response = admin_client_for(role_users[Role.MEMBER]).get(PAGE.format(slug=populated.slug))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_admin_page_shows_plain_language_and_chain_head(populated, role_users, admin_client_for):
    response = admin_client_for(role_users[Role.AUDITOR]).get(PAGE.format(slug=populated.slug))
    html = response.content.decode()
    head = AuditChainHead.objects.get(workspace=populated)
    assert head.hash in html
    assert "Where key secrets are" in html
    assert "has not opted in" in html
    assert _downloads(populated).count() == 0  # viewing is not downloading


def test_auditor_downloads_pdf_and_the_download_is_audited(populated, role_users, admin_client_for):
    auditor = role_users[Role.AUDITOR]
    head_before = AuditChainHead.objects.get(workspace=populated)
    response = admin_client_for(auditor).get(PDF.format(slug=populated.slug))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    text = _pdf_text(response.content)
    assert head_before.hash[:16] in text.replace(" ", "")
    entry = _downloads(populated).get()
    assert entry.actor == f"user:{auditor.email}"
    assert entry.input["format"] == "pdf"
    assert entry.input["chain_head_hash"] == head_before.hash
    assert entry.seq == head_before.seq + 1


def test_approver_cannot_download_and_nothing_is_recorded(populated, role_users, admin_client_for):
    response = admin_client_for(role_users[Role.APPROVER]).get(PDF.format(slug=populated.slug))
    assert response.status_code == 403
    assert not _downloads(populated).exists()


def test_other_workspace_auditor_sees_nothing_of_this_workspace(
    populated, other_workspace, make_member, admin_client_for
):
    outsider = admin_client_for(make_member(other_workspace, Role.AUDITOR))
    assert outsider.get(PAGE.format(slug=populated.slug)).status_code == 404
    assert outsider.get(PDF.format(slug=populated.slug)).status_code == 404
    assert not _downloads(populated).exists()


def test_index_redirects_to_the_only_workspace(populated, role_users, admin_client_for):
    response = admin_client_for(role_users[Role.AUDITOR]).get(
        "/admin/audit/auditentry/privacy-summary/"
    )
    assert response.status_code == 302
    assert response["Location"].endswith(PAGE.format(slug=populated.slug))


# -- JSON API ----------------------------------------------------------------------


def test_api_key_with_audit_read_gets_json_and_download_is_audited(populated, make_key, key_client):
    key, plaintext = make_key(populated, scopes=["audit:read"])
    response = key_client(plaintext).get(API)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["workspace"]["slug"] == populated.slug
    assert body["stored"]["counts"]["action_requests"] == 3
    entry = _downloads(populated).get()
    assert entry.actor == f"key:{key.pk}"
    assert entry.input["format"] == "json"


def test_summary_carries_no_key_material(populated, make_key, key_client):
    key, plaintext = make_key(populated, scopes=["audit:read"])
    body = key_client(plaintext).get(API).content.decode()
    pdf = _pdf_text(privacy_summary_pdf(privacy_summary_build(workspace=populated)))
    for text in (body, pdf):
        assert key.digest not in text and plaintext not in text and key.prefix not in text


def test_api_key_without_audit_read_is_refused(populated, make_key, key_client):
    _, plaintext = make_key(populated, scopes=["actions:read"])
    response = key_client(plaintext).get(API)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_by_scope"
    assert not _downloads(populated).exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OWNER, 200),
        (Role.ADMIN, 200),
        (Role.AUDITOR, 200),
        (Role.APPROVER, 403),
        (Role.MEMBER, 403),
    ],
)
def test_api_human_needs_download_permission(populated, role_users, user_client, role, status):
    response = user_client(role_users[role]).get(API)
    assert response.status_code == status
    assert _downloads(populated).count() == (1 if status == 200 else 0)


def test_api_key_from_another_workspace_gets_only_its_own_summary(
    populated, other_workspace, make_key, key_client
):
    _, plaintext = make_key(other_workspace, scopes=["audit:read"])
    client = key_client(plaintext)
    own = client.get(API).json()
    assert own["workspace"]["slug"] == other_workspace.slug
    assert own["stored"]["counts"]["action_requests"] == 0
    asked = client.get(API, {"workspace_id": str(populated.pk)})
    assert asked.status_code == 403
    assert asked.json()["error"]["code"] == "workspace_mismatch"
    assert not _downloads(populated).exists()
