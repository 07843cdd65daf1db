"""The API's contract beyond the schema file: unknown body fields are refused, unknown
paths answer JSON 404 for every method (before CSRF), the human login works and is
throttled, and the docs are served without any CDN."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from rest_framework.test import APIClient

from approvals.asking import action_submit
from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from common.actor import Actor
from keys.models import MachineKey
from tenants.login_guard import LOCKOUT_MESSAGE
from tenants.models import Role
from tests.conftest import SYSTEM

UNKNOWN_PATHS = ["/api/v1/actions/", "/api/v1/nope", "/api/v2/actions", "/api/whatever/x"]


@pytest.fixture
def admin_key(workspace, make_key):
    return make_key(workspace, scopes=["workspace:admin"])[1]


# --- unknown fields ----------------------------------------------------------------


def test_unknown_field_is_refused_naming_it_and_nothing_is_created(
    workspace, admin_key, key_client, api_error
):
    before = MachineKey.objects.count()
    response = key_client(admin_key).post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"], "tools": ["crm.*"]},
        format="json",
    )
    body = api_error(response, 400, "validation_error")
    assert body["error"]["detail"] == {"tools": ["Unknown field."]}
    assert MachineKey.objects.count() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/actions", {"tool": "crm.lookup", "colour": "red"}),
        ("patch", "/api/v1/workspace", {"name": "x", "writes": True}),
        ("post", "/api/v1/members", {"email": "a@b.test", "role": "member", "admin": True}),
        ("post", "/api/v1/tools", {"name": "t.x", "level": "read", "lvl": "write"}),
    ],
)
def test_every_write_refuses_unknown_fields(
    workspace, make_key, key_client, api_error, method, path, body
):
    scopes = ["actions:read"] if path == "/api/v1/actions" else ["workspace:admin"]
    client = key_client(make_key(workspace, scopes=scopes)[1])
    response = getattr(client, method)(path, body, format="json")
    unknown = (set(body) - {"tool", "name", "level", "email", "role"}).pop()
    assert api_error(response, 400, "validation_error")["error"]["detail"] == {
        unknown: ["Unknown field."]
    }


def test_the_matching_workspace_field_is_still_accepted(workspace, admin_key, key_client):
    response = key_client(admin_key).post(
        "/api/v1/keys",
        {
            "reason": "test change",
            "name": "bot",
            "scopes": ["actions:read"],
            "workspace_id": str(workspace.pk),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_verdicts_refuse_unknown_fields_and_decide_nothing(
    make_workspace, make_key, make_member, user_client, api_error
):
    workspace = make_workspace(writes_enabled=True, mode="live")
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            name="email.send",
            level="external",
            confirmation="always",
        )
    key = make_key(workspace, scopes=["actions:external"])[0]
    outcome = action_submit(key=key, tool_name="email.send", params={}, actor=Actor.for_key(key))
    assert outcome.pending
    confirmation = ConfirmationRequest.objects.get(action_request=outcome.action)
    client = user_client(make_member(workspace, Role.ADMIN), workspace)
    for verdict in ("approve", "deny"):
        response = client.post(
            f"/api/v1/approvals/{confirmation.pk}/{verdict}",
            {"reason": "ok", "verdict": "approve"},
            format="json",
        )
        body = api_error(response, 400, "validation_error")
        assert body["error"]["detail"] == {"verdict": ["Unknown field."]}
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"


# --- unknown paths -------------------------------------------------------------------


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
def test_unknown_api_paths_answer_json_404_for_every_method(path, method, api_error):
    client = Client(enforce_csrf_checks=True)
    api_error(getattr(client, method)(path), 404, "not_found")


def test_unknown_path_is_404_even_for_a_logged_in_session_without_csrf(
    workspace, make_member, api_error
):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_member(workspace, Role.ADMIN))
    api_error(client.post("/api/v1/actions/", {}, format="json"), 404, "not_found")
    # A real route still demands the CSRF token.
    api_error(
        client.post("/api/v1/keys", {"reason": "test change"}, format="json"),
        403,
        "permission_denied",
    )


# --- human login ----------------------------------------------------------------------


@pytest.fixture
def human(workspace, make_member):
    return make_member(workspace, Role.ADMIN, email="ann@example.test")


def _login(client, email="ann@example.test", password="pw-for-tests-1"):
    return client.post("/api/v1/session", {"email": email, "password": password}, format="json")


def test_login_returns_session_cookie_and_csrf_token_that_work(workspace, human):
    client = APIClient(enforce_csrf_checks=True)
    response = _login(client, email="ANN@example.test")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["email"] == "ann@example.test"
    assert body["workspaces"] == [{"slug": workspace.slug, "name": workspace.name, "role": "admin"}]
    assert "sessionid" in response.cookies
    assert "pw-for-tests-1" not in response.content.decode()
    created = client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
        HTTP_X_CSRFTOKEN=body["csrf_token"],
    )
    assert created.status_code == 201, created.json()
    # Without the token the same session is refused.
    assert (
        client.post(
            "/api/v1/keys", {"reason": "test change", "name": "b2", "scopes": []}, format="json"
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("email", "password"),
    [("ann@example.test", "wrong"), ("nobody@example.test", "pw-for-tests-1")],
)
def test_wrong_credentials_answer_alike(human, email, password, api_error):
    body = api_error(_login(APIClient(), email, password), 401, "invalid_credentials")
    assert body["error"]["message"] == "Wrong email or password."


def test_inactive_user_cannot_log_in(human, api_error):
    human.is_active = False
    human.save()
    api_error(_login(APIClient()), 401, "invalid_credentials")


def test_login_refuses_unknown_fields_and_bad_input(human, api_error):
    response = APIClient().post(
        "/api/v1/session",
        {"email": "ann@example.test", "password": "pw-for-tests-1", "remember": True},
        format="json",
    )
    api_error(response, 400, "validation_error")
    api_error(APIClient().post("/api/v1/session", [1, 2], format="json"), 400, "validation_error")
    form = APIClient().post("/api/v1/session", {"email": "ann@example.test", "password": "x"})
    api_error(form, 415, "unsupported_media_type")


def test_failed_logins_are_limited_per_account_like_the_admin(human, settings, api_error):
    settings.WARDEN_LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    client = APIClient()
    for _ in range(3):
        api_error(_login(client, password="wrong"), 401, "invalid_credentials")
    response = _login(client)  # the right password, but the budget is spent
    api_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1
    # Another address guessing the same account is held too; the admin form as well.
    api_error(_login(APIClient(REMOTE_ADDR="10.9.9.9")), 429, "rate_limited")
    admin = Client().post(
        "/admin/login/",
        {"reason": "test change", "username": "ann@example.test", "password": "pw-for-tests-1"},
    )
    assert LOCKOUT_MESSAGE in admin.content.decode()


def test_failed_logins_are_limited_per_address(human, make_user, settings, api_error):
    settings.WARDEN_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    client = APIClient(REMOTE_ADDR="10.1.1.1")
    for n in range(2):
        api_error(_login(client, email=f"x{n}@example.test"), 401, "invalid_credentials")
    api_error(_login(client), 429, "rate_limited")
    assert _login(APIClient(REMOTE_ADDR="10.1.1.2")).status_code == 200


def test_logout_needs_csrf_and_ends_the_session(human, api_error):
    client = APIClient(enforce_csrf_checks=True)
    token = _login(client).json()["csrf_token"]
    api_error(client.delete("/api/v1/session"), 403, "permission_denied")
    assert client.delete("/api/v1/session", HTTP_X_CSRFTOKEN=token).status_code == 204
    api_error(client.get("/api/v1/whoami"), 401, "not_authenticated")


def test_a_key_cannot_log_out_or_log_in_with_its_bearer(workspace, admin_key, api_error):
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    api_error(client.delete("/api/v1/session"), 401, "not_authenticated")


# --- docs ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_load_from_installed_static_files_not_a_cdn(path):
    response = Client().get(path)
    assert response.status_code == 200
    page = response.content.decode()
    assert not re.search(r"(src|href)=\"https?://", page), page
    assets = re.findall(r"(?:src|href)=\"/static/([^\"?]+)", page)
    assert any("drf_spectacular_sidecar" in a for a in assets), page
    for asset in assets:
        assert finders.find(asset), asset


def test_login_lists_only_the_users_own_workspaces(workspace, other_workspace, human):
    body = _login(APIClient()).json()
    assert [w["slug"] for w in body["workspaces"]] == [workspace.slug]
    assert other_workspace.slug not in str(body)


def test_the_password_never_reaches_logs_or_answers(human, caplog):
    caplog.set_level("DEBUG")
    for password in ("pw-for-tests-1", "wrong-Secret-9"):
        response = _login(APIClient(), password=password)
        assert password not in response.content.decode()
    assert "pw-for-tests-1" not in caplog.text and "wrong-Secret-9" not in caplog.text


# --- typed filters at their edges (found by schemathesis on PostgreSQL) ---------------


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"since": "1999-09-29T05:50:24.4+16:42"}, 200),  # ISO 8601 allows it; PostgreSQL not
        ({"since": "1512-09-29T05:50:24.4+16:42"}, 400),  # outside the supported range
        ({"until": "2026-01-01T00:00:00-23:59"}, 200),
        ({"since": "0001-01-01T00:00:00+05:00"}, 400),  # before year 1 in UTC
        ({"page_size": "500", "cursor": "not-a-cursor"}, 404),
    ],
)
def test_audit_filters_at_their_edges_never_fail(workspace, make_key, key_client, params, status):
    client = key_client(make_key(workspace, scopes=["audit:read"])[1])
    for path in ("/api/v1/audit", "/api/v1/audit/exceptions", "/api/v1/audit/versions"):
        response = client.get(path, params)
        assert response.status_code == status, (path, response.json())


def test_policy_version_beyond_the_column_finds_nothing(workspace, make_key, key_client):
    client = key_client(make_key(workspace, scopes=["audit:read"])[1])
    response = client.get("/api/v1/audit/versions", {"policy_version": str(2**63)})
    assert response.status_code in (200, 400), response.json()
