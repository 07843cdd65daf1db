"""Base view for every workspace-scoped endpoint.

Order of checks (DESIGN.md 3, scope before side effects): DRF's own `initial()`
(content negotiation, authentication, an authenticated principal, the rate limit, which
counts refused calls too), then one hook: the Principal (the accepted kind of
credential, the workspace from the credential, a mismatching client workspace), then
the view's scope table. Only then the handler runs. Views declare `scope_map`
(method -> scope) and `principals`; handlers read `request.principal`,
`request.workspace` and `request.actor`.
"""

from rest_framework.views import APIView

from common.api.permissions import ScopeTablePermission
from common.principal import KEY, USER
from keys.principal import principal_for_request

__all__ = ["KEY", "USER", "WorkspaceAPIView"]


class WorkspaceAPIView(APIView):
    scope_map: dict[str, str | None] = {}
    principals: tuple[str, ...] = (KEY, USER)
    scope_permission_classes = (ScopeTablePermission,)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.establish_principal(request)

    def establish_principal(self, request) -> None:
        """Who is asking, in which workspace, and whether the scope table lets them."""
        principal = principal_for_request(request, accepts=self.principals)
        request.principal = principal
        request.workspace = principal.workspace
        request.actor = principal.actor
        for permission_class in self.scope_permission_classes:
            permission_class().has_permission(request, self)
