"""CEL conditions (Common Expression Language, `common-expression-language`, Rust core).

Compiled once per source (lru_cache) and evaluated against exactly three variables:
`params`, `key` and `workspace`. Anything that goes wrong at run time (type mismatch,
missing field, conversion error, a non-bool result) is a ConditionError, which the
gate turns into a `policy_error` denial: a broken condition never allows.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import cel

ALLOWED_VARIABLES = frozenset({"params", "key", "workspace", "tool"})
MAX_CONDITION_LENGTH = 2000
_POSITION_RE = re.compile(r"<input>:(\d+):(\d+)")


class ConditionError(Exception):
    """A condition that cannot be compiled or evaluated; message is safe to show."""

    def __init__(self, message: str, position: str = ""):
        super().__init__(message)
        self.position = position


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:300] if text else ""


@lru_cache(maxsize=1024)
def compile_condition(source: str):
    """The compiled program for `source`; ConditionError naming the position if invalid."""
    if not source or not source.strip():
        raise ConditionError("The condition is empty.")
    if len(source) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"The condition is longer than {MAX_CONDITION_LENGTH} characters.")
    try:
        program = cel.compile(source)
    except Exception as exc:  # ValueError on syntax errors; be strict about anything else
        text = str(exc)
        match = _POSITION_RE.search(text)
        position = f"line {match.group(1)}, column {match.group(2)}" if match else ""
        detail = text.split("ERROR:", 1)[-1].strip().splitlines()[0] if text else ""
        message = f"Invalid condition at {position}: {detail}" if position else f"Invalid: {text}"
        raise ConditionError(message[:500], position) from None
    unknown = sorted(set(program.variables()) - ALLOWED_VARIABLES)
    if unknown:
        raise ConditionError(
            "Unknown variables in condition: "
            + ", ".join(unknown)
            + " (use params, key, workspace and tool)."
        )
    return program


def key_variables(key) -> dict[str, Any]:
    return {
        "id": str(key.pk) if getattr(key, "pk", None) else str(getattr(key, "id", "") or ""),
        "name": key.name,
        "scopes": sorted(key.scopes or []),
        "unattended_mode": bool(key.unattended_mode),
        "unattended": bool(key.unattended_mode),
        "owner": _owner_email(key),
    }


def _owner_email(key) -> str:
    owner = getattr(key, "owner", None) if getattr(key, "owner_id", None) else None
    return (getattr(owner, "email", "") or "") if owner is not None else ""


def tool_variables(tool) -> dict[str, Any]:
    if tool is None:
        return {"name": "", "level": "", "irreversible": False, "data_classes": []}
    return {
        "name": tool.name,
        "level": str(tool.level),
        "irreversible": bool(tool.irreversible),
        "data_classes": sorted(tool.data_classes or []),
    }


def workspace_variables(workspace) -> dict[str, Any]:
    return {
        "slug": workspace.slug,
        "plan_rank": int(workspace.plan_rank),
        "mode": str(workspace.mode),
        "writes_enabled": bool(workspace.writes_enabled),
        "outbound_allowed": bool(workspace.outbound_allowed),
    }


@lru_cache(maxsize=1024)
def variables_read(source: str) -> frozenset[str]:
    """key / workspace / tool when the name appears anywhere in the source text: a
    superset of what it reads (a condition cannot name a variable it does not spell)."""
    return frozenset(name for name in ("key", "workspace", "tool") if name in source)


def evaluate_condition(source: str, *, params: dict, key, workspace, tool=None) -> bool:
    """True when the condition holds. Raises ConditionError on any failure."""
    program = compile_condition(source)
    # Only the variables the condition can name: converting an unread one into CEL
    # values costs several times the evaluation itself (measured: 30 µs against 200).
    context: dict[str, Any] = {"params": params}
    reads = variables_read(source)
    if "key" in reads:
        context["key"] = key_variables(key)
    if "workspace" in reads:
        context["workspace"] = workspace_variables(workspace)
    if "tool" in reads:
        context["tool"] = tool_variables(tool)
    try:
        result = program.execute(context)
    except KeyError as exc:
        raise ConditionError(f"Missing field in condition input: {exc}") from None
    except Exception as exc:  # TypeError, RuntimeError, ValueError (conversion), ...
        raise ConditionError(f"{type(exc).__name__}: {_first_line(str(exc))}") from None
    if result is not True and result is not False:
        raise ConditionError(f"The condition returned {type(result).__name__}, not a bool.")
    return result
