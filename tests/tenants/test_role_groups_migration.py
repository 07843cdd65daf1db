"""Migration tenants.0005: per-member guardian copies become role groups, and back."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from guardian.shortcuts import get_perms

from tenants.models import ROLE_PERMISSIONS, Workspace, WorkspaceUserObjectPermission

BEFORE = [("tenants", "0004_plain_copy_retention")]
AFTER = [("tenants", "0005_role_groups")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_members_keep_exactly_their_roles_permissions_through_groups():
    old = _migrate(BEFORE)
    OldWorkspace = old.get_model("tenants", "Workspace")
    OldMembership = old.get_model("tenants", "Membership")
    OldUserPerm = old.get_model("tenants", "WorkspaceUserObjectPermission")
    OldUser = old.get_model("auth", "User")
    Permission = old.get_model("auth", "Permission")
    workspace = OldWorkspace.objects.create(slug="legacy", name="Legacy")
    roles = {"owner@legacy.test": "owner", "auditor@legacy.test": "auditor"}
    for email, role in roles.items():
        user = OldUser.objects.create(username=email, email=email)
        OldMembership.objects.create(workspace=workspace, user=user, role=role)
        for codename in ROLE_PERMISSIONS[role]:
            OldUserPerm.objects.create(
                user=user,
                permission=Permission.objects.get(
                    content_type__app_label="tenants", codename=codename
                ),
                content_object=workspace,
            )

    _migrate(AFTER)
    workspace = Workspace.objects.get(slug="legacy")
    users = {u.email: u for u in get_user_model().objects.filter(email__in=roles)}
    for email, role in roles.items():
        assert set(get_perms(users[email], workspace)) == ROLE_PERMISSIONS[role]
    assert not WorkspaceUserObjectPermission.objects.exists()
    assert Group.objects.filter(name__startswith=f"workspace:{workspace.pk}:").count() == 5

    reverted = _migrate(BEFORE)  # reversible: the per-member copies come back
    copies = reverted.get_model("tenants", "WorkspaceUserObjectPermission").objects
    assert copies.count() == sum(len(ROLE_PERMISSIONS[role]) for role in roles.values())
    assert not Group.objects.filter(name__startswith="workspace:").exists()
    # Forward to the newest migrations of every app (going back to tenants 0004 also
    # unapplied the apps that depend on it): later tests need the whole schema.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    for email, role in roles.items():
        assert set(get_perms(users[email], workspace)) == ROLE_PERMISSIONS[role]
