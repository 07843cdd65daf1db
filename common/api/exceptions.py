"""One exception handler: every API error is {"error": {"code", "message", "detail"}}."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from common.db import is_transient_db_error, retry_after_seconds
from common.errors import ERROR_STATUS, WardenError, error_payload

logger = logging.getLogger("warden.api")

_DRF_CODES = [
    (exceptions.ValidationError, "validation_error"),
    (exceptions.ParseError, "parse_error"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "invalid_key"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "rate_limited"),
]


def _message(detail) -> str:
    if isinstance(detail, list | tuple) and detail:
        return _message(detail[0])
    if isinstance(detail, dict):
        return "Invalid input."
    return str(detail)


def _drf_response(exc: exceptions.APIException) -> Response:
    code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "internal_error")
    own_code = exc.get_codes() if not isinstance(exc.detail, dict | list) else None
    if isinstance(own_code, str) and own_code in ERROR_STATUS and code != "validation_error":
        code = own_code  # e.g. AuthenticationFailed(code="key_expired")
    detail = exc.detail if isinstance(exc, exceptions.ValidationError) else {}
    if isinstance(detail, list):
        detail = {"non_field_errors": detail}
    message = "Invalid input." if code == "validation_error" else _message(exc.detail)
    headers = {}
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1) if exc.wait is not None else 60
        headers["Retry-After"] = str(max(wait, 1))
        detail = {"retry_after": max(wait, 1)}
        message = "Rate limit exceeded for this credential."
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    status = ERROR_STATUS.get(code, exc.status_code)
    return Response(error_payload(code, message, detail), status=status, headers=headers)


def unavailable_payload() -> tuple[dict, dict]:
    """The 503 body and headers for a transient database failure (common.db)."""
    wait = retry_after_seconds()
    payload = error_payload(
        "unavailable",
        "The service is busy; nothing was changed. Retry after the indicated delay.",
        {"retry_after": wait},
    )
    return payload, {"Retry-After": str(wait)}


def json_exception_handler(exc, context):
    set_rollback()
    if is_transient_db_error(exc):
        logger.warning("Transient database error, answered 503: %s", type(exc).__name__)
        payload, headers = unavailable_payload()
        return Response(payload, status=503, headers=headers)
    if isinstance(exc, WardenError):
        return Response(exc.as_payload(), status=exc.status, headers=getattr(exc, "headers", None))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, exceptions.APIException):
        return _drf_response(exc)
    logger.exception("Unhandled API error (%s)", type(exc).__name__)
    return Response(
        error_payload("internal_error", "Internal error; it has been logged."), status=500
    )
