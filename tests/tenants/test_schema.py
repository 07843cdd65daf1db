"""The OpenAPI schema and docs of the foundation endpoints are served."""

import pytest
from django.test import Client


@pytest.fixture
def schema(db):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_schema_lists_the_foundation_endpoints(schema):
    for path in (
        "/api/v1/whoami",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
        "/api/v1/keys/{id}/revoke",
        "/api/v1/keys/{id}/rotate",
        "/api/v1/members",
        "/api/v1/members/{id}",
    ):
        assert path in schema["paths"], path


def test_schema_declares_bearer_machine_keys(schema):
    scheme = schema["components"]["securitySchemes"]["machineKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"


def test_key_schemas_never_expose_digests(schema):
    components = schema["components"]["schemas"]
    for name in ("MachineKey", "IssuedKey"):
        fields = set(components[name]["properties"])
        assert not {"digest", "previous_digest"} & fields, name
    assert "key" in components["IssuedKey"]["properties"]
    assert "key" not in components["MachineKey"]["properties"]


def test_api_docs_are_served(db):
    assert Client().get("/api/docs/").status_code == 200
