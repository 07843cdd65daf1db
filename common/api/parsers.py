import codecs
import io
import json
import math

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from common.text import has_unstorable

MAX_JSON_DEPTH = 64
UNSTORABLE_MESSAGE = "Text may not contain NUL characters or unpaired surrogates."
NON_FINITE_MESSAGE = "Numbers must be finite: no NaN, Infinity or out-of-range values like 1e400."


class _NonFinite:
    """Stands in for NaN, Infinity or an overflowing number while the document is
    parsed, so a syntax error later in it still answers parse_error."""


NON_FINITE = _NonFinite()


def _non_finite_constant(name: str) -> _NonFinite:
    return NON_FINITE


def _finite_float(text: str) -> float | _NonFinite:
    """1e400 parses as inf in Python: refuse it like NaN and Infinity, which no database
    column, JSON encoder or comparison in the gate handles sanely."""
    value = float(text)
    return value if math.isfinite(value) else NON_FINITE


def loads_marking_non_finite(text: str):
    """json.loads with NaN, Infinity, -Infinity and overflowing numbers as NON_FINITE."""
    return json.loads(text, parse_constant=_non_finite_constant, parse_float=_finite_float)


class PayloadTooLarge(ParseError):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "Request body is too large."


def json_depth(value) -> int:
    """Nesting depth, computed without recursion (the value may be hostile)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def refusal(value) -> str | None:
    """Why the parsed document cannot be accepted, or None: a non-finite number, or a
    string (object keys included) holding NUL or an unpaired surrogate (the JSON
    escapes \\u0000 and \\ud800 decode to them)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if node is NON_FINITE:
            return NON_FINITE_MESSAGE
        if isinstance(node, str):
            if has_unstorable(node):
                return UNSTORABLE_MESSAGE
        elif isinstance(node, dict):
            if any(has_unstorable(str(key)) for key in node):
                return UNSTORABLE_MESSAGE
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


class LimitedJSONParser(JSONParser):
    """JSON parser bounded in size (WARDEN_API_MAX_BODY_BYTES, chunked bodies too) and
    nesting depth, so hostile bodies end as 4xx errors instead of recursion errors; it
    refuses non-finite numbers and text no database can store (400 validation_error)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.WARDEN_API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        if not raw:
            return {}
        try:
            data = self._parse_finite(raw, parser_context)
        except RecursionError:
            raise ParseError("JSON is nested too deeply.") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep.")
        if (reason := refusal(data)) is not None:
            raise ValidationError({"body": [reason]})
        return data

    @staticmethod
    def _parse_finite(raw: bytes, parser_context):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(io.BytesIO(raw)).read()
            return loads_marking_non_finite(text)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
