"""The one queryset-scoping helper, in common so every layer (the evidence core
included) scopes the same way. Resolving *which* workspace a request acts in is
tenants.scoping's job."""

from __future__ import annotations

from django.db.models import QuerySet

# Fields a client may add to any body to name its workspace (tenants.scoping checks
# them against the credential's workspace before any serializer runs).
CLIENT_WORKSPACE_FIELDS = ("workspace_id", "workspace")


def scoped(queryset: QuerySet, workspace, *, field: str = "workspace") -> QuerySet:
    """Every queryset that serves a request goes through here. `workspace` is one
    workspace, or a queryset of them (the admin: every workspace where the person holds
    the page's permission); `field` is the path to the row's workspace."""
    if isinstance(workspace, QuerySet):
        return queryset.filter(**{f"{field}__in": workspace})
    return queryset.filter(**{field: workspace})
