"""Who is asking an API request, as one value: a machine key, or a human in a
workspace. Built once after authentication (keys.principal fills it; this module
imports no app), then read by the scope-table permission class, the views and the
rate limit. Services keep receiving the `Actor` (`principal.actor`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from common.actor import Actor
from common.errors import WardenError

KEY = "key"
USER = "user"


@dataclass(frozen=True)
class Principal:
    kind: str  # KEY or USER
    actor: Actor
    workspace: Any  # tenants.Workspace, resolved from the credential
    rate_limit: int  # calls per minute
    rate_ident: str  # the counter it is charged to: "key:<id>" or "user:<id>"
    user: Any = None  # the human: the session's user, or the key's owner
    key: Any = None  # keys.MachineKey, for a key
    # A key: the scopes it holds, with the one that implies all expanded. A human:
    # empty; their scopes follow from their permissions through `scope_permission`.
    scopes: frozenset[str] = frozenset()
    # scope -> the workspace permission that lets a human use it (None: agents only).
    scope_permission: Mapping[str, str | None] = field(default_factory=dict)
    # Guardian permissions on the workspace, fetched on first use (one checker, two
    # statements) so endpoints that never ask cost nothing.
    load_permissions: Callable[[], frozenset[str]] = field(
        default=frozenset, repr=False, compare=False
    )

    @property
    def is_key(self) -> bool:
        return self.kind == KEY

    @property
    def is_human(self) -> bool:
        return self.kind == USER

    @cached_property
    def permissions(self) -> frozenset[str]:
        return self.load_permissions()

    def can(self, permission: str) -> bool:
        """Whether this principal holds `permission` on its workspace: a human through
        their role (guardian), a key through the permissions its scopes carry."""
        return permission in self.permissions

    def has_scope(self, scope: str) -> bool:
        if self.is_key:
            return scope in self.scopes
        permission = self.scope_permission.get(scope)
        return permission is not None and self.can(permission)

    def require_scope(self, scope: str) -> None:
        """Raise forbidden_by_scope unless this principal may act with `scope`."""
        if self.has_scope(scope):
            return
        if self.is_key:
            raise WardenError(
                "forbidden_by_scope",
                f"This key lacks the scope {scope}.",
                {"required_scope": scope},
            )
        raise WardenError(
            "forbidden_by_scope",
            f"Your role in this workspace does not allow {scope}.",
            {"required_scope": scope, "required_permission": self.scope_permission.get(scope)},
        )

    def require_permission(self, permission: str, message: str) -> None:
        """Raise forbidden_by_scope naming `permission` unless this principal holds it."""
        if not self.can(permission):
            raise WardenError("forbidden_by_scope", message, {"required_permission": permission})
