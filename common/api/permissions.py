"""The API's two permission classes: anyone authenticated gets past DRF's own check
(the rate limit then counts every call, refused ones too); the view's scope table is
read by one class, after the Principal is built (common.api.views)."""

from rest_framework.permissions import BasePermission


class IsAuthenticatedPrincipal(BasePermission):
    """A machine key or a logged-in human; anonymous callers get 401."""

    def has_permission(self, request, view) -> bool:
        return request.auth is not None or bool(request.user and request.user.is_authenticated)


class ScopeTablePermission(BasePermission):
    """`view.scope_map` (HTTP method -> scope) against `request.principal`: a key needs
    the scope, a human the workspace permission the scope maps to. Refuses with
    forbidden_by_scope naming what is missing."""

    def has_permission(self, request, view) -> bool:
        scope = getattr(view, "scope_map", {}).get(request.method)
        if scope:
            request.principal.require_scope(scope)
        return True
