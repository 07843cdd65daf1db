"""The evidence endpoints are documented in the OpenAPI schema with their filters and
their paginated envelopes."""

import pytest
from django.test import Client

from tests.audit.test_api import AUDIT_FIELDS


@pytest.fixture
def schema(db):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("path", "page", "filters"),
    [
        ("/api/v1/audit", "AuditEntryPage", {"actor_prefix", "actor", "tool", "since", "until"}),
        ("/api/v1/audit/exceptions", "ExceptionRecordPage", {"kind", "severity", "resolved"}),
        ("/api/v1/audit/versions", "VersionLogPage", {"target_type", "policy_version"}),
    ],
)
def test_evidence_endpoints_are_documented(schema, path, page, filters):
    get = schema["paths"][path]["get"]
    assert filters <= {p["name"] for p in get["parameters"]}
    ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith(f"/{page}")
    assert {"next", "previous", "results"} <= set(
        schema["components"]["schemas"][page]["properties"]
    )


def test_audit_entry_schema_lists_the_stable_fields(schema):
    assert set(schema["components"]["schemas"]["AuditEntry"]["properties"]) == AUDIT_FIELDS
