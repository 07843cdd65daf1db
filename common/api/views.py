"""Base view for every workspace-scoped endpoint.

Order of checks (DESIGN.md 3, scope before side effects): authenticate, rate-limit,
resolve the workspace from the credential, refuse a mismatching client workspace,
check the principal kind and the scope for the method; only then the handler runs.
Views declare `scope_map` (method -> scope) and `principals`; nothing else.
"""

from rest_framework.views import APIView

from common.actor import Actor
from common.errors import WardenError
from common.net import client_ip
from common.scopes import SCOPE_PERMISSION, has_scope
from keys.models import MachineKey
from tenants.scoping import WORKSPACE_HEADER, check_client_workspace, resolve_workspace
from tenants.selectors import user_can

KEY = "key"
USER = "user"


def actor_from_request(request) -> Actor:
    ip = client_ip(request)
    request_id = getattr(request, "request_id", "")
    if isinstance(request.auth, MachineKey):
        return Actor.for_key(request.auth, request_id=request_id, client_ip=ip)
    return Actor.for_user(request.user, request_id=request_id, client_ip=ip)


def require_scope(request, workspace, scope: str) -> None:
    """Raise forbidden_by_scope unless the credential holds `scope` in `workspace`."""
    if isinstance(request.auth, MachineKey):
        if has_scope(request.auth.scopes, scope):
            return
        raise WardenError(
            "forbidden_by_scope",
            f"This key lacks the scope {scope}.",
            {"required_scope": scope},
        )
    perm = SCOPE_PERMISSION.get(scope)
    if perm and user_can(request.user, perm, workspace):
        return
    raise WardenError(
        "forbidden_by_scope",
        f"Your role in this workspace does not allow {scope}.",
        {"required_scope": scope, "required_permission": perm},
    )


class WorkspaceAPIView(APIView):
    scope_map: dict[str, str | None] = {}
    principals: tuple[str, ...] = (KEY, USER)

    def initial(self, request, *args, **kwargs):
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(
            request
        )
        request.version, request.versioning_scheme = self.determine_version(
            request, *args, **kwargs
        )
        self.perform_authentication(request)
        self.check_permissions(request)  # authenticated principal only
        self.check_throttles(request)  # every call counts, refused ones too
        self.check_workspace_and_scope(request)

    def check_workspace_and_scope(self, request) -> None:
        is_key = isinstance(request.auth, MachineKey)
        if is_key and KEY not in self.principals:
            raise WardenError("humans_only", "Only a human session may do this.")
        if not is_key and USER not in self.principals:
            raise WardenError("keys_only", "Only a machine key may do this.")
        workspace = resolve_workspace(
            key=request.auth if is_key else None,
            user=None if is_key else request.user,
            requested=request.headers.get(WORKSPACE_HEADER) or None,
        )
        request.workspace = workspace
        request.actor = actor_from_request(request)
        check_client_workspace(workspace, request.query_params, request.data)
        scope = self.scope_map.get(request.method)
        if scope:
            require_scope(request, workspace, scope)
