"""How an approver reads a request's parameters: never hidden behind a fold.

The parameters that say who, how much and where (recipients, amounts, targets) come
first; every top-level parameter is its own line, so nothing sits below an inner
scroll; a long value is shortened *visibly* (how many characters are left out is
printed) with the whole value one click away. The text stays data: the templates
escape it and mark invisible characters (`reveal`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Parameter names that usually say who receives, how much moves or what is targeted.
KEY_PARAMS = (
    "to",
    "cc",
    "bcc",
    "recipient",
    "recipients",
    "email",
    "phone",
    "amount",
    "currency",
    "account",
    "customer_id",
    "target",
    "url",
    "path",
    "subject",
)


@dataclass(frozen=True)
class ShownParam:
    name: str
    preview: str  # the value, shortened to `limit` characters when longer
    full: str  # the whole value (shown on a click when `omitted`)
    omitted: int  # how many characters the preview leaves out
    key: bool  # one of the parameters that say who / how much / where

    @property
    def length(self) -> int:
        return len(self.full)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    indent = (
        2 if isinstance(value, dict | list) and len(json.dumps(value, default=str)) > 60 else None
    )
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str, sort_keys=True)


def params_shown(params: Any, *, limit: int = 200) -> list[ShownParam]:
    """Top-level parameters in reading order: key ones first (in KEY_PARAMS order), then
    the rest by name. A non-object payload is one parameter named "(params)"."""
    if not isinstance(params, dict):
        params = {"(params)": params}
    rank = {name: i for i, name in enumerate(KEY_PARAMS)}
    names = sorted(params, key=lambda n: (rank.get(str(n).lower(), len(rank)), str(n)))
    shown = []
    for name in names:
        full = _text(params[name])
        omitted = max(0, len(full) - limit)
        preview = full[:limit] if omitted else full
        shown.append(ShownParam(str(name), preview, full, omitted, str(name).lower() in rank))
    return shown
