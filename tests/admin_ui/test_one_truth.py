"""One truth about confirmation: the admin's tools list, posture, the catalog API and the
agent's GET /tools give every demo tool the same effective rule (issue 23: email.send
was "Never" in the admin and posture while every e-mail waited for a human)."""

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from approvals.guard import operator_seeding
from approvals.models import Tool
from oversight.posture import posture_build
from tenants.models import Workspace

pytestmark = pytest.mark.django_db

LABEL = {"Always": "always", "When the condition holds": "conditional", "Never": "never"}


def _demo():
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    secret = re.search(r"^(wdn_\S+)$", out.getvalue(), re.M).group(1)
    return Workspace.objects.get(slug="demo"), secret


def _admin_list(owner_client: Client) -> dict[str, str]:
    page = owner_client.get("/admin/approvals/tool/").content.decode()
    rows = re.findall(r'<th class="field-name"><a [^>]*>([^<]+)</a></th>(.*?)</tr>', page, re.S)
    found = {}
    for name, cells in rows:
        cell = re.search(r'<td class="field-waits_for_a_human">([^<]*)</td>', cells).group(1)
        found[name] = LABEL[cell.split(" (")[0]]
    return found


def test_every_screen_agrees_on_each_demo_tools_effective_confirmation():
    workspace, secret = _demo()
    owner = Client()
    owner.force_login(workspace.memberships.get(role="owner").user)

    admin = _admin_list(owner)
    catalog = {
        t["name"]: t["effective_confirmation"]["rule"]
        for t in owner.get("/api/v1/tools").json()["results"]
    }
    agent = {
        t["name"]: t["confirmation"]
        for t in Client()
        .get("/api/v1/tools", headers={"authorization": f"Bearer {secret}"})
        .json()["results"]
    }
    posture = posture_build(workspace=workspace)
    never = set(posture["autonomy"]["tools_confirmation_never"])

    names = set(Tool.objects.filter(workspace=workspace).values_list("name", flat=True))
    assert set(admin) == set(catalog) == names
    assert set(agent) == names  # the demo key's allowlist covers the whole demo catalog
    for name in names:
        assert admin[name] == catalog[name] == agent[name], name
        level = Tool.objects.get(workspace=workspace, name=name).level
        if level in ("write", "external"):
            assert (name in never) == (admin[name] == "never"), name
    # The finding itself: e-mail touches pii, so the floor sends every one to a human.
    assert admin["email.send"] == "always"
    assert "email.send" not in never
    assert not any(
        m["code"] == "confirm_acting_tools" and "email.send" in str(m)
        for m in posture["mitigations"]
    )


def test_the_admin_and_the_agent_say_why_a_never_tool_waits():
    workspace, secret = _demo()
    owner = Client()
    owner.force_login(workspace.memberships.get(role="owner").user)
    page = owner.get("/admin/approvals/tool/").content.decode()
    assert "Always (external effects need a human (unattended outbound is off))" in page
    tools = Client().get("/api/v1/tools", headers={"authorization": f"Bearer {secret}"}).json()
    email = next(t for t in tools["results"] if t["name"] == "email.send")
    assert (
        email["confirmation_reason"] == "external effects need a human (unattended outbound is off)"
    )
    # With outbound allowed, the floor is what still holds every e-mail for a human.
    workspace.outbound_allowed = True
    with operator_seeding():  # test set-up, as an operator at a shell
        workspace.save(update_fields=["outbound_allowed"])
    page = owner.get("/admin/approvals/tool/").content.decode()
    assert "Always (sensitivity floor: external touching pii reaches a human)" in page
