from django.db.models import QuerySet
from django.utils import timezone
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import get_objects_for_user

from tenants.models import Invitation, Membership, Workspace
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
    """One question to guardian (services, which hold an Actor, not a Principal)."""
    return bool(user and user.is_authenticated and user.has_perm(f"tenants.{perm}", workspace))


def workspace_permissions(*, user, workspace: Workspace) -> frozenset[str]:
    """Everything `user` may do in `workspace`, asked of guardian once (its role
    group's permissions; superusers all) so a request can check many for free."""
    if not (user and user.is_authenticated):
        return frozenset()
    return frozenset(ObjectPermissionChecker(user).get_perms(workspace))


def permission_checker(user) -> ObjectPermissionChecker:
    """A guardian checker that remembers each workspace's permissions once fetched:
    for pages (the admin) that ask about many objects of a few workspaces."""
    return ObjectPermissionChecker(user)


def open_invitations_for(*, user) -> QuerySet[Invitation]:
    """A person's own open invitations (never another person's)."""
    return Invitation.objects.filter(
        user=user,
        accepted_at__isnull=True,
        declined_at__isnull=True,
        expires_at__gt=timezone.now(),
        workspace__deleted_at__isnull=True,
    ).select_related("workspace", "user")
