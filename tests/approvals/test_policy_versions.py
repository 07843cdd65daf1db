"""Every applied policy-bearing change produces a policy version (issue 24 item 5): a
single-field tool change from the API (at once, or when its governed request is
approved), tool create and delete, workspace settings; a document apply is ONE version;
a no-op and a refused change record none."""

import pytest

from approvals.catalog import tool_update
from approvals.models import ConfirmationRequest, PolicyVersion, Tool
from approvals.policy.document import export_document
from common.errors import WardenError
from tenants.models import Membership, Role
from tests.conftest import SYSTEM


@pytest.fixture
def owner(live_workspace):
    return Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user


@pytest.fixture
def lookup(live_workspace, make_tool):
    return make_tool(live_workspace, "crm.lookup", level="read", confirmation="never")


def latest(workspace) -> PolicyVersion:
    return PolicyVersion.objects.filter(workspace=workspace).order_by("-number").first()


def count(workspace) -> int:
    return PolicyVersion.objects.filter(workspace=workspace).count()


def test_a_tool_patch_through_the_api_records_a_version_naming_the_field(
    live_workspace, lookup, owner, user_client
):
    before = count(live_workspace)
    response = user_client(owner, live_workspace).patch(
        f"/api/v1/tools/{lookup.pk}",
        {"reason": "test change", "confirmation": "always"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert count(live_workspace) == before + 1
    version = latest(live_workspace)
    assert version.diff == {"tool crm.lookup: confirmation": {"before": "never", "after": "always"}}
    assert (version.source, version.author, version.approvers) == (
        "applied",
        f"user:{owner.email}",
        [],
    )
    live_workspace.refresh_from_db()
    assert version.document == export_document(live_workspace)
    assert version.policy_version == live_workspace.policy_version


def test_an_approved_governed_change_records_its_approvers(
    live_workspace, lookup, owner, user_client, make_member, approve
):
    Tool.objects.filter(pk=lookup.pk).update(confirmation="always")  # set-up
    before = count(live_workspace)
    response = user_client(owner, live_workspace).patch(
        f"/api/v1/tools/{lookup.pk}",
        {"reason": "test change", "confirmation": "never"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert count(live_workspace) == before  # filed, not applied: no version yet
    confirmation = ConfirmationRequest.objects.get(workspace=live_workspace, status="pending")
    admin = make_member(live_workspace, Role.ADMIN)
    assert approve(admin, live_workspace, confirmation.pk).status_code == 200
    assert count(live_workspace) == before + 1
    version = latest(live_workspace)
    assert version.source == "approved"
    assert version.author == f"user:{owner.email}"
    assert version.approvers == [f"user:{admin.email}"]
    assert version.request_id == confirmation.action_request_id
    assert version.operations == ["warden.tool.lower_confirmation"]
    assert version.diff == {"tool crm.lookup: confirmation": {"before": "always", "after": "never"}}


def test_tool_create_and_delete_are_versions(
    live_workspace, owner, user_client, make_member, approve
):
    client = user_client(owner, live_workspace)
    filed = client.post(
        "/api/v1/tools",
        {"reason": "test change", "name": "crm.note", "level": "read", "confirmation": "always"},
        format="json",
    )
    assert filed.status_code == 202, filed.json()  # a new tool is governed
    confirmation = ConfirmationRequest.objects.get(workspace=live_workspace, status="pending")
    admin = make_member(live_workspace, Role.ADMIN)
    assert approve(admin, live_workspace, confirmation.pk).status_code == 200
    version = latest(live_workspace)
    assert (version.source, version.approvers) == ("approved", [f"user:{admin.email}"])
    ((key, change),) = version.diff.items()
    assert key == "tool crm.note" and change["before"] is None
    assert change["after"]["confirmation"] == "always"
    tool = Tool.objects.get(workspace=live_workspace, name="crm.note")
    assert (
        client.delete(
            f"/api/v1/tools/{tool.pk}", {"reason": "test change"}, format="json"
        ).status_code
        == 204
    )
    version = latest(live_workspace)
    ((key, change),) = version.diff.items()
    assert key == "tool crm.note" and change["after"] is None
    assert [t["name"] for t in version.document["tools"]] == []


def test_a_workspace_settings_change_is_a_version(live_workspace, owner, user_client):
    before = count(live_workspace)
    response = user_client(owner, live_workspace).patch(
        "/api/v1/workspace", {"reason": "test change", "writes_enabled": False}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert count(live_workspace) == before + 1
    assert latest(live_workspace).diff == {
        "settings: writes_enabled": {"before": True, "after": False}
    }
    # The display name is not policy: no version.
    response = user_client(owner, live_workspace).patch(
        "/api/v1/workspace", {"reason": "test change", "name": "Renamed"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert count(live_workspace) == before + 1


def test_a_no_op_and_a_refused_change_record_nothing(live_workspace, lookup, owner, user_client):
    before = count(live_workspace)
    client = user_client(owner, live_workspace)
    same = client.patch(
        f"/api/v1/tools/{lookup.pk}", {"reason": "test change", "level": "read"}, format="json"
    )
    assert same.status_code == 200, same.json()
    bad = client.patch(
        f"/api/v1/tools/{lookup.pk}",
        {"reason": "test change", "condition": "params.("},
        format="json",
    )
    assert bad.status_code == 400
    with pytest.raises(WardenError):
        tool_update(reason="test set-up", tool=lookup, actor=SYSTEM, changes={"level": "nonsense"})
    assert count(live_workspace) == before


def test_a_document_apply_of_several_tools_is_one_version(
    live_workspace, lookup, make_tool, owner, user_client
):
    make_tool(live_workspace, "email.send", level="external", confirmation="never")
    before = count(live_workspace)
    live_workspace.refresh_from_db()
    doc = export_document(live_workspace)
    for entry in doc["tools"]:
        entry["confirmation"] = "always"
    response = user_client(owner, live_workspace).post(
        "/api/v1/policy/apply", {"reason": "test change", "document": doc}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert count(live_workspace) == before + 1
    assert set(latest(live_workspace).diff) == {
        "tool crm.lookup: confirmation",
        "tool email.send: confirmation",
    }


# --- navigating versions: neighbours, two versions diffed, from a decision to its policy ----


@pytest.fixture
def three_versions(live_workspace, lookup, owner, user_client):
    """Versions n (always), n+1 (irreversible), n+2 (pii): returns their numbers."""
    client = user_client(owner, live_workspace)
    numbers = []
    for change in ({"confirmation": "always"}, {"irreversible": True}, {"data_classes": ["pii"]}):
        body = {**change, "reason": "test change"}
        assert client.patch(f"/api/v1/tools/{lookup.pk}", body, format="json").status_code == 200
        numbers.append(latest(live_workspace).number)
    return numbers


def test_a_version_names_its_neighbours_and_diffs_against_another(
    live_workspace, three_versions, owner, user_client
):
    first, middle, last = three_versions
    client = user_client(owner, live_workspace)
    body = client.get(f"/api/v1/policy/versions/{last}", {"against": first}).json()
    assert (body["previous"], body["next"], body["against"]) == (middle, None, first)
    assert body["diff_against"] == {
        "tool crm.lookup: data_classes": {"before": [], "after": ["pii"]},
        "tool crm.lookup: irreversible": {"before": False, "after": True},
    }
    assert body["diff_to_current"] == {}
    assert client.get(f"/api/v1/policy/versions/{middle}").json()["next"] == last


def test_a_bad_or_unknown_version_to_diff_against_is_refused(
    live_workspace, three_versions, owner, user_client, api_error
):
    client = user_client(owner, live_workspace)
    last = three_versions[-1]
    api_error(client.get(f"/api/v1/policy/versions/{last}", {"against": 999}), 404, "not_found")
    api_error(
        client.get(f"/api/v1/policy/versions/{last}", {"against": "x"}), 400, "validation_error"
    )
    api_error(client.get(f"/api/v1/policy/versions/{last}", {"colour": 1}), 400, "validation_error")


def test_a_decision_leads_to_the_policy_version_it_was_decided_under(
    live_workspace, three_versions, owner, user_client, agent, ask
):
    from approvals.models import ActionRequest

    response = ask(agent[1], "crm.lookup", {})
    decided = ActionRequest.objects.get(pk=response.json()["id"])
    client = user_client(owner, live_workspace)
    (found,) = client.get(
        "/api/v1/policy/versions", {"policy_version": decided.policy_version}
    ).json()["results"]
    assert found["number"] == three_versions[-1]
    assert client.get("/api/v1/policy/versions", {"policy_version": 0}).json() == {"results": []}


def test_the_admin_version_page_links_to_its_neighbours(live_workspace, three_versions, owner):
    from django.test import Client

    first, middle, last = three_versions
    versions = {v.number: v.pk for v in PolicyVersion.objects.filter(workspace=live_workspace)}
    client = Client()
    client.force_login(owner)
    html = client.get(f"/admin/approvals/policyversion/{versions[middle]}/change/").content.decode()
    assert f'previous <a href="/admin/approvals/policyversion/{versions[first]}/change/">' in html
    assert f'next <a href="/admin/approvals/policyversion/{versions[last]}/change/">' in html
