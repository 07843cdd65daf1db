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


class _NonFinite(Exception):
    pass


def _refuse_constant(name: str):
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    """1e400 parses as inf in Python: refuse it like NaN and Infinity, which no database
    column, JSON encoder or comparison in the gate handles sanely."""
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def loads_finite(text: str):
    """json.loads that refuses NaN, Infinity, -Infinity and overflowing numbers."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


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


def has_unstorable_text(value) -> bool:
    """Whether any string in the document, object keys included, holds NUL or an
    unpaired surrogate (JSON escapes \\u0000 and \\ud800 decode to them)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if has_unstorable(node):
                return True
        elif isinstance(node, dict):
            if any(has_unstorable(str(key)) for key in node):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


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
        except _NonFinite:
            raise ValidationError({"body": [NON_FINITE_MESSAGE]}) from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep.")
        if has_unstorable_text(data):
            raise ValidationError({"body": [UNSTORABLE_MESSAGE]})
        return data

    @staticmethod
    def _parse_finite(raw: bytes, parser_context):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(io.BytesIO(raw)).read()
            return loads_finite(text)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
