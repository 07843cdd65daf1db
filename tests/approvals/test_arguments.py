"""Argument validation against a tool's input schema: paths named, values never echoed,
unusable schemas fail closed."""

import time

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


# -- patterns run in RE2 (issue 21.7) ----------------------------------------------------

CATASTROPHIC = {  # exponential in Python's re on "a" * n + "!"
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}},
    "patternProperties": {"^(x+x+)+y$": {"type": "integer"}},
    "additionalProperties": {"type": "string", "pattern": "^([a-z]+)*[0-9]$"},
}


@pytest.mark.django_db
def test_a_backtracking_schema_pattern_is_decided_in_linear_time(
    make_tool, live_workspace, agent, ask, api_error
):
    make_tool(live_workspace, "crm.lookup", level="read", input_schema=CATASTROPHIC)
    _, client = agent
    hostile = "a" * 60 + "!"
    for params, rule in [
        ({"code": hostile}, "pattern"),
        ({"x" * 60: 1}, "type"),  # the key is matched against ^(x+x+)+y$ first
        ({"note": "abcdefghij" * 6 + "!"}, "pattern"),
        ({"code": "a" * 250_000 + "!"}, "pattern"),
    ]:
        started = time.perf_counter()
        response = ask(client, "crm.lookup", params)
        assert time.perf_counter() - started < 1.0, rule
        assert api_error(response, 400, "invalid_params")["error"]["detail"]["rule"] == rule
    assert ask(client, "crm.lookup", {"code": "aaa", "xxy": 1, "b": "ab1"}).status_code == 200


@pytest.mark.parametrize(
    ("params", "rule"),
    [
        ({"id_1": 5}, None),
        ({"id_1": "five"}, "type"),
        ({"other": 5}, "additionalProperties"),
        ({"name": "Ann"}, None),
        ({"name": "ann"}, "pattern"),
    ],
)
def test_pattern_keywords_keep_their_meaning(params, rule):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^[A-Z][a-z]+$"}},
        "patternProperties": {"^id_[0-9]+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    detail = params_error(schema, params)
    assert (detail and detail["rule"]) == rule


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": {"pattern": "^(?!admin).*$"}}},  # lookahead
        {"patternProperties": {"(a)\\1": {}}},  # backreference
        {"$defs": {"x": {"pattern": "(?<=a)b"}}},
        {"patternProperties": {"^a": {}}, "unevaluatedProperties": False},
    ],
)
def test_patterns_re2_cannot_run_make_the_schema_unusable(schema):
    assert schema_problem(schema) != ""
    assert params_error(schema, {"a": "b"})["rule"] == "schema"  # stored before: fail closed
