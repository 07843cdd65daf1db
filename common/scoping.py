"""The one queryset-scoping helper, in common so every layer (the evidence core
included) scopes the same way. Resolving *which* workspace a request acts in is
tenants.scoping's job."""

from __future__ import annotations

from django.db.models import QuerySet


def scoped(queryset: QuerySet, workspace) -> QuerySet:
    """Every queryset that serves a request goes through here."""
    return queryset.filter(workspace=workspace)
