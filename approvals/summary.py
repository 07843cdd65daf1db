"""Summary text for approvers: the admin's template with `{params.field}` placeholders
replaced by safe substitution. No template engine, no str.format, no eval: agent
values are data and are inserted as plain text (DESIGN.md 8)."""

from __future__ import annotations

import json
import re
from typing import Any

PLACEHOLDER_RE = re.compile(r"\{params\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
MISSING = "?"
SECRET = "[secret]"
MAX_VALUE_CHARS = 200
MAX_SUMMARY_CHARS = 2000


def _lookup(params: Any, path: str) -> Any:
    value = params
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    text = " ".join(text.split())  # no line breaks smuggled into the approver's view
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def render_summary(template: str, params: dict, *, tool_name: str, secret_params=()) -> str:
    """`template` with placeholders filled from `params`; secret params show as [secret]."""
    if not template:
        names = ", ".join(sorted(params)) if isinstance(params, dict) else ""
        return f"Run {tool_name}" + (f" with {names}" if names else "")
    secrets = set(secret_params or ())

    def substitute(match: re.Match) -> str:
        path = match.group(1)
        if path.split(".", 1)[0] in secrets:
            return SECRET
        value = _lookup(params, path)
        return MISSING if value is MISSING else _as_text(value)

    return PLACEHOLDER_RE.sub(substitute, template)[:MAX_SUMMARY_CHARS]
