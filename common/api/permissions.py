from rest_framework.permissions import BasePermission

from keys.models import MachineKey


class IsAuthenticatedPrincipal(BasePermission):
    """A machine key or a logged-in human; anonymous callers get 401."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, MachineKey) or bool(
            request.user and request.user.is_authenticated
        )
