"""Hostile but well-formed input never yields a 500 (issue 15.4): non-finite numbers
in JSON, extreme dates, NUL and unpaired surrogates in query strings and admin
filters. Regression tests for each reported case, then a fuzz over every API query
parameter (from the OpenAPI schema) and every admin changelist filter and search."""

import uuid
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from approvals.models import ActionRequest
from audit.models import AuditEntry
from keys.models import MachineKey
from tenants.models import Role

NON_FINITE = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "[1, 1e400]", '{"b": -1e999}']
EXTREME_DATES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01",
    "9999-12-31",
    "1899-12-31T23:59:59Z",
]
# Raw (already percent-encoded) query values.
HOSTILE_QUERY_VALUES = [
    "a%00b",
    quote("\ud800".encode("utf-8", "surrogatepass")),  # arrives as U+FFFD
    "%ff%fe",
    quote(EXTREME_DATES[0]),
    quote(EXTREME_DATES[1]),
    "1e400",
    "x" * 5000,
    quote("' OR 1=1 --"),
]
# A session sees the same views: fewer values, one of each kind.
SESSION_QUERY_VALUES = ["a%00b", quote(EXTREME_DATES[0]), "x" * 5000]
# The admin renders a full page per request: a smaller set, one of each kind.
ADMIN_VALUES = ["%00", "a%00b", quote(EXTREME_DATES[0]), "1e400", "x" * 5000, "%ff%fe"]
AUDIT_LISTS = ["/api/v1/audit", "/api/v1/audit/exceptions", "/api/v1/audit/versions"]
AUDIT_FILTERS = {
    "/api/v1/audit": ["actor_prefix", "actor", "action", "tool", "decision", "request_id"],
    "/api/v1/audit/exceptions": ["kind", "severity", "subject", "resolved"],
    "/api/v1/audit/versions": ["target_type", "target_id", "actor", "policy_version"],
}


@pytest.fixture
def live(make_workspace):
    return make_workspace(writes_enabled=True, mode="live")


@pytest.fixture
def admin_client(live, make_key, key_client):
    _, plaintext = make_key(live, scopes=["workspace:admin"], rate_limit_per_minute=100_000)
    return key_client(plaintext)


def post_raw(client, path, raw, method="POST"):
    return client.generic(method, path, raw.encode(), content_type="application/json")


# --- non-finite numbers ----------------------------------------------------------


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_number_in_action_params_is_a_validation_error(admin_client, api_error, number):
    before = (ActionRequest.objects.count(), AuditEntry.objects.count())
    response = post_raw(
        admin_client, "/api/v1/actions", f'{{"tool": "x", "params": {{"a": {number}}}}}'
    )
    body = api_error(response, 400, "validation_error")
    assert "finite" in str(body["error"]["detail"])
    assert (ActionRequest.objects.count(), AuditEntry.objects.count()) == before


@pytest.mark.parametrize("number", ["1e400", "NaN", "-Infinity"])
def test_non_finite_number_anywhere_in_a_body_is_refused(admin_client, api_error, number):
    before = MachineKey.objects.count()
    raw = f'{{"name": "bot", "scopes": ["actions:read"], "rate_limit_per_minute": {number}}}'
    api_error(post_raw(admin_client, "/api/v1/keys", raw), 400, "validation_error")
    api_error(
        post_raw(admin_client, "/api/v1/workspace", f'{{"x": [{number}]}}', "PATCH"),
        400,
        "validation_error",
    )
    assert MachineKey.objects.count() == before


def test_large_but_finite_numbers_are_still_accepted_as_json(admin_client):
    response = post_raw(
        admin_client,
        "/api/v1/actions",
        '{"tool": "x", "params": {"a": 1e300, "b": 123456789012345678901234567890}}',
    )
    assert response.status_code < 500
    assert response.json()["error"]["code"] != "validation_error"


# --- dates -----------------------------------------------------------------------


@pytest.mark.parametrize("path", AUDIT_LISTS)
@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("value", EXTREME_DATES)
def test_dates_outside_the_bounds_are_validation_errors(
    admin_client, api_error, path, field, value
):
    body = api_error(admin_client.get(path, {field: value}), 400, "validation_error")
    assert field in body["error"]["detail"]


@pytest.mark.parametrize(
    "value", ["1900-01-01", "9998-12-31T23:59:59-00:00", "2026-11-23T12:00:00+14:00"]
)
def test_dates_inside_the_bounds_are_accepted(admin_client, value):
    for path in AUDIT_LISTS:
        assert admin_client.get(path, {"since": value, "until": value}).status_code == 200


def test_audit_export_command_refuses_extreme_dates(live):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("audit_export", live.slug, since="0001-01-01T00:00:00+14:00", stdout=None)


# --- NUL and unpaired surrogates in query strings ----------------------------------


@pytest.mark.parametrize("path", AUDIT_LISTS)
def test_nul_in_any_audit_filter_is_a_validation_error(admin_client, api_error, path):
    for field in [*AUDIT_FILTERS[path], "since", "until", "cursor", "page_size"]:
        body = api_error(admin_client.get(f"{path}?{field}=a%00b"), 400, "validation_error")
        assert "query" in body["error"]["detail"]


def test_nul_in_a_parameter_name_is_refused(admin_client, api_error):
    api_error(admin_client.get("/api/v1/tools?a%00=1"), 400, "validation_error")


def test_nul_is_refused_before_authentication(db, api_error):
    api_error(Client().get("/api/v1/audit?actor=%00"), 400, "validation_error")


