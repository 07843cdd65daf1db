import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 64


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


class LimitedJSONParser(JSONParser):
    """JSON parser bounded in size (WARDEN_API_MAX_BODY_BYTES, chunked bodies too) and
    nesting depth, so hostile bodies end as 4xx errors instead of recursion errors."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.WARDEN_API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        if not raw:
            return {}
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON is nested too deeply.") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep.")
        return data
