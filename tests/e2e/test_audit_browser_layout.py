"""The audit browser at 1280 px: the columns a reviewer reads first are on screen,
actors are named, times carry their zone."""

import pytest
from django.db import transaction

from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import audit_record
from common.actor import Actor
from tenants.models import Role
from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
def auditor_page(browser, live_server, e2e_settings, workspace, make_key, make_member):
    key, _ = make_key(workspace, name="invoice-bot")
    for n in range(3):
        with transaction.atomic():
            event = EVENTS[AuditAction.ACTION_DECIDED].event(
                tool="billing.refund_customer_payment",
                decision="requires_confirmation",
                outcome="pending",
            )
            actor = Actor.for_key(key, request_id=f"4f9c2e7a-request-{n:04d}-long-id")
            audit_record(event, workspace=workspace, actor=actor)
    auditor = make_member(workspace, Role.AUDITOR)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", auditor.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    yield page
    context.close()


def test_important_columns_fit_at_1280_px(auditor_page, screenshot):
    page = auditor_page
    page.goto("/admin/audit/auditentry/")
    screenshot(page, "audit-browser-1280")
    # The result table scrolls inside its own box: a column must end inside that box.
    visible = page.locator("#changelist .results").bounding_box()
    right = min(visible["x"] + visible["width"], 1280)
    for column in ("tool_shown", "decision_shown", "outcome", "request_id", "actor_shown"):
        header = page.locator(f"#result_list thead th.column-{column}")
        box = header.bounding_box()
        assert box is not None and header.is_visible(), column
        assert box["x"] + box["width"] <= right + 1, f"{column} is cut off"
    row = page.locator("#result_list tbody tr", has_text="billing.refund").first.inner_text()
    assert "invoice-bot" in row and "UTC" in row


# For each cell, the characters after which its text wraps onto a new line.
WRAPS_AFTER = """cell => {
    const text = cell.innerText.trim();
    const node = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    const tops = [];
    for (let n = node.nextNode(); n; n = node.nextNode()) {
        for (let i = 0; i < n.length; i++) {
            const r = document.createRange();
            r.setStart(n, i); r.setEnd(n, i + 1);
            const rect = r.getBoundingClientRect();
            if (rect.width) tops.push([n.data[i], Math.round(rect.top)]);
        }
    }
    const after = [];
    for (let i = 1; i < tops.length; i++) {
        if (tops[i][1] > tops[i - 1][1]) after.push(tops[i - 1][0]);
    }
    return after;
}"""


def test_identifiers_never_break_inside_a_word_at_1280_px(auditor_page):
    """Tool names, decisions and actions wrap only after '.', '_' or '/' (the finding:
    "billing.ref/und")."""
    page = auditor_page
    page.goto("/admin/audit/auditentry/")
    for column in ("tool_shown", "decision_shown", "action_shown"):
        for cell in page.locator(f"#result_list td.field-{column}").all():
            assert set(cell.evaluate(WRAPS_AFTER)) <= set("._/"), (column, cell.inner_text())