def test_admin_changelist_drops_nul_from_filters_and_search(live, admin_client_for_owner):
    client, _ = admin_client_for_owner
    response = client.get("/admin/audit/auditentry/?q=ab%00c&tool=%00&decision=a%00")
    assert response.status_code == 200
    assert response.context["cl"].query == "abc"


@pytest.fixture
def admin_client_for_owner(live):
    owner = live.memberships.get(role=Role.OWNER).user
    client = Client()
    client.force_login(owner)
    return client, owner


# --- fuzz: every API query parameter ---------------------------------------------


def _api_get_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        declared = [
            p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"
        ]
        yield path, declared


@pytest.mark.slow
def test_fuzz_every_api_query_parameter_never_answers_5xx(live, make_key, make_member, user_client):
    _, plaintext = make_key(live, scopes=["workspace:admin"], rate_limit_per_minute=100_000)
    key = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    session = user_client(make_member(live, Role.ADMIN), live)
    undeclared = ["cursor", "page_size", "workspace_id", "workspace"]
    seen = 0
    for template, declared in _api_get_operations():
        path = template.replace("{id}", str(uuid.uuid4()))
        for name in [*declared, *undeclared]:
            attempts = [(key, v) for v in HOSTILE_QUERY_VALUES]
            attempts += [(session, v) for v in SESSION_QUERY_VALUES]
            for client, value in attempts:
                response = client.get(f"{path}?{name}={value}")
                seen += 1
                assert response.status_code < 500, (path, name, value, response.content[:300])
                assert response["Content-Type"].startswith("application/json"), path
    assert seen > 800


# --- fuzz: every JSON body field -------------------------------------------------


HOSTILE_JSON_VALUES = [
    "1e400",
    "NaN",
    '"a\\u0000b"',
    '"\\ud800"',
    '"' + "x" * 20_000 + '"',
    "null",
    '"9999-12-31T23:59:59-14:00"',
]
SESSION_JSON_VALUES = ["1e400", '"a\\u0000b"', '"' + "x" * 20_000 + '"']


def _api_body_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref")
            if not ref:
                continue
            fields = list(components[ref.rsplit("/", 1)[1]].get("properties", {}))
            yield method.upper(), path, fields


@pytest.mark.slow
def test_fuzz_every_api_body_field_never_answers_5xx(live, make_key, make_member, user_client):
    _, plaintext = make_key(live, scopes=["workspace:admin"], rate_limit_per_minute=100_000)
    key = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    session = user_client(make_member(live, Role.ADMIN), live)
    targets = {
        "/api/v1/keys/{id}": str(MachineKey.objects.filter(workspace=live).first().pk),
    }
    seen = 0
    for method, template, fields in _api_body_operations():
        path = template.replace("{id}", targets.get(template, str(uuid.uuid4())))
        for field in [*fields, "workspace_id"]:
            attempts = [(key, v) for v in HOSTILE_JSON_VALUES]
            attempts += [(session, v) for v in SESSION_JSON_VALUES]
            for client, value in attempts:
                raw = f'{{"{field}": {value}}}'
                response = client.generic(
                    method, path, raw.encode(), content_type="application/json"
                )
                seen += 1
                assert response.status_code < 500, (
                    method,
                    path,
                    field,
                    value[:40],
                    response.content[:300],
                )
    assert seen > 500


# --- fuzz: every admin changelist filter and search ---------------------------------


# The admin renders a whole page per request: two hostile values per parameter (NUL in
# a long numeric string, an extreme date), then the date drill-down's own extremes.
ADMIN_VALUES = ["a%00" + "9" * 2000, quote(EXTREME_DATES[0])]
DRILL_DOWNS = [
    "year=9999",
    "year=9999&{f}__month=12",
    "year=9999&{f}__month=12&{f}__day=31",
    "year=0",
    "year=1&{f}__month=1&{f}__day=1",
    "year=2026&{f}__month=2&{f}__day=30",
]


def _changelist_params(model_admin, user):
    request = RequestFactory().get("/")
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    names = {"q", "o", "p", "_facets"}
    for spec in changelist.filter_specs:
        names.update(spec.expected_parameters())
    return sorted(names)


@pytest.mark.slow
def test_fuzz_every_admin_changelist_filter_and_search_never_answers_5xx(
    live, make_key, django_user_model
):
    make_key(live)
    superuser = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client = Client()
    client.force_login(superuser)
    seen = 0
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        queries = [
            f"{name}={value}"
            for name in _changelist_params(model_admin, superuser)
            for value in ADMIN_VALUES
        ]
        if model_admin.date_hierarchy:
            field = model_admin.date_hierarchy
            queries += [f"{field}__" + d.format(f=field) for d in DRILL_DOWNS]
        for query in queries:
            response = client.get(f"{url}?{query}")
            seen += 1
            assert response.status_code in (200, 302), (url, query[:80], response.status_code)
    assert seen > 250


def test_date_drill_down_past_year_9998_goes_back_to_the_list(live, admin_client_for_owner):
    client, _ = admin_client_for_owner
    for query in ("created_at__year=9999", "created_at__year=9999&created_at__month=12"):
        response = client.get(f"/admin/audit/auditentry/?{query}")
        assert response.status_code == 302 and response["Location"].endswith("?e=1")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/approvals/confirmationrequest/?workspace=a%00&page=1e400",
        "/admin/approvals/confirmationrequest/?page=" + "9" * 5000,
        "/admin/audit/auditentry/verify/?workspace=%00",
        "/admin/audit/auditentry/privacy-summary/?workspace=%00",
    ],
)
def test_custom_admin_pages_survive_hostile_query_strings(live, admin_client_for_owner, url):
    client, _ = admin_client_for_owner
    assert client.get(url).status_code in (200, 302, 404)
