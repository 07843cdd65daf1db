from tenants.models import Role


def test_whoami_for_key_names_workspace_and_scopes(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["actions:read", "keys:read"])
    response = key_client(plaintext).get("/api/v1/whoami")
    assert response.status_code == 200
    body = response.json()
    assert body["workspace"]["slug"] == workspace.slug
    assert body["mode"] == "dry_run"
    assert body["writes_enabled"] is False
    assert body["scopes"] == ["actions:read", "keys:read"]


def test_owner_can_add_member_through_session(workspace, make_member, user_client):
    admin = make_member(workspace, Role.ADMIN)
    response = user_client(admin).post(
        "/api/v1/members",
        {"reason": "test change", "email": "new@example.test", "role": "auditor"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["role"] == "auditor"
