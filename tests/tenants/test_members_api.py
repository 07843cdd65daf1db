"""Members through the API: roles become guardian permissions, owners are protected."""

import pytest

from audit.models import AuditEntry
from tenants.models import Membership, Role


def state(workspace):
    return (
        sorted(Membership.objects.filter(workspace=workspace).values_list("user__email", "role")),
        AuditEntry.objects.filter(workspace=workspace).count(),
    )


@pytest.fixture
def members_key(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["members:write"])
    return key_client(plaintext)


@pytest.fixture
def owner(workspace):
    return Membership.objects.get(workspace=workspace, role=Role.OWNER)


def test_added_member_gets_the_roles_permissions(workspace, members_key):
    response = members_key.post(
        "/api/v1/members",
        {"reason": "test change", "email": "ann@example.test", "role": "auditor"},
        format="json",
    )
    assert response.status_code == 201
    membership = Membership.objects.get(pk=response.json()["id"])
    assert membership.user.has_perm("tenants.view_audit", workspace)
    assert not membership.user.has_perm("tenants.approve_actions", workspace)
    assert not membership.user.has_perm("tenants.manage_keys", workspace)
    assert membership.user.is_staff
    assert AuditEntry.objects.filter(action="member.added", target_id=str(membership.pk)).exists()


@pytest.mark.parametrize("role", ["approver", "admin"])
def test_adding_someone_who_may_approve_waits_for_a_second_person(workspace, members_key, role):
    """Who may approve grows (closed world): filed, not added."""
    response = members_key.post(
        "/api/v1/members",
        {"reason": "test change", "email": "ann@example.test", "role": role},
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert "warden.member.grant_admin" in response.json()["governed_operations"]
    assert not Membership.objects.filter(workspace=workspace, user__email="ann@example.test")


def test_plain_member_gets_no_admin_site_access(workspace, members_key):
    response = members_key.post(
        "/api/v1/members",
        {"reason": "test change", "email": "bob@example.test", "role": "member"},
        format="json",
    )
    assert not Membership.objects.get(pk=response.json()["id"]).user.is_staff


def test_role_change_moves_permissions(workspace, members_key, make_member):
    user = make_member(workspace, Role.APPROVER)
    membership = Membership.objects.get(workspace=workspace, user=user)
    # Lowering applies at once; raising to a role that may approve is governed.
    response = members_key.patch(
        f"/api/v1/members/{membership.pk}",
        {"reason": "test change", "role": "auditor"},
        format="json",
    )
    assert response.status_code == 200
    assert user.has_perm("tenants.view_audit", workspace)
    assert not user.has_perm("tenants.approve_actions", workspace)
    raised = members_key.patch(
        f"/api/v1/members/{membership.pk}",
        {"reason": "test change", "role": "approver"},
        format="json",
    )
    assert raised.status_code == 202
    assert not user.has_perm("tenants.approve_actions", workspace)
    members_key.patch(
        f"/api/v1/members/{membership.pk}",
        {"reason": "test change", "role": "member"},
        format="json",
    )
    assert not user.has_perm("tenants.view_audit", workspace)


def test_removal_drops_permissions_and_is_audited(workspace, members_key, make_member):
    user = make_member(workspace, Role.ADMIN)
    membership = Membership.objects.get(workspace=workspace, user=user)
    assert (
        members_key.delete(
            f"/api/v1/members/{membership.pk}", {"reason": "test change"}, format="json"
        ).status_code
        == 204
    )
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert not user.has_perm("tenants.manage_keys", workspace)
    user.refresh_from_db()
    assert not user.is_staff
    assert AuditEntry.objects.filter(action="member.removed", target_id=str(membership.pk)).exists()


def test_members_endpoints_need_members_write(workspace, make_key, key_client, owner, api_error):
    _, plaintext = make_key(workspace, scopes=["keys:read", "keys:write"])
    client = key_client(plaintext)
    before = state(workspace)
    for response in (
        client.get("/api/v1/members"),
        client.post(
            "/api/v1/members",
            {"reason": "test change", "email": "x@example.test", "role": "member"},
            format="json",
        ),
        client.get(f"/api/v1/members/{owner.pk}"),
        client.patch(
            f"/api/v1/members/{owner.pk}", {"reason": "test change", "role": "admin"}, format="json"
        ),
        client.delete(f"/api/v1/members/{owner.pk}", {"reason": "test change"}, format="json"),
    ):
        body = api_error(response, 403, "forbidden_by_scope")
        assert body["error"]["detail"]["required_scope"] == "members:write"
    assert state(workspace) == before


def test_auditor_session_cannot_manage_members(
    workspace, make_member, user_client, owner, api_error
):
    auditor = make_member(workspace, Role.AUDITOR)
    before = state(workspace)
    api_error(
        user_client(auditor).delete(
            f"/api/v1/members/{owner.pk}", {"reason": "test change"}, format="json"
        ),
        403,
        "forbidden_by_scope",
    )
    assert state(workspace) == before


def test_last_owner_cannot_be_demoted(workspace, make_key, key_client, owner, api_error):
    _, plaintext = make_key(workspace, scopes=["workspace:admin"])
    before = state(workspace)
    response = key_client(plaintext).patch(
        f"/api/v1/members/{owner.pk}", {"reason": "test change", "role": "admin"}, format="json"
    )
    api_error(response, 409, "last_owner")
    assert state(workspace) == before


def test_last_owner_cannot_be_removed(workspace, user_client, owner, api_error):
    before = state(workspace)
    response = user_client(owner.user).delete(
        f"/api/v1/members/{owner.pk}", {"reason": "test change"}, format="json"
    )
    api_error(response, 409, "last_owner")
    assert state(workspace) == before


def test_an_owner_can_step_down_once_another_owner_exists(
    workspace, user_client, owner, make_member
):
    client = user_client(owner.user)
    make_member(workspace, Role.OWNER)
    response = client.patch(
        f"/api/v1/members/{owner.pk}", {"reason": "test change", "role": "admin"}, format="json"
    )
    assert response.status_code == 200
    assert not owner.user.has_perm("tenants.manage_workspace", workspace)


def test_admin_role_cannot_grant_the_owner_role(workspace, make_member, user_client, api_error):
    admin = make_member(workspace, Role.ADMIN)
    before = state(workspace)
    response = user_client(admin).post(
        "/api/v1/members",
        {"reason": "test change", "email": "boss@example.test", "role": "owner"},
        format="json",
    )
    api_error(response, 403, "forbidden_by_scope")
    assert state(workspace) == before


def test_admin_role_cannot_promote_itself_to_owner(workspace, make_member, user_client, api_error):
    admin = make_member(workspace, Role.ADMIN)
    membership = Membership.objects.get(workspace=workspace, user=admin)
    response = user_client(admin).patch(
        f"/api/v1/members/{membership.pk}",
        {"reason": "test change", "role": "owner"},
        format="json",
    )
    api_error(response, 403, "forbidden_by_scope")
    assert not admin.has_perm("tenants.manage_workspace", workspace)


def test_members_write_key_cannot_remove_an_owner(workspace, members_key, owner, api_error):
    api_error(
        members_key.delete(f"/api/v1/members/{owner.pk}", {"reason": "test change"}, format="json"),
        403,
        "forbidden_by_scope",
    )
    assert Membership.objects.filter(pk=owner.pk).exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "role": "member"},
        {"email": "ok@example.test", "role": "emperor"},
        {"email": ["a@example.test"], "role": "member"},
        {"role": "member"},
        {"email": "ok@example.test"},
    ],
)
def test_add_with_bad_input_is_validation_error(workspace, members_key, api_error, payload):
    before = state(workspace)
    api_error(members_key.post("/api/v1/members", payload, format="json"), 400, "validation_error")
    assert state(workspace) == before


