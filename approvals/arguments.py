"""Argument validation against a tool's JSON Schema (`Tool.input_schema`).

It runs inside the gate's submit path after the allowlist and scope rules (a key that
may not see a tool must not learn its schema) and before confirmation or execution: a
malformed call never reaches a human or an upstream. A mismatch becomes a denial,
`invalid_params`, recorded like any other. Messages name the path and the rule, never
the offending value (it may be a secret parameter).

Schema patterns (`pattern`, `patternProperties`) run in RE2, in time linear in the
agent's text: jsonschema would run them in Python's backtracking `re`, where a pattern
an admin or an upstream wrote (`^(a+)+$`, many an e-mail pattern) takes exponential
time on a crafted value. A pattern RE2 cannot compile (lookarounds, backreferences)
makes the schema unusable: refused when it is saved or synced, a denial if one is
already stored. `unevaluatedProperties` is not combined with `patternProperties`
(jsonschema evaluates that pair with `re` internally)."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError

from approvals import gate

MAX_SCHEMA_CHARS = 64 * 1024
MAX_PATTERNS = 256


class UnsupportedPattern(ValueError):
    pass


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str):
    options = re2.Options()
    options.never_capture = True
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise UnsupportedPattern(pattern) from exc


def _found(pattern: str, text: str) -> bool:
    return _regex(pattern).search(text) is not None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _found(pattern, instance):
        yield ValidationError("does not match the pattern")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for name, value in instance.items():
            if _found(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        name
        for name in instance
        if name not in declared and not any(_found(p, name) for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif not additional and extras:
        yield ValidationError("Additional properties are not allowed")


# Draft 2020-12 with every keyword that matches a pattern running it in RE2.
_Validator = validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


def _pattern_problem(schema: Any) -> str:
    """Why the schema's patterns cannot run in RE2 ("" when they can)."""
    patterns: list[str] = []
    keywords: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        if not isinstance(node, dict):
            continue
        keywords.update(k for k in node if isinstance(k, str))
        if isinstance(node.get("pattern"), str):
            patterns.append(node["pattern"])
        if isinstance(node.get("patternProperties"), dict):
            patterns.extend(k for k in node["patternProperties"] if isinstance(k, str))
        stack.extend(node.values())
    if {"patternProperties", "unevaluatedProperties"} <= keywords:
        return "unevaluatedProperties cannot be combined with patternProperties."
    if len(patterns) > MAX_PATTERNS:
        return f"At most {MAX_PATTERNS} patterns."
    for pattern in patterns:
        try:
            _regex(pattern)
        except UnsupportedPattern:
            return (
                f"Pattern {pattern[:100]!r} is not supported: patterns run in RE2 "
                "(no lookaround, no backreferences)."
            )
    return ""


def schema_problem(schema: Any) -> str:
    """Why `schema` cannot be a tool's input schema ("" when it can)."""
    if not isinstance(schema, dict):
        return "The input schema must be a JSON object."
    if len(str(schema)) > MAX_SCHEMA_CHARS:
        return f"The input schema is larger than {MAX_SCHEMA_CHARS} characters."
    try:
        text = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        return _schema_problem(schema)
    return _checked_schema(text)


@functools.lru_cache(maxsize=1024)
def _checked_schema(text: str) -> str:
    """Checking against the metaschema costs milliseconds; a catalog repeats the same few
    schemas (a 1,000-tool policy plan checked each changed tool's twice: 1 s of 1.9)."""
    return _schema_problem(json.loads(text))


def _schema_problem(schema: dict) -> str:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"Not a valid JSON Schema: {exc.message[:200]}"
    return _pattern_problem(schema)


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
        if _pattern_problem(schema):
            raise UnsupportedPattern("stored before patterns ran in RE2")
        validator = _Validator(schema)
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
