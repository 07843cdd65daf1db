"""Lifting a key's suspension in Chromium, as a workspace admin does it: the button on
the key's page, the confirmation page, and the answer that it waits for someone else."""

import pytest
from django.utils import timezone

from keys.models import MachineKey
from tenants.models import Role

pytestmark = pytest.mark.e2e


def test_lifting_a_suspension_from_the_keys_page(
    workspace, make_key, make_member, page, login, screenshot
):
    admin = make_member(workspace, Role.ADMIN)
    key, _ = make_key(workspace, name="suspended-agent")
    MachineKey.objects.filter(pk=key.pk).update(suspended_at=timezone.now())
    login(page, admin)
    page.goto(f"/admin/keys/machinekey/{key.pk}/change/")
    page.click("text=Lift suspension")
    page.wait_for_url(f"**/admin/keys/machinekey/{key.pk}/unsuspend/")
    assert page.is_visible("text=another person approves it")
    screenshot(page, "key-unsuspend-confirm")
    page.fill("#id_reason", "false alarm: the nightly import")
    page.click("input[type=submit]")
    page.wait_for_url(f"**/admin/keys/machinekey/{key.pk}/change/")
    warning = page.locator(".messagelist .warning")
    assert "needs another person's approval" in warning.inner_text()
    assert warning.locator("a", has_text="approval queue").count() == 1
    screenshot(page, "key-unsuspend-waiting")
    key.refresh_from_db()
    assert key.suspended_at is not None
