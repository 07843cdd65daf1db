"""The posture page at 1280 px in Chromium: decision, score and mitigations on screen
for an auditor. The screenshot lands in test-output/screenshots/; with
WARDEN_UPDATE_SCREENSHOTS=1 it also refreshes the README's docs/screenshots/posture-1280.png."""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from approvals.guard import operator_seeding
from approvals.models import ActionRequest, Tool
from tenants.models import Role
from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def demo_like(make_workspace, make_key):
    """A workspace halfway to safe: live with writes, floor on, one unattended key."""
    workspace = make_workspace(slug="acme", writes_enabled=True, mode="live")
    workspace.name = "Acme Support"
    tools = {}
    with operator_seeding():
        workspace.save()
        for name, level, classes, confirmation in (
            ("crm.lookup", "read", [], "never"),
            ("crm.update_stage", "write", ["pii"], "never"),
            ("email.send", "external", ["pii"], "always"),
            ("billing.refund", "write", ["financial"], "conditional"),
            ("vault.read_secret", "read", ["secrets"], "always"),
        ):
            tools[name] = Tool.objects.create(
                workspace=workspace,
                name=name,
                level=level,
                data_classes=classes,
                confirmation=confirmation,
                condition="params.amount > 1000" if confirmation == "conditional" else "",
            )
    agent, _ = make_key(workspace, name="support-agent", scopes=["actions:read", "actions:write"])
    now = timezone.now()
    ActionRequest.objects.bulk_create(
        ActionRequest(
            workspace=workspace,
            key=agent,
            requested_by=f"key:{agent.pk}",
            tool=tool,
            tool_name=tool.name,
            params={"n": n},
            params_digest=f"{n:064x}",
            decision=ActionRequest.Decision.ALLOWED,
            status=ActionRequest.Status.ALLOWED,
            policy_version=workspace.policy_version,
            created_at=now - timedelta(hours=n + 1),
        )
        for n, tool in enumerate(
            [tools["crm.lookup"]] * 12 + [tools["email.send"]] * 5 + [tools["crm.update_stage"]] * 3
        )
    )
    make_key(
        workspace,
        name="nightly-sync",
        scopes=["actions:read"],
        unattended_mode=True,
        expires_at=timezone.now() + timedelta(days=30),
    )
    return workspace


def test_posture_page_at_1280_px(
    browser, live_server, e2e_settings, demo_like, make_member, screenshot
):
    auditor = make_member(demo_like, Role.AUDITOR)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", auditor.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.click("#posture-link")
    page.wait_for_url("**/admin/posture/acme/")
    decision = page.locator("#posture-decision")
    assert decision.get_attribute("data-decision") == "allow_with_approvals"
    for selector in ("#posture-score", "#posture-decision", "#posture-mitigations"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280 + 1, selector
    assert page.locator("tr.posture-mitigation").count() >= 3
    path = screenshot(page, "posture-1280")
    if os.environ.get("WARDEN_UPDATE_SCREENSHOTS") == "1":  # refresh the README's copy
        shutil.copyfile(path, DOCS / "posture-1280.png")
    context.close()
