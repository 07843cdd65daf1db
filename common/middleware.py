import logging
import re
import uuid

from django.conf import settings
from django.http import JsonResponse, QueryDict

from common.api.exceptions import unavailable_payload
from common.db import is_transient_db_error
from common.errors import error_payload
from common.text import has_unstorable, strip_unstorable

logger = logging.getLogger("warden.api")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Tags each request with an id (the caller's X-Request-Id if sane) for audit rows."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-Id", "")
        request.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id
        return response


def answers_json(path: str) -> bool:
    """The machine-facing paths, whose every answer is JSON: the REST API and /mcp."""
    return path.startswith("/api/") or path == "/mcp" or path.startswith("/mcp/")


class ApiJsonErrorsMiddleware:
    """Last line of defence: an exception escaping a view under /api/ becomes a JSON
    500 without a traceback, even with DEBUG on; a transient database error (lock
    timeout, lost connection: common.db) becomes 503 `unavailable` with Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not answers_json(request.path):
            return None
        if is_transient_db_error(exception):
            logger.warning("Transient database error on %s, answered 503", request.path)
            payload, headers = unavailable_payload()
            return JsonResponse(payload, status=503, headers=headers)
        logger.exception("Unhandled error on %s", request.path)
        return JsonResponse(
            error_payload("internal_error", "Internal error; it has been logged."), status=500
        )


class ApiBodySizeLimitMiddleware:
    """Refuses oversized API bodies before anything reads them (DRF's parsers do not
    honour DATA_UPLOAD_MAX_MEMORY_SIZE)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if answers_json(request.path):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.WARDEN_API_MAX_BODY_BYTES:
                return JsonResponse(
                    error_payload(
                        "payload_too_large",
                        "Request body is too large.",
                        {"max_bytes": settings.WARDEN_API_MAX_BODY_BYTES},
                    ),
                    status=413,
                )
        return self.get_response(request)


class QueryStringSanitizerMiddleware:
    """Query parameters carrying NUL or unpaired surrogates never reach a filter: the
    API refuses them (400 validation_error); elsewhere (the admin's changelist filters
    and search) the characters are dropped, as a browser user cannot mean them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("QUERY_STRING") and any(
            has_unstorable(key) or any(has_unstorable(v) for v in values)
            for key, values in request.GET.lists()
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    error_payload(
                        "validation_error",
                        "Invalid input.",
                        {"query": ["Query parameters may not contain NUL or unpaired surrogates."]},
                    ),
                    status=400,
                )
            request.GET = self._cleaned(request.GET)
        return self.get_response(request)

    @staticmethod
    def _cleaned(params: QueryDict) -> QueryDict:
        cleaned = QueryDict(mutable=True)
        for key, values in params.lists():
            cleaned.setlist(strip_unstorable(key), [strip_unstorable(value) for value in values])
        cleaned._mutable = False
        return cleaned
