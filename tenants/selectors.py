from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from tenants.models import Membership, Workspace
from tenants.scoping import scoped


def membership_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return scoped(Membership.objects.select_related("user"), workspace).order_by("created_at")


def memberships_of_user(*, user) -> QuerySet[Membership]:
    """The user's memberships in active workspaces (what a fresh API login may name)."""
    return (
        Membership.objects.filter(user=user, workspace__in=Workspace.objects.active())
        .select_related("workspace")
        .order_by("created_at")
    )


def workspaces_with_permission(*, user, perm: str) -> QuerySet[Workspace]:
    """Workspaces where `user` holds `perm` (superusers: all), through guardian."""
    return get_objects_for_user(
        user, f"tenants.{perm}", klass=Workspace.objects.active(), accept_global_perms=False
    )


def user_can(user, perm: str, workspace: Workspace) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(f"tenants.{perm}", workspace))
