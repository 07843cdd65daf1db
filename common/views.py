"""JSON error pages for /api/ paths that never reach a DRF view (404, 500, CSRF)."""

from django.http import JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.defaults import page_not_found, server_error

from common.errors import error_payload


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_payload("not_found", "Not found."), status=404)
    return page_not_found(request, exception)


def internal_error(request):
    if _is_api(request):
        return JsonResponse(
            error_payload("internal_error", "Internal error; it has been logged."), status=500
        )
    return server_error(request)


def bad_request(request, exception=None):
    return JsonResponse(error_payload("validation_error", "Bad request."), status=400)


def csrf_failure(request, reason=""):
    if _is_api(request):
        return JsonResponse(
            error_payload("permission_denied", "CSRF check failed.", {"reason": reason}),
            status=403,
        )
    return django_csrf_failure(request, reason)
