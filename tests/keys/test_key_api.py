"""Key lifecycle through the API: each state change for the allowed actor, a missing
scope, another workspace, a dead key and bad input."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry, VersionLog
from common.actor import Actor
from keys.models import MachineKey
from keys.services import key_revoke
from tenants.models import Role

SYSTEM = Actor.system("tests")


def counts():
    return MachineKey.objects.count(), AuditEntry.objects.count(), VersionLog.objects.count()


@pytest.fixture
def manager(workspace, make_key, key_client):
    """A key that may manage keys, and its client."""
    key, plaintext = make_key(workspace, scopes=["keys:read", "keys:write"])
    return key, key_client(plaintext)


# --- create -----------------------------------------------------------------------


def test_key_manager_creates_a_key_and_the_change_is_audited(workspace, manager):
    key, client = manager
    response = client.post(
        "/api/v1/keys",
        {
            "reason": "test change",
            "name": "crm-bot",
            "scopes": ["actions:read"],
            "tool_allowlist": ["crm.*"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    created = MachineKey.objects.get(pk=body["id"])
    assert created.workspace == workspace
    assert created.created_by == f"key:{key.pk}"
    assert created.owner == key.owner
    entry = AuditEntry.objects.get(action="key.created", target_id=str(created.pk))
    assert entry.actor == f"key:{key.pk}"


def test_human_with_manage_keys_creates_a_key(workspace, make_member, user_client):
    admin = make_member(workspace, Role.ADMIN)
    response = user_client(admin).post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert MachineKey.objects.get(pk=response.json()["id"]).owner == admin


def test_create_without_keys_write_is_forbidden_by_scope_and_writes_nothing(
    workspace, make_key, key_client, api_error
):
    _, plaintext = make_key(workspace, scopes=["keys:read"])
    before = counts()
    response = key_client(plaintext).post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    )
    body = api_error(response, 403, "forbidden_by_scope")
    assert body["error"]["detail"]["required_scope"] == "keys:write"
    assert "keys:write" in body["error"]["message"]
    assert counts() == before


def test_human_without_manage_keys_is_forbidden_by_scope(
    workspace, make_member, user_client, api_error
):
    approver = make_member(workspace, Role.APPROVER)
    before = counts()
    response = user_client(approver).post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    )
    api_error(response, 403, "forbidden_by_scope")
    assert counts() == before


def test_key_write_cannot_mint_a_key_with_scopes_it_lacks(workspace, manager, api_error):
    _, client = manager
    before = counts()
    response = client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["workspace:admin"]},
        format="json",
    )
    body = api_error(response, 403, "forbidden_by_scope")
    assert body["error"]["detail"]["required_scope"] == "workspace:admin"
    assert counts() == before


def test_admin_role_cannot_mint_a_workspace_admin_key(
    workspace, make_member, user_client, api_error
):
    admin = make_member(workspace, Role.ADMIN)
    before = counts()
    response = user_client(admin).post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["workspace:admin"]},
        format="json",
    )
    api_error(response, 403, "forbidden_by_scope")
    assert counts() == before


def test_create_with_unknown_scope_is_validation_error(workspace, manager, api_error):
    _, client = manager
    before = counts()
    response = client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read", "root:all"]},
        format="json",
    )
    body = api_error(response, 400, "validation_error")
    assert "root:all" in str(body["error"]["detail"])
    assert counts() == before


@pytest.mark.parametrize(
    "payload",
    [
        {"scopes": ["actions:read"]},
        {"name": "", "scopes": ["actions:read"]},
        {"name": {"x": 1}, "scopes": ["actions:read"]},
        {"name": "bot", "scopes": "actions:read"},
        {"name": "bot", "scopes": [1, 2]},
        {"name": "bot", "scopes": ["actions:read"], "tool_allowlist": ["DROP TABLE"]},
        {"name": "bot", "scopes": ["actions:read"], "allowed_ips": ["not-an-ip"]},
        {"name": "bot", "scopes": ["actions:read"], "rate_limit_per_minute": "lots"},
        {"name": "bot", "scopes": ["actions:read"], "rate_limit_per_minute": 0},
        {"name": "bot", "scopes": ["actions:read"], "expires_at": "tomorrow"},
        {"name": "bot", "scopes": ["actions:read"], "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "bot", "scopes": ["actions:read"], "owner": "nobody@example.test"},
        {"name": "x" * 101, "scopes": ["actions:read"]},
    ],
)
def test_create_with_bad_input_is_validation_error(workspace, manager, api_error, payload):
    _, client = manager
    before = counts()
    api_error(
        client.post("/api/v1/keys", {**payload, "reason": "test change"}, format="json"),
        400,
        "validation_error",
    )
    assert counts() == before


def test_create_with_a_dead_key_is_refused(workspace, manager, key_client, api_error):
    key, client = manager
    key_revoke(reason="test set-up", key=key, actor=SYSTEM)
    before = counts()
    response = client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    )
    api_error(response, 401, "key_revoked")
    assert counts() == before


def test_create_with_an_expired_key_is_refused(workspace, make_key, key_client, api_error):
    key, plaintext = make_key(workspace, scopes=["keys:write"])
    MachineKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = counts()
    response = key_client(plaintext).post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    )
    api_error(response, 401, "key_expired")
    assert counts() == before


def test_created_key_lands_in_the_callers_workspace_only(
    workspace, other_workspace, manager, api_error
):
    _, client = manager
    response = client.post(
        "/api/v1/keys",
        {
            "reason": "test change",
            "name": "bot",
            "scopes": ["actions:read"],
            "workspace_id": str(other_workspace.pk),
        },
        format="json",
    )
    api_error(response, 403, "workspace_mismatch")
    assert not MachineKey.objects.filter(workspace=other_workspace).exists()


# --- revoke -----------------------------------------------------------------------


def test_revoke_stops_the_key_and_is_audited(workspace, manager, make_key, key_client, api_error):
    manager_key, client = manager
    target, plaintext = make_key(workspace)
    response = client.post(f"/api/v1/keys/{target.pk}/revoke", {"reason": "leaked"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    api_error(key_client(plaintext).get("/api/v1/whoami"), 401, "key_revoked")
    entry = AuditEntry.objects.get(action="key.revoked", target_id=str(target.pk))
    assert entry.actor == f"key:{manager_key.pk}"
    assert entry.rationale == "leaked"


def test_revoking_twice_records_one_audit_entry(workspace, manager, make_key):
    _, client = manager
    target, _ = make_key(workspace)
    client.post(f"/api/v1/keys/{target.pk}/revoke", {"reason": "test change"}, format="json")
    assert (
        client.post(
            f"/api/v1/keys/{target.pk}/revoke", {"reason": "test change"}, format="json"
        ).status_code
        == 200
    )
    assert AuditEntry.objects.filter(action="key.revoked", target_id=str(target.pk)).count() == 1


def test_revoke_without_keys_write_is_refused(workspace, make_key, key_client, api_error):
    _, plaintext = make_key(workspace, scopes=["keys:read"])
    target, _ = make_key(workspace)
    api_error(
        key_client(plaintext).post(
            f"/api/v1/keys/{target.pk}/revoke", {"reason": "test change"}, format="json"
        ),
        403,
        "forbidden_by_scope",
    )
    target.refresh_from_db()
    assert target.revoked_at is None


def test_revoke_with_bad_reason_type_is_validation_error(workspace, manager, make_key, api_error):
    _, client = manager
    target, _ = make_key(workspace)
    api_error(
        client.post(f"/api/v1/keys/{target.pk}/revoke", {"reason": ["x"]}, format="json"),
        400,
        "validation_error",
    )
    target.refresh_from_db()
    assert target.revoked_at is None


# --- rotate -----------------------------------------------------------------------


def test_a_key_rotating_itself_gets_the_new_secret_once(workspace, make_key, key_client):
    target, old = make_key(workspace, scopes=["keys:read", "keys:write"])
    client = key_client(old)
    response = client.post(
        f"/api/v1/keys/{target.pk}/rotate", {"grace_seconds": 3600}, format="json"
    )
    assert response.status_code == 200
    new = response.json()["key"]
    assert new != old and new.startswith(f"wdn_{target.prefix}_")
    assert key_client(new).get("/api/v1/whoami").status_code == 200
    assert key_client(old).get("/api/v1/whoami").status_code == 200  # grace
    assert new not in str(client.get(f"/api/v1/keys/{target.pk}").json())
    assert AuditEntry.objects.filter(action="key.rotated", target_id=str(target.pk)).exists()


def test_rotating_someone_elses_key_sends_the_secret_to_its_owner(
    workspace, manager, make_key, key_client, user_client
):
    _, client = manager
    target, old = make_key(workspace)
    response = client.post(f"/api/v1/keys/{target.pk}/rotate", {}, format="json")
    assert response.status_code == 200
    assert "key" not in response.json()  # the rotator never sees it
    assert key_client(old).get("/api/v1/whoami").status_code == 200  # until claimed
    owner = user_client(target.owner, workspace)
    claimed = owner.post(f"/api/v1/keys/{target.pk}/claim")
    assert claimed.status_code == 200
    new = claimed.json()["key"]
    assert key_client(new).get("/api/v1/whoami").status_code == 200
    assert owner.post(f"/api/v1/keys/{target.pk}/claim").status_code == 409  # once


def test_rotate_with_grace_beyond_seven_days_is_validation_error(
    workspace, manager, make_key, api_error
):
    _, client = manager
    target, _ = make_key(workspace)
    digest = target.digest
    api_error(
        client.post(
            f"/api/v1/keys/{target.pk}/rotate", {"grace_seconds": 8 * 86400}, format="json"
        ),
        400,
        "validation_error",
    )
    target.refresh_from_db()
    assert target.digest == digest


def test_rotate_a_revoked_key_is_conflict(workspace, manager, make_key, api_error):
    _, client = manager
    target, _ = make_key(workspace)
    key_revoke(reason="test set-up", key=target, actor=SYSTEM)
    api_error(client.post(f"/api/v1/keys/{target.pk}/rotate", format="json"), 409, "conflict")


def test_key_write_cannot_rotate_a_more_powerful_key(workspace, manager, make_key, api_error):
    _, client = manager
    target, _ = make_key(workspace, scopes=["workspace:admin"])
    digest = target.digest
    body = api_error(
        client.post(f"/api/v1/keys/{target.pk}/rotate", format="json"), 403, "forbidden_by_scope"
    )
    assert body["error"]["detail"]["required_scope"] == "workspace:admin"
    target.refresh_from_db()
    assert target.digest == digest


def test_rotate_without_keys_write_is_refused(workspace, make_key, key_client, api_error):
    _, plaintext = make_key(workspace, scopes=["keys:read"])
    target, _ = make_key(workspace)
    digest = target.digest
    api_error(
        key_client(plaintext).post(f"/api/v1/keys/{target.pk}/rotate", format="json"),
        403,
        "forbidden_by_scope",
    )
    target.refresh_from_db()
    assert target.digest == digest


# --- reads ------------------------------------------------------------------------


def test_list_needs_keys_read(workspace, make_key, key_client, api_error):
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    body = api_error(key_client(plaintext).get("/api/v1/keys"), 403, "forbidden_by_scope")
    assert body["error"]["detail"]["required_scope"] == "keys:read"


def test_workspace_admin_scope_implies_every_scope(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["workspace:admin"])
    client = key_client(plaintext)
    assert client.get("/api/v1/keys").status_code == 200
    assert client.get("/api/v1/members").status_code == 200


def test_list_shows_only_this_workspaces_keys(workspace, other_workspace, manager, make_key):
    _, client = manager
    mine, _ = make_key(workspace)
    theirs, _ = make_key(other_workspace)
    ids = {row["id"] for row in client.get("/api/v1/keys").json()["results"]}
    assert str(mine.pk) in ids
    assert str(theirs.pk) not in ids


def test_unattended_rule_holds_outside_the_api_too(workspace, make_member):
    """The CLI, admin and Celery call key_create directly: the 90-day rule is there."""
    import pytest

    from common.actor import Actor
    from common.errors import WardenError
    from keys.services import key_create
    from tenants.models import Role

    owner = make_member(workspace, Role.OWNER)
    with pytest.raises(WardenError) as refused:
        key_create(
            reason="test set-up",
            workspace=workspace,
            name="robot",
            owner=owner,
            scopes=["actions:read"],
            unattended_mode=True,
            actor=Actor.system("tests"),
        )
    assert refused.value.code == "validation_error"
    assert "90 days" in refused.value.message
