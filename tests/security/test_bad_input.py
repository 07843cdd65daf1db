"""Bad input on the foundation API: always a 4xx JSON error with a stable code,
never a 500 and never an HTML page."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from keys.models import MachineKey


@pytest.fixture
def admin_key(workspace, make_key):
    _, plaintext = make_key(workspace, scopes=["workspace:admin"])
    return plaintext


@pytest.fixture
def client(admin_key, key_client):
    return key_client(admin_key)


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer wdn_abc",
        "Bearer wdn_0123456789ab_short",
        "Bearer wdn_0123456789AB_" + "x" * 43,
        "Bearer xyz_0123456789ab_" + "x" * 43,
        "Token wdn_0123456789ab_" + "x" * 43,
        "garbage",
        "Bearer wdn_0123456789ab_" + "é" * 43,
        "Bearer wdn_ünïcödé12345_" + "x" * 43,
        "Bearer " + "A" * 100_000,
        "Bearer wdn_0123456789ab_" + "x" * 10_000,
        "Bearer wdn_0123456789ab_" + "\x00" * 43,
        "Bearer wdn_0123456789ab_" + "x" * 40 + "' OR 1=1 --",
    ],
)
def test_malformed_authorization_header_is_invalid_key(db, api_error, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    api_error(client.get("/api/v1/whoami"), 401, "invalid_key")


def test_malformed_header_is_refused_even_with_a_valid_session(workspace, make_member, api_error):
    from tenants.models import Role

    client = APIClient()
    client.force_login(make_member(workspace, Role.ADMIN))
    client.credentials(HTTP_AUTHORIZATION="Bearer nonsense")
    api_error(client.get("/api/v1/whoami"), 401, "invalid_key")


def test_unknown_scope_is_validation_error_naming_it(client, api_error):
    response = client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:delete"]},
        format="json",
    )
    body = api_error(response, 400, "validation_error")
    assert "actions:delete" in str(body["error"]["detail"])


@override_settings(WARDEN_API_MAX_BODY_BYTES=1024)
def test_oversized_body_is_payload_too_large(client, api_error):
    before = MachineKey.objects.count()
    response = client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "x" * 2000, "scopes": ["actions:read"]},
        format="json",
    )
    body = api_error(response, 413, "payload_too_large")
    assert body["error"]["detail"] == {"max_bytes": 1024}
    assert MachineKey.objects.count() == before


@override_settings(WARDEN_API_MAX_BODY_BYTES=1024)
def test_oversized_body_is_refused_before_authentication(db, api_error):
    response = APIClient().post(
        "/api/v1/keys", {"reason": "test change", "name": "x" * 2000}, format="json"
    )
    api_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "raw",
    [b"{", b"{'name': 'bot'}", b"[1, 2", b"\xff\xfe", b'{"name": "bot",}', b"NaN-ish"],
)
def test_malformed_json_is_parse_error(client, api_error, raw):
    response = client.generic("POST", "/api/v1/keys", raw, content_type="application/json")
    api_error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "payload",
    [
        [],
        ["name", "bot"],
        "just a string",
        42,
        None,
        {"name": True, "scopes": ["actions:read"]},
        {"name": "bot", "scopes": {"actions:read": True}},
        {"name": "bot", "scopes": ["actions:read"], "unattended_mode": "maybe"},
        {"name": "bot", "scopes": ["actions:read"], "tool_allowlist": "crm.*"},
        {"name": "bot", "scopes": ["actions:read"], "allowed_ips": "10.0.0.0/8"},
        {"name": "bot", "scopes": ["actions:read"] * 21},
        {"name": "bot", "scopes": ["actions:read"], "rate_limit_per_minute": 1.5},
        {"name": "bot", "scopes": ["actions:read"], "expires_at": 1700000000},
    ],
)
def test_wrong_types_are_validation_errors(client, api_error, payload):
    before = MachineKey.objects.count()
    response = client.post("/api/v1/keys", payload, format="json")
    api_error(response, 400, "validation_error")
    assert MachineKey.objects.count() == before


def test_form_encoded_body_is_unsupported_media_type(client, api_error):
    response = client.post(
        "/api/v1/keys", {"reason": "test change", "name": "bot", "scopes": "actions:read"}
    )
    api_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope",
        "/api/v1/keys/not-a-uuid",
        "/api/v1/keys/",
        "/api/v1/members/123",
        "/api/v2/whoami",
        "/api/",
        "/api/v1/keys/00000000-0000-0000-0000-000000000000/explode",
    ],
)
def test_unknown_route_is_json_404(client, api_error, path):
    api_error(client.get(path), 404, "not_found")


def test_unknown_route_is_json_404_for_anonymous_callers(db, api_error):
    api_error(APIClient().post("/api/v1/nope", {}, format="json"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/whoami"),
        ("delete", "/api/v1/whoami"),
        ("put", "/api/v1/keys"),
        ("delete", "/api/v1/keys"),
        ("patch", "/api/v1/members"),
        ("get", "/api/v1/keys/00000000-0000-0000-0000-000000000000/revoke"),
    ],
)
def test_wrong_method_is_json_405(client, api_error, method, path):
    api_error(getattr(client, method)(path), 405, "method_not_allowed")


def test_unknown_member_id_is_json_404(client, api_error):
    api_error(client.get("/api/v1/members/00000000-0000-0000-0000-000000000000"), 404, "not_found")


@pytest.mark.parametrize("value", ["a" * 10_000, "💥", "../../etc"])
def test_odd_workspace_values_are_mismatch_not_500(client, api_error, value):
    api_error(client.get("/api/v1/whoami", {"workspace_id": value}), 403, "workspace_mismatch")


def test_nul_workspace_value_is_refused_like_any_nul_query_value(client, api_error):
    api_error(client.get("/api/v1/whoami", {"workspace_id": "\x00"}), 400, "validation_error")


def test_odd_workspace_header_is_mismatch_not_500(client, api_error):
    api_error(
        client.get("/api/v1/whoami", HTTP_X_WARDEN_WORKSPACE="💥" * 500), 403, "workspace_mismatch"
    )


def test_non_json_accept_header_still_gets_json_errors(db, api_error):
    response = APIClient().get("/api/v1/whoami", HTTP_ACCEPT="text/html")
    assert response.status_code in (401, 406)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] in ("not_authenticated", "not_acceptable")


def test_parser_stops_reading_at_the_limit_without_content_length(settings):
    # A chunked body carries no Content-Length, so the middleware cannot see its size;
    # the parser itself refuses to read past the limit.
    import io

    from common.api.parsers import LimitedJSONParser, PayloadTooLarge

    settings.WARDEN_API_MAX_BODY_BYTES = 1024
    with pytest.raises(PayloadTooLarge):
        LimitedJSONParser().parse(io.BytesIO(b'{"x": "' + b"y" * 2000 + b'"}'))


def test_deeply_nested_json_is_a_parse_error_not_a_500(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    body = "[" * 5000 + "]" * 5000
    response = key_client(plaintext).post(
        "/api/v1/actions", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_json_nested_beyond_the_limit_is_refused(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    params = {}
    for _ in range(80):
        params = {"a": params}
    response = key_client(plaintext).post(
        "/api/v1/actions", {"tool": "crm.lookup", "params": params}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
