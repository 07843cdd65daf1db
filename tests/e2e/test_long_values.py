"""What an approver sees when an agent sends long values (issue 23): a 300-character
unbroken URL in the summary, a 5 KB body and hidden characters in the parameters.
At 1280 px and 390 px the page is never wider than the window, each queue row's
summary and its Approve button are on screen together, and the recipients are visible
without scrolling inside a box, ahead of the body."""

import pytest

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from tenants.models import Role
from tests.conftest import SYSTEM
from tests.e2e.conftest import VIEWPORTS, on_screen

pytestmark = pytest.mark.e2e

QUEUE = "/admin/approvals/confirmationrequest/"
URL = "https://files.example.com/report.pdf?X-Amz-Signature=" + "a1b2c3d4e5" * 30
BODY = ("Dear customer, " * 340)[:5000]
TO = "ann@example.com\u200b"


@pytest.fixture
def request_with_long_values(workspace, make_key, make_member, api):
    with operator_seeding():  # an enabled tool is a governed creation: seeded here
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            name="email.send",
            description="Send an email.",
            level="read",
            confirmation="always",
            summary_template="Email {params.to} the link {params.link}",
        )
    approver = make_member(workspace, Role.APPROVER)
    _, key = make_key(workspace, scopes=["actions:read"], owner=make_member(workspace))
    response = api(key).post(
        "/api/v1/actions",
        data={
            "tool": "email.send",
            "params": {"body": BODY, "link": URL, "subject": "Your report", "to": TO},
            "reason": "monthly report",
        },
    )
    assert response.status == 202, response.text()
    return approver, ConfirmationRequest.objects.get(action_request_id=response.json()["id"])


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def _in_window(page, locator) -> bool:
    """On screen without scrolling the page or any box: inside the viewport, and not
    clipped by a scrolling ancestor."""
    if not on_screen(page, locator):
        return False
    return locator.evaluate(
        """el => {
            const box = el.getBoundingClientRect();
            for (let p = el.parentElement; p; p = p.parentElement) {
                const style = getComputedStyle(p);
                if (!/(auto|scroll|hidden)/.test(style.overflowY + style.overflowX)) continue;
                const clip = p.getBoundingClientRect();
                if (box.top < clip.top || box.bottom > clip.bottom) return false;
            }
            return true;
        }"""
    )


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_queue_stays_as_wide_as_the_window_and_shows_the_recipient(
    request_with_long_values, open_as, screenshot, size
):
    approver, confirmation = request_with_long_values
    page = open_as(approver, size)
    page.goto(QUEUE)
    width = page.viewport_size["width"]
    screenshot(page, f"queue-long-values-{size}")
    assert _page_width(page) <= width

    row = page.locator(f'tr[data-confirmation="{confirmation.pk}"]')
    summary = row.locator(".summary")
    approve = row.get_by_role("button", name="Approve")
    summary.scroll_into_view_if_needed()
    assert on_screen(page, summary) and on_screen(page, approve)
    if size == "desktop":  # side by side: both in the window at once
        assert _in_window(page, summary) and _in_window(page, approve)

    recipient = row.locator("dl.warden-params-list dd").first
    assert recipient.inner_text() == "ann@example.com⟦U+200B⟧"
    assert _in_window(page, recipient)
    body = row.locator("dl.warden-params-list dd", has_text="Dear customer").first
    assert "more characters" in body.inner_text()  # shortened, and says so


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_review_page_wraps_the_url_and_keeps_the_full_body_one_click_away(
    request_with_long_values, open_as, screenshot, size
):
    approver, confirmation = request_with_long_values
    page = open_as(approver, size)
    page.goto(f"{QUEUE}{confirmation.pk}/")
    assert _page_width(page) <= page.viewport_size["width"]
    summary = page.locator("#request-summary")
    assert URL[:120] in summary.inner_text() and "characters)" in summary.inner_text()
    assert on_screen(page, summary)  # shortened visibly by the summary renderer, wrapped

    params = page.locator("#request-params")
    names = params.locator("dt").all_inner_texts()
    assert names[:2] == ["to", "subject"]  # who and what first, the body after
    recipient = params.locator("dd").first
    recipient.scroll_into_view_if_needed()
    assert _in_window(page, recipient)
    body = params.locator("dd", has_text="Dear customer")
    body.locator("summary").click()
    assert BODY in body.locator("details pre").inner_text()
    link = params.locator("dd", has_text="X-Amz-Signature")
    link.locator("summary").click()
    assert URL in link.locator("details pre").inner_text()
    assert _page_width(page) <= page.viewport_size["width"]
    screenshot(page, f"review-long-values-{size}")
