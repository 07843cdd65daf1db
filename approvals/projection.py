"""Output projections: what of a tool's result an agent may read (docs "Output
allowlists"). Pure functions; no database.

A tool's `output_projection` is None (the result is returned as the upstream sent it)
or a list of paths, each naming what may be returned:

    $                 the whole value
    $.items           the key `items` of an object (and everything under it)
    $.items[*].id     the key `id` of every element of the array `items`

A path is `$` followed by segments `.name` (a letter or `_`, then letters, digits, `_`
or `-`) or `[*]` (every element of an array). Everything not on a listed path is
withheld: the agent never sees it, and Warden keeps only its keyed digest. An empty
list returns nothing of the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_PATHS = 50
MAX_PATH_LENGTH = 200
# Withheld entries kept in full (path, digest, size); the count is always exact.
MAX_WITHHELD_LISTED = 100

_NAME = r"[A-Za-z_][A-Za-z0-9_-]{0,63}"
_SEGMENT = re.compile(rf"\.({_NAME})|\[\*\]")
_PLAIN_KEY = re.compile(rf"^{_NAME}$")
# The grammar as one regular expression (the policy document's JSON Schema uses it).
PATH_PATTERN = rf"^\$(\.{_NAME}|\[\*\])*$"
ANY = "*"  # the `[*]` segment

Segments = tuple[str, ...]


def parse_path(path: str) -> Segments:
    """('items', '*', 'id') for `$.items[*].id`; ValueError naming what is wrong."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ValueError("a path starts with $")
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(f"a path has at most {MAX_PATH_LENGTH} characters")
    segments, at = [], 1
    while at < len(path):
        match = _SEGMENT.match(path, at)
        if match is None:
            raise ValueError(
                f"unexpected {path[at : at + 10]!r} at character {at + 1}: use .name or [*]"
            )
        segments.append(match.group(1) or ANY)
        at = match.end()
    return tuple(segments)


def projection_problem(value: Any) -> str | None:
    """Why `value` is not a valid projection (None, or a list of paths), else None."""
    if value is None:
        return None
    if not isinstance(value, list):
        return 'A list of JSON paths such as "$.items[*].id", or null for no projection.'
    if len(value) > MAX_PATHS:
        return f"At most {MAX_PATHS} paths."
    for index, path in enumerate(value):
        try:
            parse_path(path)
        except ValueError as exc:
            return f"Path {index + 1} ({str(path)[:60]!r}): {exc}."
    if len(set(value)) != len(value):
        return "A path is listed twice."
    return None


def covers(wider: Segments, narrower: Segments) -> bool:
    """True when everything `narrower` returns is returned by `wider` (a prefix)."""
    return len(wider) <= len(narrower) and narrower[: len(wider)] == wider


def narrows(before: list[str] | None, after: list[str] | None) -> bool:
    """Adding a projection narrows; so does dropping paths or making one more specific.
    Removing it, or adding a path the old ones do not cover, widens."""
    if after is None:
        return before is None
    if before is None:
        return True
    try:
        was = [parse_path(p) for p in before]
        now = [parse_path(p) for p in after]
    except ValueError:
        return False
    return all(any(covers(w, n) for w in was) for n in now)


# --- applying ------------------------------------------------------------------------------


@dataclass
class Projected:
    """The value the agent may read, and what was withheld from it."""

    value: Any
    withheld: list[dict[str, Any]] = field(default_factory=list)  # path, digest, bytes
    count: int = 0

    def record(self) -> dict[str, Any]:
        """What the evidence keeps: digests and sizes only, never a value."""
        return {"count": self.count, "entries": self.withheld[:MAX_WITHHELD_LISTED]}


def _key_text(key: str) -> str:
    # A key that is not a plain name could itself be data (an e-mail used as a key):
    # named by its position only.
    return f".{key}" if _PLAIN_KEY.match(key) else "[?]"


def _walk(value: Any, paths: list[Segments], here: str, out: Projected, digest) -> Any:
    """The part of `value` on `paths` (relative to `value`); the rest is withheld."""
    if any(not p for p in paths):
        return value  # a path ends here: the whole subtree may be read
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            below = [p[1:] for p in paths if p[0] == key]
            if below:
                kept[key] = _walk(item, below, here + _key_text(str(key)), out, digest)
            else:
                _withhold(item, here + _key_text(str(key)), out, digest)
        return kept
    if isinstance(value, list):
        below = [p[1:] for p in paths if p[0] == ANY]
        if not below:
            _withhold(value, here, out, digest)
            return None
        return [_walk(item, below, f"{here}[{i}]", out, digest) for i, item in enumerate(value)]
    # A leaf (or an array) where a path expected more: withheld, null in its place.
    _withhold(value, here, out, digest)
    return None


def _withhold(value: Any, path: str, out: Projected, digest) -> None:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    out.count += 1
    if len(out.withheld) < MAX_WITHHELD_LISTED:
        out.withheld.append(
            {"path": path, "digest": digest(encoded), "bytes": len(encoded.encode("utf-8"))}
        )


def project_value(
    value: Any, projection: list[str], digest: Callable[[str], str], *, root: str = "$"
) -> Projected:
    """`value` reduced to the projection's paths; `digest(text)` names what is withheld."""
    out = Projected(None)
    out.value = _walk(value, [parse_path(p) for p in projection], root, out, digest)
    return out


def project_tool_result(
    result: dict[str, Any], projection: list[str], digest: Callable[[str], str]
) -> Projected:
    """An MCP CallToolResult (or the gateway's rendering of an http answer) as the agent
    may read it: `structuredContent` projected; each text block holding JSON projected
    the same way (MCP servers serialise the structured result into one); any other
    block (free text, images, resources) and the upstream's `_meta` withheld whole, since
    nothing proves they hold only the allowed fields. `isError` is kept."""
    out = Projected(None)
    shown: dict[str, Any] = {"content": []}
    if "isError" in result:
        shown["isError"] = result["isError"]
    paths = [parse_path(p) for p in projection]
    seen: set[tuple[str, str]] = set()
    if "structuredContent" in result:
        shown["structuredContent"] = _walk(
            result["structuredContent"], paths, "structuredContent$", out, digest
        )
        seen = {(e["path"].removeprefix("structuredContent"), e["digest"]) for e in out.withheld}
    for index, block in enumerate(result.get("content") or []):
        where = f"content[{index}]"
        parsed = _json_text(block)
        if parsed is _NOT_JSON:
            _withhold(block, where, out, digest)
            continue
        part = Projected(None)
        part.value = _walk(parsed, paths, "$", part, digest)
        for entry in part.withheld:
            if (entry["path"], entry["digest"]) not in seen:
                out.count += 1
                if len(out.withheld) < MAX_WITHHELD_LISTED:
                    out.withheld.append({**entry, "path": where + entry["path"]})
        out.count += part.count - len(part.withheld)  # beyond the listed ones
        text = json.dumps(part.value, ensure_ascii=False)
        shown["content"].append({"type": "text", "text": text})
    for key in sorted(set(result) - {"content", "structuredContent", "isError"}):
        _withhold(result[key], key, out, digest)
    out.value = shown
    return out


_NOT_JSON = object()


def _json_text(block: Any) -> Any:
    if not isinstance(block, dict) or block.get("type") != "text":
        return _NOT_JSON
    text = block.get("text")
    if not isinstance(text, str):
        return _NOT_JSON
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON
