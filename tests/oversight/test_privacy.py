"""The privacy summary says what is kept of parameters and outputs, for how long and
where it goes, from the workspace's real settings and records."""

import io
from datetime import timedelta

import pdfplumber
import pytest
from django.utils import timezone

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.minimisation import plain_copies_prune
from oversight.privacy import privacy_summary_build
from oversight.privacy_pdf import privacy_summary_pdf
from tenants.models import Role, Workspace
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def _text(summary) -> str:
    return "\n".join(p for s in summary["sections"] for p in s["paragraphs"])


@pytest.fixture
def asked(workspace, make_key, key_client):
    """Two agent requests with plain params in `workspace`."""
    with operator_seeding():
        tool_create(
            reason="test set-up", workspace=workspace, actor=SYSTEM, name="crm.lookup", level="read"
        )
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    client = key_client(plaintext)
    for n in (1, 2):
        response = client.post(
            "/api/v1/actions", {"tool": "crm.lookup", "params": {"id": n}}, format="json"
        )
        assert response.status_code == 200
    return workspace


def test_the_summary_states_the_plain_copy_period_and_what_stays(workspace):
    summary = privacy_summary_build(workspace=workspace)
    assert summary["stored"]["retention"]["plain_copy_retention_days"] == 30
    text = _text(summary)
    assert "kept for 30 days, then replaced by its SHA-256 digest and size" in text
    assert "Outputs:" in text and "64 KiB" in text
    assert "never rewritten" in text  # audit entries are not changed, and why
    assert "digest of its parameters" in text and "never the values" in text
    assert "Erasure:" in text and "destroys its key" in text  # issue 27 item 2
    assert summary["stored"]["erasure"] == {
        "action_requests_erased": 0,
        "tools_with_subject_param": [],
        "entries_with_plain_values": 0,
    }
    assert "Connector credentials" in text and "encrypted" in text
    assert "look like a credential" in text
    titles = [s["title"] for s in summary["sections"]]
    assert "Where it goes" in titles


def test_the_figures_follow_pruning(asked):
    before = privacy_summary_build(workspace=asked)["stored"]["plain_copies"]
    assert before == {"action_requests_with_plain_copy": 2, "action_requests_digests_only": 0}
    later = timezone.now() + timedelta(days=31)
    plain_copies_prune(workspace=asked, actor=SYSTEM, now=later)
    summary = privacy_summary_build(workspace=asked)
    assert summary["stored"]["plain_copies"] == {
        "action_requests_with_plain_copy": 0,
        "action_requests_digests_only": 2,
    }
    assert "Now 0 requests hold a plain copy and 2 hold digests only." in _text(summary)


@pytest.mark.parametrize(
    ("days", "said"),
    [
        (None, "kept indefinitely: no plain-copy period is configured"),
        (0, "not kept: it is replaced at the next daily pruning"),
        (7, "kept for 7 days"),
    ],
)
def test_the_statement_follows_the_setting(workspace, days, said):
    from approvals.guard import operator_seeding

    with operator_seeding():  # set-up: a shorter plain-copy period is governed
        Workspace.objects.filter(pk=workspace.pk).update(plain_copy_retention_days=days)
    workspace.refresh_from_db()
    assert said in _text(privacy_summary_build(workspace=workspace))


def test_the_pdf_and_the_admin_page_carry_the_statements(workspace, make_member, user_client):
    summary = privacy_summary_build(workspace=workspace)
    with pdfplumber.open(io.BytesIO(privacy_summary_pdf(summary))) as pdf:
        text = " ".join((page.extract_text() or "") for page in pdf.pages)
    assert "Where it goes" in " ".join(text.split())
    assert "plain copy on each agent request is kept for 30 days" in " ".join(text.split())
    auditor = make_member(workspace, Role.AUDITOR)
    client = user_client(auditor)
    page = client.get(f"/admin/audit/auditentry/privacy-summary/{workspace.slug}/")
    assert page.status_code == 200
    assert "Where it goes" in page.content.decode()


def test_the_summary_names_every_real_destination_in_json_html_and_pdf(
    workspace, make_member, user_client
):
    """Issue 23: "nowhere outside Warden" while the workspace had a connector and an
    outbound allowlist; neither appeared in the HTML, JSON or PDF."""
    from gateway.models import Connector
    from notifications.models import WebhookEndpoint, WorkspaceAutomationSettings
    from oversight.models import AuditExportDestination

    with operator_seeding():
        Connector.objects.create(workspace=workspace, name="crm", url="https://crm.example.com/mcp")
        WebhookEndpoint.objects.create(
            workspace=workspace,
            name="hooks",
            url="https://hooks.example.org/warden",
            secret="s" * 32,
            events=["confirmation.requested"],
            created_by="system:test",
        )
        AuditExportDestination.objects.create(
            workspace=workspace, kind="https", url="https://siem.example.net/in"
        )
        WorkspaceAutomationSettings.objects.update_or_create(
            workspace=workspace, defaults={"webhook_host_allowlist": ["*.example.com"]}
        )
    summary = privacy_summary_build(workspace=workspace)
    assert [c["host"] for c in summary["destinations"]["connectors"]] == ["crm.example.com"]
    assert [w["host"] for w in summary["destinations"]["webhooks"]] == ["hooks.example.org"]
    assert [e["host"] for e in summary["destinations"]["exports"]] == ["siem.example.net"]
    assert summary["destinations"]["outbound_hosts"] == ["*.example.com"]
    text = _text(summary)
    assert "Nowhere outside Warden" not in text
    for host in ("crm.example.com", "hooks.example.org", "siem.example.net", "*.example.com"):
        assert host in text

    owner = workspace.memberships.get(role=Role.OWNER).user
    api = user_client(owner, workspace).get("/api/v1/privacy-summary")
    assert api.status_code == 200, api.json()
    assert api.json()["destinations"] == summary["destinations"]
    pdf = privacy_summary_pdf(summary)
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        pdf_text = "\n".join(page.extract_text() for page in document.pages)
    assert "crm.example.com" in pdf_text and "siem.example.net" in pdf_text


def test_a_workspace_without_destinations_still_says_nowhere(workspace):
    assert "Nowhere outside Warden" in _text(privacy_summary_build(workspace=workspace))
