import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(ParseError):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "Request body is too large."


class LimitedJSONParser(JSONParser):
    """JSON parser that reads at most WARDEN_API_MAX_BODY_BYTES, even for chunked bodies."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.WARDEN_API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        if not raw:
            return {}
        return super().parse(io.BytesIO(raw), media_type, parser_context)
