"""Argument validation against a tool's input schema: paths named, values never echoed,
unusable schemas fail closed."""

import pytest

from approvals.arguments import params_error, schema_problem

SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 1},
        "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
        "mode": {"enum": ["fast", "slow"]},
    },
    "required": ["amount"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"amount": 5}, None),
        ({}, {"path": "$.amount", "rule": "required"}),
        ({"amount": "secret-text"}, {"path": "$.amount", "rule": "type", "expected": "integer"}),
        ({"amount": 0}, {"path": "$.amount", "rule": "minimum", "expected": 1}),
        ({"amount": 1, "items": [{}]}, {"path": "$.items[0].sku", "rule": "required"}),
        (
            {"amount": 1, "mode": "x"},
            {"path": "$.mode", "rule": "enum", "expected": ["fast", "slow"]},
        ),
    ],
)
def test_first_mismatch_names_path_and_rule(params, expected):
    assert params_error(SCHEMA, params) == expected


def test_the_offending_value_is_never_echoed():
    detail = params_error(SCHEMA, {"amount": 1, "password-like": "hunter2"})
    assert detail["rule"] == "additionalProperties" and "hunter2" not in str(detail)


def test_unusable_schemas_fail_closed():
    remote = {"$ref": "https://example.com/schema.json"}
    assert params_error(remote, {"a": 1})["rule"] == "schema"
    assert params_error({"properties": {"a": {"$ref": "#/missing"}}}, {"a": 1})["rule"] == "schema"


def test_schema_problems_are_reported():
    assert schema_problem({"type": "object"}) == ""
    assert schema_problem([]) != ""
    assert "Not a valid JSON Schema" in schema_problem({"type": "no-such-type"})
