"""Error pages: JSON for /api/ paths that never reach a DRF view (404, 500, CSRF,
403), and an admin-framed 403 for /admin/ pages that says what is missing."""

from django.contrib import admin
from django.http import JsonResponse
from django.shortcuts import render
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.defaults import page_not_found, server_error
from django.views.defaults import permission_denied as django_permission_denied

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


ADMIN_REFUSAL = "Your role does not give access to this page. Ask a workspace admin if you need it."


def permission_denied(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_payload("permission_denied", "Permission denied."), status=403)
    user = getattr(request, "user", None)
    if request.path.startswith("/admin/") and user is not None and user.is_authenticated:
        # The refusal's message is ours (tenants.admin_base.permission_missing),
        # never user input: it names the permission and the roles that carry it.
        context = {
            **admin.site.each_context(request),
            "title": "You may not open this page",
            "reason": str(exception or "") or ADMIN_REFUSAL,
        }
        return render(request, "admin/403.html", context, status=403)
    return django_permission_denied(request, exception)


def bad_request(request, exception=None):
    return JsonResponse(error_payload("validation_error", "Bad request."), status=400)


def csrf_failure(request, reason=""):
    if _is_api(request):
        return JsonResponse(
            error_payload("permission_denied", "CSRF check failed.", {"reason": reason}),
            status=403,
        )
    return django_csrf_failure(request, reason)
