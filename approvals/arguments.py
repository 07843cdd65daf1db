"""Argument validation against a tool's JSON Schema (`Tool.input_schema`).

It runs inside the gate's submit path after the allowlist and scope rules (a key that
may not see a tool must not learn its schema) and before confirmation or execution: a
malformed call never reaches a human or an upstream. A mismatch becomes a denial,
`invalid_params`, recorded like any other. Messages name the path and the rule, never
the offending value (it may be a secret parameter)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from approvals import gate

MAX_SCHEMA_CHARS = 64 * 1024


def schema_problem(schema: Any) -> str:
    """Why `schema` cannot be a tool's input schema ("" when it can)."""
    if not isinstance(schema, dict):
        return "The input schema must be a JSON object."
    if len(str(schema)) > MAX_SCHEMA_CHARS:
        return f"The input schema is larger than {MAX_SCHEMA_CHARS} characters."
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"Not a valid JSON Schema: {exc.message[:200]}"
    return ""


def _path(parts) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _safe_expected(value: Any) -> Any:
    """The schema's side of a failed rule, when small and plain (never agent data)."""
    if isinstance(value, bool | int | float | str) and len(str(value)) <= 100:
        return value
    if isinstance(value, list) and len(value) <= 20 and all(isinstance(v, str) for v in value):
        return value
    return None


def params_error(schema: Any, params: dict) -> dict | None:
    """{"path", "rule", "expected"?} of the first mismatch, or None when params fit."""
    if not schema or not isinstance(schema, dict):
        return None
    try:
        validator = Draft202012Validator(schema)
        error = next(iter(sorted(validator.iter_errors(params), key=lambda e: e.path)), None)
    except Exception:  # unresolvable $ref, recursion, bad types: fail closed, never allow
        return {"path": "$", "rule": "schema", "message": "The tool's input schema is unusable."}
    if error is None:
        return None
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.validator_value, list):
        present = params if not path else None
        missing = [name for name in error.validator_value if present is None or name not in present]
        if missing:
            path = [*path, missing[0]]
        detail = {"path": _path(path), "rule": "required"}
    else:
        detail = {"path": _path(path), "rule": str(error.validator)}
        expected = _safe_expected(error.validator_value)
        if expected is not None:
            detail["expected"] = expected
    return detail


def check(decision: gate.Decision, tool, params: Any) -> gate.Decision:
    """The gate's decision, turned into an `invalid_params` denial when the params do
    not fit the tool's input schema. Denials stay as they are, except a condition that
    failed (`policy_error`, reached only past the allowlist and scope): when the params
    do not fit the schema, that is the cause worth naming ("amount" missing), not the
    condition's error."""
    if decision.denied and decision.code != "policy_error":
        return decision
    if tool is None or not isinstance(params, dict):
        return decision
    detail = params_error(getattr(tool, "input_schema", None), params)
    if detail is None:
        return decision
    return replace(
        decision,
        outcome=gate.DENIED,
        rule="input_schema",
        reason=f"params do not match the input schema at {detail['path']} ({detail['rule']})",
        code="invalid_params",
        summary="",
        detail=detail,
    )
