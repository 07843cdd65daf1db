"""The platform's own dangerous operations go through the same confirmation gate."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import platform
from approvals.models import ActionRequest, ConfirmationRequest
from keys.models import MachineKey
from tenants.models import Membership, Role, Workspace


def code(response):
    return response.json()["error"]["code"]


def confirm(client, method, url, body, first):
    call = getattr(client, method)
    return call(
        url,
        {**body, "confirmed": True, "confirmation_token": first["confirmation_token"]},
        format="json",
    )


@pytest.fixture
def owner(workspace):
    return Membership.objects.get(workspace=workspace, role=Role.OWNER).user


def test_going_live_needs_a_second_human(workspace, owner, user_client, make_member, approve):
    client = user_client(owner, workspace)
    first = client.patch("/api/v1/workspace", {"mode": "live"}, format="json")
    assert first.status_code == 202, first.json()
    body = first.json()
    assert body["irreversible"] is True and body["confirmation_token"].startswith("ct_")
    assert Workspace.objects.get(pk=workspace.pk).mode == "dry_run"
    action = ActionRequest.objects.get(pk=body["id"])
    assert (action.tool_name, action.key_id) == ("warden.workspace.go_live", None)
    confirmation = ConfirmationRequest.objects.get(action_request=action)
    assert code(approve(owner, workspace, confirmation.pk)) == "four_eyes"
    pending = confirm(client, "patch", "/api/v1/workspace", {"mode": "live"}, body)
    assert code(pending) == "confirmation_pending"
    assert (
        approve(make_member(workspace, Role.APPROVER), workspace, confirmation.pk).status_code
        == 200
    )
    applied = confirm(client, "patch", "/api/v1/workspace", {"mode": "live"}, body)
    assert applied.status_code == 200, applied.json()
    assert applied.json()["mode"] == "live"
    assert code(confirm(client, "patch", "/api/v1/workspace", {"mode": "live"}, body)) in {
        "confirmation_mismatch",  # no longer a gated change: nothing to confirm
        "confirmation_used",
    }


def test_key_asks_to_enable_writes_and_owner_of_key_cannot_approve(
    workspace, make_key, key_client, make_member, approve
):
    key, plaintext = make_key(workspace, scopes=["workspace:admin"])
    client = key_client(plaintext)
    first = client.patch("/api/v1/workspace", {"writes_enabled": True}, format="json")
    assert first.status_code == 202
    action = ActionRequest.objects.get(pk=first.json()["id"])
    assert action.tool_name == "warden.workspace.enable_writes"
    confirmation = action.confirmation
    assert code(approve(key.owner, workspace, confirmation.pk)) == "four_eyes"
    approve(make_member(workspace, Role.APPROVER), workspace, confirmation.pk)
    applied = confirm(client, "patch", "/api/v1/workspace", {"writes_enabled": True}, first.json())
    assert applied.status_code == 200 and applied.json()["writes_enabled"] is True


def test_unattended_key_cannot_skip_platform_confirmation(workspace, make_key, key_client):
    _, plaintext = make_key(
        workspace,
        scopes=["workspace:admin"],
    )
    MachineKey.objects.update(unattended_mode=True)
    response = key_client(plaintext).patch(
        "/api/v1/workspace", {"outbound_allowed": True}, format="json"
    )
    assert response.status_code == 202


def test_several_gated_settings_are_one_request(workspace, owner, user_client):
    response = user_client(owner, workspace).patch(
        "/api/v1/workspace", {"writes_enabled": True, "outbound_allowed": True}, format="json"
    )
    assert response.status_code == 202
    assert ActionRequest.objects.get().tool_name == "warden.workspace.update_settings"


def test_safe_changes_apply_at_once(workspace, owner, user_client):
    response = user_client(owner, workspace).patch(
        "/api/v1/workspace", {"name": "Renamed", "plan_rank": 4}, format="json"
    )
    assert response.status_code == 200
    assert Workspace.objects.get(pk=workspace.pk).name == "Renamed"
    assert not ActionRequest.objects.exists()


def test_tampered_recall_is_a_mismatch(workspace, owner, user_client, make_member, approve):
    client = user_client(owner, workspace)
    first = client.patch("/api/v1/workspace", {"mode": "live"}, format="json").json()
    approve(make_member(workspace, Role.APPROVER), workspace, ConfirmationRequest.objects.get().pk)
    tampered = confirm(
        client, "patch", "/api/v1/workspace", {"mode": "live", "outbound_allowed": True}, first
    )
    assert code(tampered) == "confirmation_mismatch"


def test_another_human_cannot_use_the_requesters_token(
    workspace, owner, user_client, make_member, approve
):
    first = (
        user_client(owner, workspace)
        .patch("/api/v1/workspace", {"mode": "live"}, format="json")
        .json()
    )
    approver = make_member(workspace, Role.OWNER)
    approve(approver, workspace, ConfirmationRequest.objects.get().pk)
    stolen = confirm(
        user_client(approver, workspace), "patch", "/api/v1/workspace", {"mode": "live"}, first
    )
    assert code(stolen) == "confirmation_mismatch"


def test_patch_needs_workspace_admin(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["keys:write"])
    response = key_client(plaintext).patch("/api/v1/workspace", {"mode": "live"}, format="json")
    assert code(response) == "forbidden_by_scope"


def test_deleting_a_workspace_is_gated_and_soft(
    workspace, owner, user_client, make_key, key_client, make_member, approve
):
    _, agent_key = make_key(workspace)
    client = user_client(owner, workspace)
    first = client.delete("/api/v1/workspace", {"reason": "closing"}, format="json")
    assert first.status_code == 202
    approve(make_member(workspace, Role.APPROVER), workspace, ConfirmationRequest.objects.get().pk)
    done = confirm(client, "delete", "/api/v1/workspace", {"reason": "closing"}, first.json())
    assert done.status_code == 204
    assert Workspace.objects.get(pk=workspace.pk).deleted_at is not None
    assert code(key_client(agent_key).get("/api/v1/whoami")) == "invalid_key"


def test_creating_an_admin_key_is_gated(workspace, owner, user_client, make_member, approve):
    client = user_client(owner, workspace)
    body = {"name": "root-agent", "scopes": ["workspace:admin"]}
    first = client.post("/api/v1/keys", body, format="json")
    assert first.status_code == 202
    assert not MachineKey.objects.filter(name="root-agent").exists()
    approve(make_member(workspace, Role.APPROVER), workspace, ConfirmationRequest.objects.get().pk)
    created = confirm(client, "post", "/api/v1/keys", body, first.json())
    assert created.status_code == 201, created.json()
    assert created.json()["key"].startswith("wdn_")
    assert MachineKey.objects.get(name="root-agent").scopes == ["workspace:admin"]


def test_plain_keys_are_created_at_once(workspace, owner, user_client):
    response = user_client(owner, workspace).post(
        "/api/v1/keys", {"name": "reader", "scopes": ["actions:read"]}, format="json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("scopes", "expires_in_days"),
    [(["workspace:admin"], 30), (["actions:read"], None), (["actions:read"], 91)],
    ids=["admin-scope", "no-expiry", "too-long"],
)
def test_unattended_keys_must_be_narrow_and_short_lived(
    workspace, owner, user_client, scopes, expires_in_days
):
    body = {"name": "robot", "scopes": scopes, "unattended_mode": True}
    if expires_in_days:
        body["expires_at"] = (timezone.now() + timedelta(days=expires_in_days)).isoformat()
    response = user_client(owner, workspace).post("/api/v1/keys", body, format="json")
    assert (response.status_code, code(response)) == (400, "validation_error")


def test_unattended_key_creation_is_gated(workspace, owner, user_client, make_member, approve):
    client = user_client(owner, workspace)
    body = {
        "name": "robot",
        "scopes": ["actions:read"],
        "unattended_mode": True,
        "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
    }
    first = client.post("/api/v1/keys", body, format="json")
    assert first.status_code == 202
    assert ActionRequest.objects.get().tool_name == "warden.key.enable_unattended"
    approve(make_member(workspace, Role.APPROVER), workspace, ConfirmationRequest.objects.get().pk)
    created = confirm(client, "post", "/api/v1/keys", body, first.json())
    assert created.status_code == 201
    assert created.json()["unattended_mode"] is True


def test_removing_the_last_approver_is_gated(
    workspace, owner, user_client, make_member, approve, monkeypatch
):
    # With the shipped roles an owner can always approve, so model a workspace where
    # only the approver role may (e.g. a stricter role map).
    monkeypatch.setattr(platform, "APPROVER_ROLES", frozenset({Role.APPROVER}))
    last = make_member(workspace, Role.APPROVER)
    membership = Membership.objects.get(user=last, workspace=workspace)
    client = user_client(owner, workspace)
    first = client.delete(f"/api/v1/members/{membership.pk}", {}, format="json")
    assert first.status_code == 202
    assert ActionRequest.objects.get().tool_name == "warden.member.remove_last_approver"
    # The last approver must consent to their own removal: nobody else can approve.
    approve(last, workspace, ConfirmationRequest.objects.get().pk)
    done = confirm(client, "delete", f"/api/v1/members/{membership.pk}", {}, first.json())
    assert done.status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_removing_an_ordinary_member_is_immediate(workspace, owner, user_client, make_member):
    member = make_member(workspace, Role.APPROVER)
    membership = Membership.objects.get(user=member, workspace=workspace)
    response = user_client(owner, workspace).delete(f"/api/v1/members/{membership.pk}")
    assert response.status_code == 204


def test_platform_requests_appear_in_the_queue(workspace, owner, user_client, make_member):
    user_client(owner, workspace).patch("/api/v1/workspace", {"mode": "live"}, format="json")
    approver = make_member(workspace, Role.APPROVER)
    rows = user_client(approver, workspace).get("/api/v1/approvals").json()["results"]
    assert [row["tool"] for row in rows] == ["warden.workspace.go_live"]
    assert rows[0]["requested_by"] == f"user:{owner.email}"


def test_demoting_the_last_approver_is_gated(
    workspace, owner, user_client, make_member, approve, monkeypatch
):
    monkeypatch.setattr(platform, "APPROVER_ROLES", frozenset({Role.APPROVER}))
    last = make_member(workspace, Role.APPROVER)
    membership = Membership.objects.get(user=last, workspace=workspace)
    client = user_client(owner, workspace)
    url = f"/api/v1/members/{membership.pk}"
    first = client.patch(url, {"role": "member"}, format="json")
    assert first.status_code == 202, first.json()
    assert Membership.objects.get(pk=membership.pk).role == Role.APPROVER
    action = ActionRequest.objects.get()
    assert action.tool_name == "warden.member.remove_last_approver"
    assert action.params["new_role"] == "member"
    approve(last, workspace, ConfirmationRequest.objects.get().pk)
    done = confirm(client, "patch", url, {"role": "member"}, first.json())
    assert done.status_code == 200, done.json()
    assert Membership.objects.get(pk=membership.pk).role == Role.MEMBER


def test_moving_an_approver_between_approving_roles_is_immediate(
    workspace, owner, user_client, make_member, monkeypatch
):
    monkeypatch.setattr(platform, "APPROVER_ROLES", frozenset({Role.APPROVER, Role.ADMIN}))
    last = make_member(workspace, Role.APPROVER)
    membership = Membership.objects.get(user=last, workspace=workspace)
    response = user_client(owner, workspace).patch(
        f"/api/v1/members/{membership.pk}", {"role": "admin"}, format="json"
    )
    assert response.status_code == 200
    assert not ActionRequest.objects.exists()
