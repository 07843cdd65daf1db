"""The one place a request's workspace is resolved and querysets are scoped.

Agents: the workspace is the key's. Humans: the membership named by the
`X-Warden-Workspace` header (slug or id), or the only one they have. A client-sent
`workspace_id`/`workspace` that differs from the credential's is `workspace_mismatch`.
"""

from __future__ import annotations

from typing import Any

from common.errors import WardenError
from common.scoping import (
    CLIENT_WORKSPACE_FIELDS,
    scoped,  # noqa: F401  (re-exported: the helper views use)
)
from tenants.models import Workspace

WORKSPACE_HEADER = "X-Warden-Workspace"


def _matches(workspace: Workspace, value: Any) -> bool:
    return str(value) in (str(workspace.pk), workspace.slug)


def _mismatch() -> WardenError:
    return WardenError(
        "workspace_mismatch", "The workspace sent does not match this credential's workspace."
    )


def workspace_for_user(user, requested: str | None) -> Workspace:
    memberships = Workspace.objects.active().filter(memberships__user=user)
    if requested:
        found = [w for w in memberships if _matches(w, requested)]
        if not found:
            raise _mismatch()
        return found[0]
    found = list(memberships[:2])
    if len(found) == 1:
        return found[0]
    if not found:
        raise WardenError("permission_denied", "You are not a member of any workspace.")
    raise WardenError(
        "workspace_required",
        f"You belong to several workspaces; name one in the {WORKSPACE_HEADER} header.",
    )


def resolve_workspace(*, key=None, user=None, requested: str | None = None) -> Workspace:
    if key is not None:
        workspace = key.workspace
        if workspace.deleted_at is not None:
            raise WardenError("invalid_key", "Invalid API key.")
        if requested and not _matches(workspace, requested):
            raise _mismatch()
        return workspace
    if user is not None and user.is_authenticated:
        return workspace_for_user(user, requested)
    raise WardenError("not_authenticated", "Authentication credentials were not provided.")


def check_client_workspace(workspace: Workspace, *sources: Any) -> None:
    """Refuse a client-supplied workspace field that differs; ignore one that matches."""
    for source in sources:
        if not hasattr(source, "get"):
            continue
        for field in CLIENT_WORKSPACE_FIELDS:
            value = source.get(field)
            if value not in (None, "") and not _matches(workspace, value):
                raise _mismatch()
