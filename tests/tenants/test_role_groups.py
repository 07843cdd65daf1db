"""Roles are guardian group permissions: a member holds exactly their role's
permissions through their role's group; nothing is copied per member."""

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import get_perms

from approvals.guard import operator_seeding
from common.actor import Actor
from tenants.models import (
    ROLE_PERMISSIONS,
    Membership,
    Role,
    WorkspaceUserObjectPermission,
    role_group_name,
)
from tenants.services import membership_add, membership_change_role, membership_remove

SYSTEM = Actor.system("tests")


@pytest.mark.parametrize("role", list(Role))
def test_a_member_holds_exactly_their_roles_permissions(workspace, make_member, role):
    user = make_member(workspace, role)
    assert set(get_perms(user, workspace)) == ROLE_PERMISSIONS[role]
    assert list(user.groups.values_list("name", flat=True)) == [role_group_name(workspace.pk, role)]
    assert not WorkspaceUserObjectPermission.objects.filter(user=user).exists()


def test_each_workspace_has_one_group_per_role(make_workspace):
    first, second = make_workspace(), make_workspace()
    for workspace in (first, second):
        names = {role_group_name(workspace.pk, role) for role in Role}
        assert Group.objects.filter(name__in=names).count() == len(Role)


def test_a_role_change_moves_the_member_to_the_new_group(workspace, make_member):
    user = make_member(workspace, Role.ADMIN)
    membership = Membership.objects.get(workspace=workspace, user=user)
    with operator_seeding():
        membership_change_role(
            reason="test set-up", membership=membership, role=Role.AUDITOR, actor=SYSTEM
        )
    user = type(user).objects.get(pk=user.pk)  # fresh: no cached permissions
    assert set(get_perms(user, workspace)) == ROLE_PERMISSIONS[Role.AUDITOR]
    assert user.groups.count() == 1


def test_removal_takes_every_permission_and_leaves_other_workspaces(make_workspace, make_member):
    here, there = make_workspace(), make_workspace()
    user = make_member(here, Role.ADMIN)
    with operator_seeding():
        membership_add(
            reason="test set-up", workspace=there, user=user, role=Role.APPROVER, actor=SYSTEM
        )
        membership_remove(
            reason="test set-up",
            membership=Membership.objects.get(workspace=here, user=user),
            actor=SYSTEM,
        )
    user = type(user).objects.get(pk=user.pk)
    assert get_perms(user, here) == []
    assert set(get_perms(user, there)) == ROLE_PERMISSIONS[Role.APPROVER]
