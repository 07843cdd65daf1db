"""Summary text for approvers: the admin's template with `{params.field}` placeholders
replaced by safe substitution. No template engine, no str.format, no eval: agent
values are data and are inserted as plain text (DESIGN.md 8).

A summary never hides content: a long value is cut with a note of how much was left
out, recipient-like values (who or where the action reaches) are never cut, and
invisible or direction-changing characters are shown as ⟦U+XXXX⟧ markers
(common/text.py), so `ann@example.com` followed by zero-width spaces and a second
address cannot pass for one address."""

from __future__ import annotations

import json
import re
from typing import Any

from approvals import credential_scan
from common.text import reveal_invisible

PLACEHOLDER_RE = re.compile(r"\{params\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
MISSING = "?"
SECRET = "[secret]"
CREDENTIAL = "[credential]"
MAX_VALUE_CHARS = 200
# Field names (any nesting level) whose value says who or where an action reaches:
# shown whole, however long.
RECIPIENT_FIELDS = frozenset({"to", "cc", "bcc", "recipient", "recipients", "email", "url"})
_RECIPIENT_SUFFIXES = ("_to", "_email", "_emails", "_url", "_urls", "_recipient", "_recipients")


def is_recipient_field(path: str) -> bool:
    name = path.rsplit(".", 1)[-1].lower()
    return name in RECIPIENT_FIELDS or name.endswith(_RECIPIENT_SUFFIXES)


def _lookup(params: Any, path: str) -> Any:
    value = params
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _as_text(value: Any, *, whole: bool = False) -> str:
    value = credential_scan.mask(value, shown_as=CREDENTIAL)  # never shown, even whole
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    text = " ".join(text.split())  # no line breaks smuggled into the approver's view
    if not whole and len(text) > MAX_VALUE_CHARS:
        left_out = len(text) - MAX_VALUE_CHARS
        text = f"{text[:MAX_VALUE_CHARS]}… (+{left_out:,} characters)"
    return text


def _recipients(params: Any, secrets: set[str], prefix: str = "") -> list[tuple[str, Any]]:
    """Recipient-like fields anywhere in `params`, as (dotted path, value)."""
    if not isinstance(params, dict):
        return []
    found = []
    for name, value in sorted(params.items(), key=lambda item: str(item[0])):
        path = f"{prefix}{name}"
        if str(name) in secrets and not prefix:
            continue
        if is_recipient_field(str(name)):
            found.append((path, value))
        elif isinstance(value, dict):
            found.extend(_recipients(value, secrets, f"{path}."))
    return found


def _argument(value: Any, *, whole: bool) -> str:
    """One argument's value as a JSON literal (strings quoted, inner quotes escaped, so a
    value cannot pose as the next argument), shortened visibly unless `whole`."""
    masked = credential_scan.mask(value, shown_as=CREDENTIAL)
    return _as_text(
        json.dumps(masked, sort_keys=True, ensure_ascii=False, default=str), whole=whole
    )


def _default_summary(params: Any, *, tool_name: str, secrets: set[str], shown: set[str]) -> str:
    """No template (imported tools start without one): every top-level argument with its
    value, `name=value`, sorted by name; approvers read what will be sent, not names."""
    if not isinstance(params, dict) or not params:
        return f"Run {tool_name}"
    parts = []
    for name, value in sorted(params.items(), key=lambda item: str(item[0])):
        name = str(name)
        if name in secrets:
            parts.append(f"{name}={SECRET}")
            continue
        whole = is_recipient_field(name)
        if whole:
            shown.add(name)
        parts.append(f"{name}={_argument(value, whole=whole)}")
    return f"Run {tool_name} with " + ", ".join(parts)


def render_summary(template: str, params: dict, *, tool_name: str, secret_params=()) -> str:
    """`template` with placeholders filled from `params`; secret params show as [secret].
    Recipient-like fields the template does not show are appended, whole."""
    secrets = set(secret_params or ())
    shown: set[str] = set()

    def substitute(match: re.Match) -> str:
        path = match.group(1)
        if path.split(".", 1)[0] in secrets:
            return SECRET
        value = _lookup(params, path)
        if value is MISSING:
            return MISSING
        shown.add(path)
        return _as_text(value, whole=is_recipient_field(path))

    if template:
        text = PLACEHOLDER_RE.sub(substitute, template)
    else:
        text = _default_summary(params, tool_name=tool_name, secrets=secrets, shown=shown)
    unshown = [(p, v) for p, v in _recipients(params, secrets) if p not in shown]
    if unshown:
        text += " (" + "; ".join(f"{p}: {_as_text(v, whole=True)}" for p, v in unshown) + ")"
    return reveal_invisible(text)