def test_adding_an_existing_member_is_conflict(workspace, members_key, make_member, api_error):
    user = make_member(workspace, Role.MEMBER)
    response = members_key.post(
        "/api/v1/members",
        {"reason": "test change", "email": user.email, "role": "admin"},
        format="json",
    )
    api_error(response, 409, "conflict")


@pytest.mark.parametrize("payload", [{"role": "emperor"}, {"role": 3}, {}])
def test_role_change_with_bad_input_is_validation_error(
    workspace, members_key, make_member, api_error, payload
):
    user = make_member(workspace, Role.MEMBER)
    membership = Membership.objects.get(workspace=workspace, user=user)
    api_error(
        members_key.patch(f"/api/v1/members/{membership.pk}", payload, format="json"),
        400,
        "validation_error",
    )
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER


def test_revoked_key_cannot_manage_members(workspace, make_key, key_client, api_error):
    from common.actor import Actor
    from keys.services import key_revoke

    key, plaintext = make_key(workspace, scopes=["members:write"])
    key_revoke(reason="test set-up", key=key, actor=Actor.system("tests"))
    before = state(workspace)
    response = key_client(plaintext).post(
        "/api/v1/members",
        {"reason": "test change", "email": "x@example.test", "role": "member"},
        format="json",
    )
    api_error(response, 401, "key_revoked")
    assert state(workspace) == before


def test_removing_a_member_revokes_the_keys_they_own(
    workspace, make_member, make_key, key_client, user_client
):
    from tenants.models import Membership, Role

    admin = make_member(workspace, Role.ADMIN)
    leaver = make_member(workspace, Role.MEMBER)
    key, plaintext = make_key(workspace, owner=leaver)
    membership = Membership.objects.get(workspace=workspace, user=leaver)
    response = user_client(admin, workspace).delete(
        f"/api/v1/members/{membership.pk}", {"reason": "test change"}, format="json"
    )
    assert response.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key_client(plaintext).get("/api/v1/whoami").json()["error"]["code"] == "key_revoked"
