"""What people do in the admin, in a real browser."""

import io

import pytest
from pypdf import PdfReader

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from audit.models import AuditAction, AuditChainHead, AuditEntry
from tenants.models import Role
from tests.conftest import SYSTEM
from tests.e2e.conftest import OUTPUT

pytestmark = pytest.mark.e2e


@pytest.fixture
def gated_workspace(workspace):
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            name="email.send",
            level="read",
            confirmation="always",
            data_classes=["pii"],
            summary_template="Send the weekly report to {params.to}",
        )
    return workspace


def agent_asks(client, **extra):
    body = {
        "tool": "email.send",
        "params": {"to": "cfo@example.test", "note": "<b>quarterly</b>"},
        "reason": "weekly report is due",
        **extra,
    }
    return client.post("/api/v1/actions", data=body)


def test_approver_approves_and_the_agent_proceeds(
    gated_workspace, make_key, make_member, api, page, login, screenshot
):
    approver = make_member(gated_workspace, Role.APPROVER)
    _, plaintext = make_key(gated_workspace, owner=make_member(gated_workspace, Role.MEMBER))
    agent = api(plaintext)
    asked = agent_asks(agent)
    assert asked.status == 202, asked.text()
    token = asked.json()["confirmation_token"]

    login(page, approver)
    screenshot(page, "admin-home-approver")
    page.click("#governance-queue a")
    row = page.locator("#approval-queue tbody tr")
    assert row.count() == 1
    assert "Send the weekly report to cfo@example.test" in row.inner_text()
    assert "<b>quarterly</b>" in row.locator("dl.warden-params-list").inner_text()  # shown as text
    screenshot(page, "approval-queue")

    row.get_by_role("link", name="Review").click()
    page.fill("#decide-reason", "Report contents checked")
    screenshot(page, "approval-review")
    page.get_by_role("button", name="Approve").click()
    assert page.locator("ul.messagelist").inner_text().startswith("Approved: email.send")
    assert page.locator("#queue-empty").is_visible()

    again = agent_asks(agent, confirmed=True, confirmation_token=token)
    assert again.status == 200, again.text()
    assert again.json()["decision"] == "allowed"


def test_key_owner_sees_the_four_eyes_refusal(
    gated_workspace, make_key, make_member, api, page, login, screenshot
):
    approver = make_member(gated_workspace, Role.APPROVER)
    _, plaintext = make_key(gated_workspace, owner=approver)
    asked = agent_asks(api(plaintext))
    assert asked.status == 202

    login(page, approver)
    page.goto("/admin/approvals/confirmationrequest/")
    row = page.locator("#approval-queue tbody tr")
    assert "Four-eyes rule" in row.inner_text()
    assert row.locator("button").count() == 0  # nothing offered that would be refused
    row.get_by_role("link", name="View").click()
    assert "Four-eyes rule" in page.locator("#undecidable").inner_text()
    assert page.locator("#decide-form").count() == 0
    screenshot(page, "four-eyes-refusal")
    assert ConfirmationRequest.objects.get().status == "pending"


def test_auditor_downloads_the_privacy_summary_pdf(
    gated_workspace, make_member, page, login, screenshot
):
    auditor = make_member(gated_workspace, Role.AUDITOR)
    login(page, auditor)
    page.goto("/admin/audit/auditentry/")
    page.click("#verify-chain-form button")
    assert "verifies" in page.locator("#verify-result").inner_text()
    screenshot(page, "audit-verify")
    page.goto("/admin/")
    page.click("#governance-evidence >> text=Privacy summary")
    assert "Where key secrets are" in page.content()
    head = AuditChainHead.objects.get(workspace=gated_workspace)
    assert head.hash in page.content()
    screenshot(page, "privacy-summary")

    with page.expect_download() as info:
        page.click("#download-pdf")
    download = info.value
    assert download.suggested_filename == f"warden-privacy-summary-{gated_workspace.slug}.pdf"
    target = OUTPUT / "downloads" / download.suggested_filename
    target.parent.mkdir(parents=True, exist_ok=True)
    download.save_as(str(target))
    reader = PdfReader(io.BytesIO(target.read_bytes()))
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert gated_workspace.name in text
    assert "1 tool in the catalog" in text
    assert head.hash[:16] in text.replace(" ", "")
    entry = AuditEntry.objects.get(
        workspace=gated_workspace, action=AuditAction.PRIVACY_SUMMARY_DOWNLOADED
    )
    assert entry.actor == f"user:{auditor.email}"


def test_hostile_agent_text_stays_inert_in_the_browser(
    gated_workspace, make_key, make_member, api, page, login, screenshot
):
    approver = make_member(gated_workspace, Role.APPROVER)
    _, plaintext = make_key(gated_workspace, owner=make_member(gated_workspace, Role.MEMBER))
    payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    asked = api(plaintext).post(
        "/api/v1/actions",
        data={
            "tool": "email.send",
            "params": {"to": payload, "body": "{{ request.user }} {% debug %}"},
            "reason": payload,
        },
    )
    assert asked.status == 202, asked.text()

    login(page, approver)
    page.goto("/admin/approvals/confirmationrequest/")
    assert page.locator("#approval-queue img").count() == 0
    assert page.locator("#approval-queue script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert payload in page.locator("#approval-queue").inner_text()
    page.locator("#approval-queue").get_by_role("link", name="Review").click()
    assert page.evaluate("window.__pwned") is None
    assert "{{ request.user }} {% debug %}" in page.locator("#request-params").inner_text()
    screenshot(page, "hostile-params-inert")
