"""Builds the request's Principal (common.principal) once, after DRF has
authenticated it: the only place that tells a machine key from a human session.

Order (DESIGN.md 3): the kind of principal the view accepts, then the workspace from
the credential, then a client-sent workspace that differs; scopes come after, in
common.api.permissions.ScopeTablePermission."""

from __future__ import annotations

from django.conf import settings

from common.actor import Actor
from common.errors import WardenError
from common.principal import KEY, USER, Principal
from common.scopes import ALL_SCOPES, SCOPE_PERMISSION, WORKSPACE_ADMIN
from keys.models import MachineKey
from tenants.scoping import WORKSPACE_HEADER, check_client_workspace, resolve_workspace
from tenants.selectors import workspace_permissions

_UNSET = object()
_KIND = "_warden_credential_kind"
_RATE = "_warden_rate_identity"


def credential_kind(request) -> str | None:
    """KEY, USER, or None for an anonymous caller; worked out once per request and kept
    on it (the throttle and the principal both ask)."""
    kind = getattr(request, _KIND, _UNSET)
    if kind is _UNSET:
        kind = _kind_of(request)
        setattr(request, _KIND, kind)
    return kind


def rate_identity(request) -> tuple[str, int] | None:
    """The counter a call is charged to and its budget per minute (keys.throttling);
    worked out once per request and kept on it."""
    identity = getattr(request, _RATE, _UNSET)
    if identity is _UNSET:
        identity = _rate_of(request, credential_kind(request))
        setattr(request, _RATE, identity)
    return identity


def _kind_of(request) -> str | None:
    if isinstance(request.auth, MachineKey):
        return KEY
    if request.user is not None and request.user.is_authenticated:
        return USER
    return None


def _rate_of(request, kind: str | None) -> tuple[str, int] | None:
    if kind == KEY:
        return f"key:{request.auth.pk}", request.auth.rate_limit_per_minute
    if kind == USER:
        return f"user:{request.user.pk}", settings.WARDEN_USER_RATE_PER_MINUTE
    return None


def _key_scopes(key: MachineKey) -> frozenset[str]:
    held = frozenset(key.scopes or ())
    return ALL_SCOPES | held if WORKSPACE_ADMIN in held else held


def _permissions_of_scopes(scopes: frozenset[str]) -> frozenset[str]:
    return frozenset(p for s in scopes if (p := SCOPE_PERMISSION.get(s)) is not None)


def principal_for_request(request, *, accepts: tuple[str, ...] = (KEY, USER)) -> Principal:
    """Who is asking, in which workspace. Refuses a kind the view does not accept
    (humans_only / keys_only) before resolving any workspace."""
    kind = credential_kind(request)
    if kind == KEY and KEY not in accepts:
        raise WardenError("humans_only", "Only a human session may do this.")
    if kind != KEY and USER not in accepts:
        raise WardenError("keys_only", "Only a machine key may do this.")
    key = request.auth if kind == KEY else None
    workspace = resolve_workspace(
        key=key,
        user=None if key else request.user,
        requested=request.headers.get(WORKSPACE_HEADER) or None,
    )
    check_client_workspace(workspace, request.query_params, request.data)
    ident, limit = rate_identity(request)
    if key is not None:
        scopes = _key_scopes(key)
        return Principal(
            kind=KEY,
            actor=Actor.for_request(request, key=key),
            workspace=workspace,
            rate_limit=limit,
            rate_ident=ident,
            user=request.user,
            key=key,
            scopes=scopes,
            scope_permission=SCOPE_PERMISSION,
            load_permissions=lambda: _permissions_of_scopes(scopes),
        )
    user = request.user
    return Principal(
        kind=USER,
        actor=Actor.for_request(request),
        workspace=workspace,
        rate_limit=limit,
        rate_ident=ident,
        user=user,
        scope_permission=SCOPE_PERMISSION,
        load_permissions=lambda: workspace_permissions(user=user, workspace=workspace),
    )
