"""The workspace comes from the credential, never from the client (DESIGN.md 2)."""

import uuid

import pytest
from django.middleware.csrf import _get_new_csrf_string
from rest_framework.test import APIClient

from keys.models import MachineKey
from tenants.models import Role


@pytest.fixture
def keys_client(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["keys:read", "keys:write"])
    return key_client(plaintext)


@pytest.mark.parametrize("field", ["workspace_id", "workspace"])
def test_query_workspace_differing_from_the_keys_is_mismatch(
    keys_client, other_workspace, api_error, field
):
    response = keys_client.get(f"/api/v1/keys?{field}={other_workspace.pk}")
    api_error(response, 403, "workspace_mismatch")


@pytest.mark.parametrize("field", ["workspace_id", "workspace"])
def test_body_workspace_differing_from_the_keys_is_mismatch_and_writes_nothing(
    keys_client, other_workspace, api_error, field
):
    before = MachineKey.objects.count()
    response = keys_client.post(
        "/api/v1/keys",
        {
            "reason": "test change",
            "name": "bot",
            "scopes": ["actions:read"],
            field: other_workspace.slug,
        },
        format="json",
    )
    api_error(response, 403, "workspace_mismatch")
    assert MachineKey.objects.count() == before


def test_unknown_workspace_value_is_mismatch_too(keys_client, api_error):
    api_error(
        keys_client.get(f"/api/v1/keys?workspace_id={uuid.uuid4()}"), 403, "workspace_mismatch"
    )


@pytest.mark.parametrize("value", ["id", "slug"])
def test_matching_workspace_is_ignored(workspace, keys_client, value):
    sent = str(workspace.pk) if value == "id" else workspace.slug
    assert keys_client.get(f"/api/v1/keys?workspace_id={sent}").status_code == 200
    response = keys_client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"], "workspace": sent},
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_key_with_a_mismatching_workspace_header_is_refused(
    keys_client, other_workspace, api_error
):
    response = keys_client.get("/api/v1/whoami", HTTP_X_WARDEN_WORKSPACE=other_workspace.slug)
    api_error(response, 403, "workspace_mismatch")


def test_human_with_one_membership_needs_no_header(workspace, make_member, user_client):
    user = make_member(workspace, Role.ADMIN)
    body = user_client(user).get("/api/v1/whoami").json()
    assert body["workspace"]["slug"] == workspace.slug
    assert body["principal"] == "user"


def test_human_with_several_memberships_must_name_one(
    workspace, other_workspace, make_member, user_client, api_error, operator_seeded
):
    user = make_member(workspace, Role.ADMIN)
    from approvals.guard import operator_seeding
    from common.actor import Actor
    from tenants.services import membership_add

    with operator_seeding():  # set-up: adding an admin is governed
        membership_add(
            reason="test set-up",
            workspace=other_workspace,
            user=user,
            role=Role.ADMIN,
            actor=Actor.system("t"),
        )
    api_error(user_client(user).get("/api/v1/whoami"), 400, "workspace_required")
    for chosen in (workspace, other_workspace):
        body = user_client(user, chosen).get("/api/v1/whoami").json()
        assert body["workspace"]["slug"] == chosen.slug


def test_human_naming_a_workspace_they_are_not_in_is_mismatch(
    workspace, other_workspace, make_member, user_client, api_error
):
    user = make_member(workspace, Role.ADMIN)
    api_error(user_client(user, other_workspace).get("/api/v1/whoami"), 403, "workspace_mismatch")


def test_human_with_no_membership_is_refused(make_user, user_client, api_error):
    api_error(user_client(make_user()).get("/api/v1/whoami"), 403, "permission_denied")


def test_anonymous_caller_is_not_authenticated(db, api_error):
    api_error(APIClient().get("/api/v1/whoami"), 401, "not_authenticated")


# --- CSRF on session auth ------------------------------------------------------------


@pytest.fixture
def csrf_session(workspace, make_member):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_member(workspace, Role.ADMIN))
    return client


def test_session_post_without_csrf_token_is_refused(csrf_session, api_error):
    before = MachineKey.objects.count()
    response = csrf_session.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    )
    api_error(response, 403, "permission_denied")
    assert MachineKey.objects.count() == before


def test_session_delete_without_csrf_token_is_refused(workspace, csrf_session, api_error):
    from tenants.models import Membership

    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER)
    api_error(
        csrf_session.delete(
            f"/api/v1/members/{owner.pk}", {"reason": "test change"}, format="json"
        ),
        403,
        "permission_denied",
    )


def test_session_post_with_csrf_token_succeeds(csrf_session):
    token = _get_new_csrf_string()
    csrf_session.cookies["csrftoken"] = token
    response = csrf_session.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 201, response.json()


def test_session_get_needs_no_csrf_token(csrf_session):
    assert csrf_session.get("/api/v1/keys").status_code == 200


def test_bearer_key_needs_no_csrf_token(workspace, make_key):
    _, plaintext = make_key(workspace, scopes=["keys:write"])
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    response = client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    )
    assert response.status_code == 201
