"""The OpenAPI schema states what the server does: read as a client would, from
/api/schema/. (schemathesis and the generated client prove it against live answers;
these pin the promises a reader relies on.)"""

import pytest
from django.core.management import call_command
from django.test import Client

from common.errors import ERROR_STATUS

ERROR_REF = "#/components/schemas/Error"
KEY_ONLY = {"actions_ask", "actions_get", "actions_report_result"}
HUMAN_ONLY = {
    "approvals_list",
    "personal_data_erase",
    "approvals_approve",
    "approvals_deny",
    "session_delete",
    "keys_claim",
    "audit_exceptions_resolve",
    "audit_exception_attachments_list",
    "audit_exception_attachments_add",
    "audit_version_attachments_list",
    "audit_version_attachments_add",
    "invitations_list",
    "invitations_accept",
    "invitations_decline",
}
# Governed operations whose confirmed re-call carries the token in the body.
RECALLED = {
    ("patch", "/api/v1/workspace"),
    ("delete", "/api/v1/workspace"),
    ("post", "/api/v1/keys"),
    ("patch", "/api/v1/members/{id}"),
    ("delete", "/api/v1/members/{id}"),
}
GOVERNED = RECALLED | {
    ("post", "/api/v1/members"),
    ("post", "/api/v1/tools"),
    ("patch", "/api/v1/tools/{id}"),
}


@pytest.fixture
def schema(db):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_generation_is_clean_and_valid():
    # Fails on any drf-spectacular warning and validates against the OpenAPI spec.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", "/dev/null")


def test_readable_operation_ids(schema):
    ids = {op["operationId"] for _, _, op in operations(schema)}
    assert {
        "actions_ask",
        "actions_get",
        "actions_report_result",
        "tools_list",
        "tools_get",
        "tools_create",
        "tools_update",
        "tools_delete",
        "approvals_list",
        "approvals_approve",
        "approvals_deny",
        "audit_list",
        "whoami_get",
        "keys_list",
        "keys_create",
        "session_create",
        "session_delete",
    } <= ids
    assert not [i for i in ids if i.endswith(("_retrieve", "_partial_update", "_destroy"))]


def test_every_error_status_carries_the_error_component(schema):
    for path, method, operation in operations(schema):
        errors = {s for s in operation["responses"] if s[0] in "45"}
        for status in errors:
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": ERROR_REF}, (method, path, status)
        if operation.get("security"):
            assert {"400", "401", "403", "404", "429"} <= errors, (method, path)
        if "requestBody" in operation:
            assert {"413", "415"} <= errors, (method, path)
        if "202" in operation["responses"]:
            assert {"409", "410"} <= errors, (method, path)


def test_error_code_is_an_open_string_listing_the_known_codes(schema):
    code = schema["components"]["schemas"]["ErrorBody"]["properties"]["code"]
    assert code["type"] == "string" and "enum" not in code
    for known in ERROR_STATUS:
        assert f"`{known}`" in code["description"], known


def test_security_follows_who_may_call(schema):
    for path, method, operation in operations(schema):
        schemes = [set(requirement) for requirement in operation.get("security", [])]
        if operation["operationId"] in KEY_ONLY:
            assert schemes == [{"machineKey"}], path
        elif operation["operationId"] in HUMAN_ONLY:
            assert schemes == [{"cookieAuth", "csrfToken"}] or schemes == [{"cookieAuth"}], path
        elif operation["operationId"] == "session_create":
            assert not any(schemes), path
        else:
            session = {"cookieAuth", "csrfToken"} if method != "get" else {"cookieAuth"}
            assert schemes == [{"machineKey"}, session], (method, path)


def test_governed_operations_declare_202_with_the_confirmation_body(schema):
    for method, path in GOVERNED:
        operation = schema["paths"][path][method]
        accepted = operation["responses"]["202"]["content"]["application/json"]["schema"]
        confirmation = {"$ref": "#/components/schemas/ActionConfirmation"}
        if "$ref" in accepted and accepted != confirmation:  # e.g. "confirm or invited"
            accepted = schema["components"]["schemas"][accepted["$ref"].rsplit("/", 1)[1]]
            assert confirmation in accepted["oneOf"], (method, path)
        else:
            assert accepted == confirmation, (method, path)
    for method, path in RECALLED:
        operation = schema["paths"][path][method]
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        fields = schema["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]
        assert {"confirmed", "confirmation_token"} <= set(fields), (method, path)


def test_lists_declare_their_envelopes_and_the_audit_its_cursor(schema):
    lists = ("/api/v1/tools", "/api/v1/approvals", "/api/v1/keys", "/api/v1/members")
    for path in (*lists, "/api/v1/invitations"):
        ref = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        component = schema["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[1]]
        assert component["required"] == ["results"], path
        assert component["properties"]["results"]["type"] == "array", path
    audit = schema["paths"]["/api/v1/audit"]["get"]
    params = {p["name"]: p["schema"] for p in audit["parameters"]}
    assert params["cursor"]["type"] == "string"
    assert params["page_size"] == {"type": "integer", "minimum": 1, "maximum": 500}
    assert params["since"]["anyOf"][0]["format"] == "date-time"
    assert sorted(params["actor_prefix"]["enum"]) == ["key:", "system:", "user:"]
    assert "enum" not in params["action"]  # open: new actions come
    page = schema["components"]["schemas"]["AuditEntryPage"]["properties"]
    assert page["next"]["nullable"] and page["previous"]["nullable"]


def test_tools_list_tells_the_key_view_from_the_admin_view(schema):
    components = schema["components"]["schemas"]
    assert components["AnyTool"]["oneOf"] == [
        {"$ref": "#/components/schemas/Tool"},
        {"$ref": "#/components/schemas/CallableTool"},
    ]
    assert components["CallableTool"]["additionalProperties"] is False
    assert "created_at" in components["Tool"]["required"]


def test_nullability_and_open_sets(schema):
    components = schema["components"]["schemas"]
    assert components["ExceptionRecord"]["properties"]["resolved_at"]["nullable"]
    assert components["Confirmation"]["properties"]["decided_at"]["nullable"]
    assert components["Approval"]["properties"]["decided_at"]["nullable"]
    assert components["ActionRequest"]["properties"]["confirmation"]["nullable"]
    assert components["MachineKey"]["properties"]["revoked_at"]["nullable"]
    for name, field in (("AuditEntry", "action"), ("ActionRequest", "status")):
        prop = components[name]["properties"][field]
        assert prop["type"] == "string" and "enum" not in prop, (name, field)


def test_whoami_and_privacy_summary_are_typed(schema):
    whoami = schema["paths"]["/api/v1/whoami"]["get"]["responses"]["200"]
    assert whoami["content"]["application/json"]["schema"]["$ref"].endswith("/WhoAmI")
    summary = schema["paths"]["/api/v1/privacy-summary"]["get"]["responses"]["200"]
    assert summary["content"]["application/json"]["schema"]["$ref"].endswith("/PrivacySummary")
