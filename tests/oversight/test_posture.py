"""Posture numbers on synthetic workspaces: a locked-down workspace scores low, a
permissive one high, and each mitigation, applied through the real API, moves the
score exactly as the page said it would (README "Posture")."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals.models import Tool
from keys.models import MachineKey
from oversight.posture import WEIGHTS, posture_build
from tenants.models import Role


def _owner(workspace):
    return workspace.memberships.get(role=Role.OWNER).user


def test_a_locked_down_workspace_scores_low_and_is_allowed(locked_down):
    posture = posture_build(workspace=locked_down)
    assert posture["score"] == 0
    assert posture["decision"]["code"] == "allow"
    assert posture["mitigations"] == []
    assert posture["autonomy"]["dry_run"] is True
    assert posture["sensitivity"]["decisions"] == 20
    assert posture["sensitivity"]["sensitive_decisions"] == 0


def test_a_permissive_workspace_scores_high_and_is_denied(permissive):
    posture = posture_build(workspace=permissive)
    # 25*3/4 + 25*10/15 + 8 + 10 + 7 + 10 + 7*1/2 + 8*2/2 = 81.9
    assert posture["score"] == 82
    assert posture["decision"] == {
        **posture["decision"],
        "code": "deny",
        "sensitivity": "high",
        "autonomy": "high",
    }
    by_class = {
        row["data_class"]: row["tools"] for row in posture["sensitivity"]["tools_by_data_class"]
    }
    assert by_class == {
        "pii": ["email.send"],
        "secrets": ["vault.read"],
        "financial": ["billing.refund"],
        "regulated": [],
        "none": ["crm.lookup"],
    }
    assert posture["sensitivity"]["sensitive_traffic_share"] == pytest.approx(10 / 15, abs=1e-4)
    assert [k["name"] for k in posture["autonomy"]["unattended_keys"]] == ["night-bot"]
    assert posture["autonomy"]["tools_confirmation_never"] == ["billing.refund", "email.send"]
    assert sum(p["points"] for p in posture["score_parts"]) == pytest.approx(81.92, abs=0.01)


def test_sensitive_data_alone_means_allow_with_approvals(
    locked_down, add_tool, add_traffic, make_key
):
    hr = add_tool(locked_down, "hr.read", data_classes=["regulated"])
    add_tool(locked_down, "hr.notes", data_classes=["pii"])
    add_tool(locked_down, "hr.pay", data_classes=["financial"])
    add_traffic(locked_down, make_key(locked_down)[0], hr, 30)
    posture = posture_build(workspace=locked_down)
    assert posture["decision"]["code"] == "allow_with_approvals"
    assert posture["decision"]["sensitivity"] == "high"
    assert posture["decision"]["autonomy"] == "low"


def test_decisions_older_than_the_window_do_not_count(permissive, add_traffic, make_key):
    key, _ = make_key(permissive)
    lookup = Tool.objects.get(workspace=permissive, name="crm.lookup")
    add_traffic(permissive, key, lookup, 100, age=timedelta(days=31))
    assert posture_build(workspace=permissive)["sensitivity"]["decisions"] == 15


def test_without_traffic_the_tool_share_stands_in(make_workspace, add_tool):
    workspace = make_workspace()
    add_tool(workspace, "a", data_classes=["pii"])
    add_tool(workspace, "b")
    posture = posture_build(workspace=workspace)
    parts = {p["factor"]: p["points"] for p in posture["score_parts"]}
    assert parts["sensitive_traffic"] == parts["sensitive_tools"] == 12.5
    # With no traffic at all no tool is "idle": disabling everything is no advice.
    assert "disable_idle_sensitive_tools" not in [m["code"] for m in posture["mitigations"]]


def test_revoked_and_expired_keys_do_not_count(permissive, make_key):
    with time_machine.travel(timezone.now() - timedelta(days=2)):
        make_key(
            permissive,
            name="gone",
            unattended_mode=True,
            expires_at=timezone.now() + timedelta(days=1),
        )
    MachineKey.objects.filter(workspace=permissive, name="night-bot").update(
        revoked_at=timezone.now()
    )
    autonomy = posture_build(workspace=permissive)["autonomy"]
    assert autonomy["active_keys"] == 1 and autonomy["unattended_keys"] == []


# --- each mitigation, applied for real --------------------------------------------

# The switch's own weight; turning the floor on or outbound off also makes the sensitive
# acting tools wait for a human, which the announced points include (the one truth: what
# the gate does, not each tool's own field).
SWITCH_POINTS = {
    "sensitivity_floor_on": WEIGHTS["floor_off"] + WEIGHTS["unconfirmed_tools"],
    "outbound_off": WEIGHTS["outbound_allowed"] + WEIGHTS["unconfirmed_tools"] / 2,
    "writes_off": WEIGHTS["writes_enabled"],
    "back_to_dry_run": WEIGHTS["live"],
    "confirm_acting_tools": WEIGHTS["unconfirmed_tools"],
}


def _apply(mitigation, workspace, client):
    """Do what the mitigation says, through the API it names, as the owner."""
    api = mitigation["api"]
    if mitigation["targets"]:
        model = MachineKey if "keys" in api["path"] else Tool
        for target in mitigation["targets"]:
            pk = model.objects.get(workspace=workspace, name=target["name"]).pk
            path = api["path"].replace("{id}", str(pk))
            body = json.loads(api["body"])
            response = getattr(client, api["method"].lower())(path, body, format="json")
            assert response.status_code == 200, response.json()
        return
    response = client.patch(api["path"], json.loads(api["body"]), format="json")
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    "code,points",
    [
        ("sensitivity_floor_on", 18),
        ("outbound_off", 14),
        ("writes_off", 8),
        ("confirm_acting_tools", 8),
        ("back_to_dry_run", 7),
        ("disable_idle_sensitive_tools", 6),
        ("retire_unattended_keys", 4),
    ],
)
def test_each_mitigation_lowers_the_score_as_announced(permissive, user_client, code, points):
    before = posture_build(workspace=permissive)
    [mitigation] = [m for m in before["mitigations"] if m["code"] == code]
    assert mitigation["points"] == points
    assert SWITCH_POINTS.get(code, points) == points  # the README's weights
    _apply(mitigation, permissive, user_client(_owner(permissive), permissive))
    permissive.refresh_from_db()
    after = posture_build(workspace=permissive)
    assert after["score"] == mitigation["score_after"] == before["score"] - points
    assert code not in [m["code"] for m in after["mitigations"]]


def test_mitigations_come_biggest_first_and_link_to_their_setting(permissive):
    mitigations = posture_build(workspace=permissive)["mitigations"]
    assert [m["points"] for m in mitigations] == sorted(
        (m["points"] for m in mitigations), reverse=True
    )
    by_code = {m["code"]: m for m in mitigations}
    assert by_code["outbound_off"]["admin_url"] == (
        f"/admin/tenants/workspace/{permissive.pk}/change/"
    )
    tool = Tool.objects.get(workspace=permissive, name="email.send")
    assert {"name": "email.send", "admin_url": f"/admin/approvals/tool/{tool.pk}/change/"} in (
        by_code["confirm_acting_tools"]["targets"]
    )


def test_applying_every_mitigation_brings_the_permissive_workspace_down(permissive, user_client):
    client = user_client(_owner(permissive), permissive)
    for _ in range(10):
        mitigations = posture_build(workspace=permissive)["mitigations"]
        if not mitigations:
            break
        _apply(mitigations[0], permissive, client)
        permissive.refresh_from_db()
    posture = posture_build(workspace=permissive)
    assert posture["mitigations"] == []
    assert posture["decision"]["autonomy"] == "low"
    assert posture["score"] < 40
