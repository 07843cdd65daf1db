"""Cross-tenant matrix for the foundation endpoints.

A key and a session user of workspace B, pointed at workspace A's objects, get exactly
the answer they get for an object that does not exist, and nothing in A changes."""

import uuid

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry, VersionLog
from keys.models import MachineKey
from tenants.models import Membership, Role, Workspace

# (method, path template, body); {key} and {member} are replaced by A's object ids.
OBJECT_CALLS = [
    ("get", "/api/v1/keys/{key}", None),
    ("post", "/api/v1/keys/{key}/revoke", {"reason": "cross-tenant"}),
    ("post", "/api/v1/keys/{key}/rotate", {"grace_seconds": 0}),
    ("get", "/api/v1/members/{member}", None),
    ("patch", "/api/v1/members/{member}", {"role": "member"}),
    ("delete", "/api/v1/members/{member}", None),
    # Wrong methods and bad bodies must not tell a foreign id from a missing one either.
    ("put", "/api/v1/keys/{key}", {}),
    ("patch", "/api/v1/members/{member}", {"role": "emperor"}),
    ("post", "/api/v1/keys/{key}/rotate", {"grace_seconds": "soon"}),
]


@pytest.fixture
def tenant_a(make_workspace, make_member, make_key):
    workspace = make_workspace()
    member = make_member(workspace, Role.ADMIN)
    key, _ = make_key(workspace, scopes=["workspace:admin"])
    return {
        "workspace": workspace,
        "key": key,
        "member": Membership.objects.get(workspace=workspace, user=member),
    }


@pytest.fixture
def intruder_key(make_workspace, make_key, key_client):
    workspace_b = make_workspace()
    _, plaintext = make_key(workspace_b, scopes=["workspace:admin"])
    return key_client(plaintext)


@pytest.fixture
def intruder_session(make_workspace):
    workspace_b = make_workspace()  # its owner has every permission in B
    owner = Membership.objects.get(workspace=workspace_b, role=Role.OWNER).user
    client = APIClient()
    client.force_login(owner)
    return client


@pytest.fixture(params=["key", "session"])
def intruder(request):
    return request.getfixturevalue(f"intruder_{request.param}")


def snapshot(workspace):
    """Everything in A an intruder could change."""
    return {
        "keys": list(
            MachineKey.objects.filter(workspace=workspace)
            .order_by("pk")
            .values("pk", "digest", "previous_digest", "revoked_at", "name", "scopes")
        ),
        "members": sorted(
            Membership.objects.filter(workspace=workspace).values_list("pk", "user_id", "role")
        ),
        "workspace": Workspace.objects.filter(pk=workspace.pk).values().get(),
        "audit": AuditEntry.objects.filter(workspace=workspace).count(),
        "versions": VersionLog.objects.filter(workspace=workspace).count(),
    }


def call(client, method, path, body):
    return (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )


@pytest.mark.parametrize(("method", "template", "body"), OBJECT_CALLS)
def test_foreign_object_answers_like_a_missing_one(tenant_a, intruder, method, template, body):
    before = snapshot(tenant_a["workspace"])
    foreign = template.format(key=tenant_a["key"].pk, member=tenant_a["member"].pk)
    missing = template.format(key=uuid.uuid4(), member=uuid.uuid4())
    foreign_response = call(intruder, method, foreign, body)
    missing_response = call(intruder, method, missing, body)
    assert foreign_response.status_code == missing_response.status_code
    assert foreign_response.status_code in (404, 405)
    assert foreign_response.json() == missing_response.json()
    assert snapshot(tenant_a["workspace"]) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/whoami", None),
        ("get", "/api/v1/keys", None),
        ("get", "/api/v1/members", None),
        ("post", "/api/v1/keys", {"name": "bot", "scopes": ["actions:read"]}),
        ("post", "/api/v1/members", {"email": "new@example.test", "role": "member"}),
        ("get", "/api/v1/workspace", None),
        ("patch", "/api/v1/workspace", {"name": "Renamed by its own admin"}),
    ],
)
def test_collection_calls_never_show_or_touch_another_workspace(
    tenant_a, intruder, method, path, body
):
    before = snapshot(tenant_a["workspace"])
    response = call(intruder, method, path, body)
    assert response.status_code in (200, 201), response.json()
    text = response.content.decode()
    for value in (
        tenant_a["workspace"].slug,
        str(tenant_a["workspace"].pk),
        str(tenant_a["key"].pk),
        tenant_a["key"].prefix,
        str(tenant_a["member"].pk),
        tenant_a["member"].user.email,
    ):
        assert value not in text
    assert snapshot(tenant_a["workspace"]) == before


def test_key_creation_naming_an_owner_from_another_workspace_answers_like_a_stranger(
    tenant_a, intruder
):
    body = {"name": "bot", "scopes": ["actions:read"]}
    foreign = call(
        intruder, "post", "/api/v1/keys", {**body, "owner": tenant_a["member"].user.email}
    )
    stranger = call(intruder, "post", "/api/v1/keys", {**body, "owner": "nobody@example.test"})
    assert foreign.status_code == stranger.status_code == 400
    assert foreign.json() == stranger.json()


@pytest.mark.parametrize("field", ["workspace_id", "workspace"])
def test_naming_another_workspace_is_refused_like_naming_a_missing_one(tenant_a, intruder, field):
    before = snapshot(tenant_a["workspace"])
    foreign = intruder.get(f"/api/v1/keys?{field}={tenant_a['workspace'].pk}")
    missing = intruder.get(f"/api/v1/keys?{field}={uuid.uuid4()}")
    assert foreign.status_code == missing.status_code == 403
    assert foreign.json() == missing.json()
    assert foreign.json()["error"]["code"] == "workspace_mismatch"
    assert snapshot(tenant_a["workspace"]) == before


def test_session_header_naming_another_workspace_is_refused_like_a_missing_one(
    tenant_a, intruder_session
):
    foreign = intruder_session.get(
        "/api/v1/keys", HTTP_X_WARDEN_WORKSPACE=tenant_a["workspace"].slug
    )
    missing = intruder_session.get("/api/v1/keys", HTTP_X_WARDEN_WORKSPACE="no-such-workspace")
    assert foreign.status_code == missing.status_code == 403
    assert foreign.json() == missing.json()


def test_workspace_patch_naming_another_workspace_is_refused_like_a_missing_one(tenant_a, intruder):
    before = snapshot(tenant_a["workspace"])
    foreign = call(
        intruder,
        "patch",
        "/api/v1/workspace",
        {"name": "Hijacked", "workspace_id": str(tenant_a["workspace"].pk)},
    )
    missing = call(
        intruder,
        "patch",
        "/api/v1/workspace",
        {"name": "Hijacked", "workspace_id": str(uuid.uuid4())},
    )
    assert foreign.status_code == missing.status_code == 403
    assert foreign.json() == missing.json()
    assert snapshot(tenant_a["workspace"]) == before
