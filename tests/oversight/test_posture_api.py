"""GET /api/v1/posture: audit:read for keys, view_audit for people, the credential's
workspace only, bounded queries, and a schema that tells the truth."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import Tool
from common.actor import Actor
from keys.models import MachineKey
from keys.services import key_revoke
from oversight.api.serializers import PostureSerializer
from tenants.models import Role

URL = "/api/v1/posture"
HUMAN = Actor.system("tests")


@pytest.fixture
def reader(permissive, make_key, key_client):
    _, plaintext = make_key(permissive, scopes=["audit:read"])
    return key_client(plaintext)


def test_a_key_with_audit_read_gets_its_workspaces_posture(permissive, reader):
    response = reader.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["workspace"]["slug"] == "open"
    # The reader key is a third active key: 1 of 3 unattended (7/3) instead of 1 of 2.
    assert body["score"] == 81 and body["decision"]["code"] == "deny"
    serializer = PostureSerializer(data=body)
    assert serializer.is_valid(), serializer.errors


def test_each_workspace_sees_only_its_own_posture(
    permissive, locked_down, reader, make_key, key_client
):
    _, plaintext = make_key(locked_down, scopes=["audit:read"])
    locked = key_client(plaintext).get(URL).json()
    assert locked["workspace"]["slug"] == "locked" and locked["score"] == 0
    assert "email.send" not in str(locked)
    assert reader.get(URL).json()["workspace"]["slug"] == "open"


def test_naming_another_workspace_is_refused(permissive, locked_down, reader, api_error):
    api_error(reader.get(URL, {"workspace_id": str(locked_down.pk)}), 403, "workspace_mismatch")


def test_a_key_without_audit_read_is_refused(permissive, make_key, key_client, api_error):
    _, plaintext = make_key(permissive, scopes=["actions:read", "keys:read"])
    body = api_error(key_client(plaintext).get(URL), 403, "forbidden_by_scope")
    assert body["error"]["detail"]["required_scope"] == "audit:read"


def test_revoked_and_expired_keys_are_refused(permissive, make_key, key_client, api_error):
    key, plaintext = make_key(permissive, scopes=["audit:read"])
    key_revoke(key=key, actor=HUMAN, reason="leaked")
    api_error(key_client(plaintext).get(URL), 401, "key_revoked")
    key, plaintext = make_key(
        permissive, scopes=["audit:read"], expires_at=timezone.now() + timedelta(days=1)
    )
    MachineKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    api_error(key_client(plaintext).get(URL), 401, "key_expired")


def test_no_credential_is_refused(permissive, api_error):
    from rest_framework.test import APIClient

    response = APIClient().get(URL)
    assert response.status_code in (401, 403)
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.AUDITOR])
def test_people_holding_view_audit_may_read_it(permissive, make_member, user_client, role):
    user = (
        permissive.memberships.get(role=Role.OWNER).user
        if role == Role.OWNER
        else make_member(permissive, role)
    )
    response = user_client(user, permissive).get(URL)
    assert response.status_code == 200
    assert response.json()["workspace"]["slug"] == "open"


@pytest.mark.parametrize("role", [Role.APPROVER, Role.MEMBER])
def test_people_without_view_audit_are_refused(
    permissive, make_member, user_client, api_error, role
):
    user = make_member(permissive, role)
    body = api_error(user_client(user, permissive).get(URL), 403, "forbidden_by_scope")
    assert "audit" in str(body["error"]["detail"])


def test_another_workspaces_member_cannot_name_this_one(
    permissive, locked_down, make_member, user_client, api_error
):
    stranger = make_member(locked_down, Role.AUDITOR)
    response = user_client(stranger, permissive).get(URL)
    assert response.status_code in (403, 404)
    assert "email.send" not in response.content.decode()
    own = user_client(stranger, locked_down).get(URL)
    assert own.json()["workspace"]["slug"] == "locked"


def _grow(workspace, add_tool, add_traffic, make_key, n):
    key, _ = make_key(workspace, scopes=["actions:read"])
    for i in range(n):
        tool = add_tool(workspace, f"bulk.t{i}", data_classes=["pii"] if i % 2 else [])
        add_traffic(workspace, key, tool, 2)
        make_key(workspace, scopes=["actions:read"])


def test_query_count_does_not_grow_with_the_workspace(
    permissive, reader, add_tool, add_traffic, make_key, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12) as small:
        assert reader.get(URL).status_code == 200
    _grow(permissive, add_tool, add_traffic, make_key, 30)
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = reader.get(URL).json()
    assert body["sensitivity"]["enabled_tools"] == 34
    assert Tool.objects.filter(workspace=permissive).count() == 34
