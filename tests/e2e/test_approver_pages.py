"""The queue and review pages in Chromium at desktop (1280 px) and phone (390 px)
widths: hostile agent text is inert and its hidden characters are marked, a row the
viewer may not decide has no buttons, and a row can be approved from the queue."""

import pytest

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from tenants.models import Role
from tests.conftest import SYSTEM
from tests.e2e.conftest import VIEWPORTS, on_screen

pytestmark = pytest.mark.e2e

QUEUE = "/admin/approvals/confirmationrequest/"
HOSTILE_TO = "ann@example.com\u202e\u2066"
HOSTILE_BODY = (
    'this.\u202eevil", <img src=x onerror="window.__pwned=1"> {{ request.user }} {% debug %}'
)


@pytest.fixture
def setup(workspace, make_key, make_member, api):
    """One hostile request the approver may decide, one they answer for (their key)."""
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            name="email.send",
            description="Send an email on the company's behalf.",
            level="read",
            confirmation="always",
            irreversible=True,
            data_classes=["pii"],
            summary_template="Send an email to {params.to}",
        )
    approver = make_member(workspace, Role.APPROVER)
    _, other = make_key(workspace, scopes=["actions:read"], owner=make_member(workspace))
    _, own = make_key(workspace, scopes=["actions:read"], owner=approver)
    hostile = api(other).post(
        "/api/v1/actions",
        data={
            "tool": "email.send",
            "params": {"to": HOSTILE_TO, "body": HOSTILE_BODY},
            "reason": "<script>window.__pwned=2</script> urgent\u200b",
        },
    )
    assert hostile.status == 202, hostile.text()
    mine = api(own).post(
        "/api/v1/actions",
        data={"tool": "email.send", "params": {"to": "me@example.test"}, "reason": "mine"},
    )
    assert mine.status == 202, mine.text()
    confirmations = {
        "hostile": ConfirmationRequest.objects.get(action_request_id=hostile.json()["id"]),
        "mine": ConfirmationRequest.objects.get(action_request_id=mine.json()["id"]),
    }
    return approver, confirmations


@pytest.mark.parametrize("size", VIEWPORTS)
def test_queue_marks_hidden_characters_and_hides_buttons_on_undecidable_rows(
    setup, open_as, screenshot, size
):
    approver, confirmations = setup
    page = open_as(approver, size)
    page.goto(QUEUE)
    queue = page.locator("#approval-queue")
    assert queue.locator("img").count() == 0 and queue.locator("script").count() == 0
    assert page.evaluate("window.__pwned") is None

    hostile = queue.locator(f'tr[data-confirmation="{confirmations["hostile"].pk}"]')
    text = hostile.inner_text()
    assert "Send an email to ann@example.com⟦U+202E⟧⟦U+2066⟧" in text
    assert "\u202e" not in text and "\u200b" not in text
    assert "urgent⟦U+200B⟧" in text
    assert "{{ request.user }} {% debug %}" in text
    assert hostile.locator(".warden-invisible").count() >= 4
    for control in ("link", "button"):
        name = {"link": "Review", "button": "Approve"}[control]
        assert on_screen(page, hostile.get_by_role(control, name=name)), f"{name} off-screen"

    mine = queue.locator(f'tr[data-confirmation="{confirmations["mine"].pk}"]')
    assert "You are answerable for this request" in mine.inner_text()
    assert mine.locator("button").count() == 0
    assert mine.locator("input").count() == 0
    screenshot(page, f"queue-{size}")


@pytest.mark.parametrize("size", VIEWPORTS)
def test_review_page_states_the_effect_and_marks_hidden_characters(
    setup, open_as, screenshot, size
):
    approver, confirmations = setup
    page = open_as(approver, size)
    page.goto(f"{QUEUE}{confirmations['hostile'].pk}/")
    effect = page.locator("#approval-effect").inner_text()
    assert "Irreversible: once done it cannot be undone." in effect
    assert "Send an email on the company's behalf." in effect
    summary = page.locator("#request-summary").inner_text()
    assert summary == "Send an email to ann@example.com⟦U+202E⟧⟦U+2066⟧"
    params = page.locator("#request-params").inner_text()
    assert 'this.⟦U+202E⟧evil", <img src=x onerror=' in params
    assert page.evaluate("window.__pwned") is None
    assert on_screen(page, page.get_by_role("button", name="Approve"))
    screenshot(page, f"review-{size}")

    page.goto(f"{QUEUE}{confirmations['mine'].pk}/")
    assert page.locator("#undecidable").is_visible()
    assert page.locator("#decide-form").count() == 0
    if size == "phone":
        screenshot(page, "review-undecidable-phone")


def test_approve_from_the_queue_on_a_phone(setup, open_as, screenshot):
    approver, confirmations = setup
    page = open_as(approver, "phone")
    page.goto(QUEUE)
    row = page.locator(f'tr[data-confirmation="{confirmations["hostile"].pk}"]')
    row.get_by_placeholder("Reason (audit log)").fill("Checked with Ann by phone")
    row.get_by_role("button", name="Approve").click()
    message = page.locator("ul.messagelist").inner_text()
    short_id = str(confirmations["hostile"].action_request_id)[:8]
    assert f"(request {short_id})" in message and message.startswith("Approved: email.send")
    assert page.url.endswith(QUEUE)
    assert page.locator(f'tr[data-confirmation="{confirmations["hostile"].pk}"]').count() == 0
    screenshot(page, "queue-approved-phone")
    confirmations["hostile"].refresh_from_db()
    assert confirmations["hostile"].status == "approved"
