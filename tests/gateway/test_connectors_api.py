"""/api/v1/connectors: CRUD through the API, credentials write-only, workspace-scoped."""

import logging

import pytest
from django.db import connection

from approvals.models import ActionRequest
from audit.models import AuditEntry, VersionLog
from gateway.models import Connector
from tenants.models import Role
from tests.gateway.conftest import SECRET

pytestmark = pytest.mark.django_db


def _create(client, **body):
    payload = {
        "reason": "test change",
        "name": "crm",
        "kind": "mcp",
        "url": "http://127.0.0.1:9/mcp",
        "headers": {"Authorization": SECRET},
        **body,
    }
    return client.post("/api/v1/connectors", payload, format="json")


@pytest.fixture
def admin_client(gw_workspace, gw_admin, user_client):
    return user_client(gw_admin, gw_workspace)


@pytest.fixture
def approved(gw_workspace, make_member, approve):
    """A governed change (202) approved by a second admin; answers as the API then reads."""
    second = make_member(gw_workspace, Role.ADMIN)

    def apply(response):
        assert response.status_code == 202, response.json()
        action = ActionRequest.objects.get(pk=response.json()["id"])
        assert approve(second, gw_workspace, action.confirmation.pk).status_code == 200
        action.refresh_from_db()
        return action.result_output["target_id"]

    return apply


@pytest.fixture
def create(admin_client, approved):
    def make(**body):
        pk = approved(_create(admin_client, **body))
        return admin_client.get(f"/api/v1/connectors/{pk}")

    return make


def test_create_answers_header_names_only(admin_client, create):
    proposed = _create(admin_client)
    assert proposed.status_code == 202 and SECRET not in proposed.content.decode()
    assert proposed.json()["governed_operations"] == ["warden.connector.create"]
    response = create(name="crm2")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["headers"] == ["Authorization"]
    assert body["name"] == "crm2" and body["kind"] == "mcp" and body["enabled"] is True
    assert SECRET not in response.content.decode()


def test_secret_never_in_reads_audit_or_logs(admin_client, create, approved, caplog):
    caplog.set_level(logging.DEBUG)
    created = create().json()
    listed = admin_client.get("/api/v1/connectors")
    detail = admin_client.get(f"/api/v1/connectors/{created['id']}")
    patched = admin_client.patch(
        f"/api/v1/connectors/{created['id']}",
        {"reason": "test change", "headers": {"Authorization": SECRET + "-2"}},
        format="json",
    )
    assert patched.status_code == 202
    approved(patched)
    for response in (listed, detail, patched):
        assert "sk-live" not in response.content.decode()
    assert detail.json()["headers"] == ["Authorization"]
    for entry in AuditEntry.objects.all():
        assert "sk-live" not in str(entry.input) + entry.rationale
    for log in VersionLog.objects.all():
        assert "sk-live" not in str(log.before) + str(log.after)
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert "connector.created" in actions and "connector.updated" in actions
    assert "sk-live" not in caplog.text
    assert "sk-live" not in repr(Connector.objects.get()) + str(Connector.objects.get())


def test_credentials_are_encrypted_at_rest(create):
    create()
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers_encrypted, header_names FROM gateway_connector")
        (stored, names) = cursor.fetchone()
    assert stored and "sk-live" not in stored and "Authorization" not in stored
    assert "Authorization" in str(names)


def test_patch_replaces_headers_and_records_it(admin_client, create, approved):
    created = create().json()
    response = admin_client.patch(
        f"/api/v1/connectors/{created['id']}",
        {"reason": "test change", "headers": {"X-Api-Key": "k" * 20}},
        format="json",
    )
    approved(response)
    assert admin_client.get(f"/api/v1/connectors/{created['id']}").json()["headers"] == [
        "X-Api-Key"
    ]
    after = VersionLog.objects.filter(target_type="connector").latest("created_at").after
    assert after["headers_replaced"] is True and after["header_names"] == ["X-Api-Key"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Has.Dots"}, "name"),
        ({"kind": "ftp"}, "kind"),
        ({"url": "http://evil.example.com/mcp"}, "url"),
        ({"headers": {"Host": "x"}}, "headers"),
        ({"headers": {"Bad Name": "x"}}, "headers"),
        ({"headers": {"X-Key": "line\r\nInjected: 1"}}, "headers"),
        ({"headers": {"Authorization": "env:SECRET_KEY"}}, "headers"),
        ({"declared_tools": [{"name": "Bad Name"}]}, "declared_tools"),
    ],
)
def test_bad_input_is_a_validation_error(admin_client, api_error, body, field):
    result = api_error(_create(admin_client, **body), 400, "validation_error")
    assert field in result["error"]["detail"]
    assert "sk-live" not in str(result)
    assert not Connector.objects.exists()


def test_duplicate_name_is_a_conflict(admin_client, create, api_error):
    create()
    api_error(_create(admin_client), 409, "conflict")


def test_delete_removes_connector_and_audits(admin_client, create):
    created = create().json()
    assert (
        admin_client.delete(
            f"/api/v1/connectors/{created['id']}", {"reason": "test change"}, format="json"
        ).status_code
        == 204
    )
    assert not Connector.objects.exists()
    assert AuditEntry.objects.filter(action="connector.deleted").exists()


def test_key_scopes(gw_workspace, make_key, key_client, api_error, approved):
    _, reader = make_key(gw_workspace, scopes=["connectors:read"])
    _, writer = make_key(gw_workspace, scopes=["connectors:write", "connectors:read"])
    _, agent = make_key(gw_workspace, scopes=["actions:read"])
    api_error(_create(key_client(reader)), 403, "forbidden_by_scope")
    approved(_create(key_client(writer)))
    assert key_client(reader).get("/api/v1/connectors").json()["results"][0]["name"] == "crm"
    api_error(key_client(agent).get("/api/v1/connectors"), 403, "forbidden_by_scope")


def test_member_without_manage_tools_is_refused(gw_workspace, make_member, user_client, api_error):
    member = make_member(gw_workspace, Role.MEMBER)
    api_error(_create(user_client(member, gw_workspace)), 403, "forbidden_by_scope")


def test_revoked_key_is_refused(gw_workspace, make_key, key_client, api_error):
    from common.actor import Actor
    from keys.services import key_revoke

    key, plaintext = make_key(gw_workspace, scopes=["connectors:read"])
    key_revoke(key=key, actor=Actor.system("tests"), reason="gone")
    api_error(key_client(plaintext).get("/api/v1/connectors"), 401, "key_revoked")


def test_other_workspace_sees_nothing(
    create, other_workspace, make_key, make_member, key_client, user_client, api_error
):
    created = create().json()
    _, foreign_key = make_key(other_workspace, scopes=["workspace:admin"])
    foreign_admin = make_member(other_workspace, Role.ADMIN)
    for client in (key_client(foreign_key), user_client(foreign_admin, other_workspace)):
        assert client.get("/api/v1/connectors").json()["results"] == []
        url = f"/api/v1/connectors/{created['id']}"
        api_error(client.get(url), 404, "not_found")
        api_error(
            client.patch(url, {"reason": "test change", "enabled": False}, format="json"),
            404,
            "not_found",
        )
        api_error(client.delete(url, {"reason": "test change"}, format="json"), 404, "not_found")
        api_error(client.post(url + "/sync"), 404, "not_found")
    assert Connector.objects.get().enabled is True
