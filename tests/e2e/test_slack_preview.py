"""The Slack message preview (admin, approvers of the request's workspace) in Chromium
at 1280 px and 390 px: the message as Slack would roughly show it, with a 300-character
unbroken URL and a hidden character in the parameters. The page never gets wider than
the viewport, the recipient and the buttons are on screen. Screenshots land in
test-output/screenshots/; with WARDEN_UPDATE_SCREENSHOTS=1 the 1280 px one also
refreshes docs/screenshots/slack-message-1280.png."""

import os
import shutil
from pathlib import Path

import pytest

from approvals.asking import action_submit
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest, Tool
from common.actor import Actor
from tenants.models import Role

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LONG_URL = "https://files.example.com/presigned/" + "k" * 300


@pytest.fixture
def pending(make_workspace, make_key):
    workspace = make_workspace(slug="acme", writes_enabled=True, mode="live")
    with operator_seeding():
        Tool.objects.create(
            workspace=workspace,
            name="email.send",
            level="external",
            data_classes=["pii"],
            confirmation="always",
            description="Send an e-mail to a customer",
        )
    key, _ = make_key(
        workspace,
        name="support-agent",
        scopes=["actions:read", "actions:write", "actions:external"],
    )
    return workspace, key


def _ask(workspace, key):
    outcome = action_submit(
        key=key,
        actor=Actor.for_key(key),
        tool_name="email.send",
        params={
            "to": "ann\u200b@customer.example",
            "subject": "Your refund",
            "body": "Hello Ann,\n\n" + "Your refund is on its way. " * 40,
            "url": LONG_URL,
        },
        reason="The customer asked for the refund link.",
    )
    assert outcome.kind == "pending", outcome
    return ConfirmationRequest.objects.get(pk=outcome.confirmation_id)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_slack_preview_shows_the_message_within_the_viewport(
    pending, make_member, open_as, screenshot, size
):
    workspace, key = pending
    confirmation = _ask(workspace, key)
    approver = make_member(workspace, Role.APPROVER)
    page = open_as(approver, size)
    page.goto(f"/admin/slack/preview/{confirmation.pk}/")
    message = page.locator("#slack-message")
    assert message.is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width
    assert "ann⟦U+200B⟧@customer.example" in message.inner_text()
    assert "characters; the whole value is in Warden" in message.inner_text()
    for name in ("Approve", "Deny…"):
        assert page.locator(".slack-button", has_text=name).first.is_visible()
    name = "slack-message-1280" if size == "desktop" else "slack-message-390"
    path = screenshot(page, name)
    if size == "desktop" and os.environ.get("WARDEN_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS / "slack-message-1280.png")
