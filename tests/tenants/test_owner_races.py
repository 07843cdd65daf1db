"""Concurrent owner changes on PostgreSQL: the last owner survives, and the loser of the
race gets a clear `last_owner`, never a deadlock or a 500."""

import threading

import pytest
from django.db import connection, connections

from common.actor import Actor
from common.errors import WardenError
from tenants.models import Membership, Role
from tenants.services import membership_change_role, membership_remove

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: select_for_update is a no-op on SQLite")


def race(*calls):
    """Run each call in its own thread and connection; return what each raised or returned."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as exc:  # recorded, asserted by the test
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.fixture
def two_owners(workspace, make_member):
    make_member(workspace, Role.OWNER)
    owners = list(Membership.objects.filter(workspace=workspace, role=Role.OWNER))
    assert len(owners) == 2
    return owners


def actor_for(membership):
    return Actor.for_user(membership.user)


@pytest.mark.parametrize("attempt", range(3))
def test_two_owners_demoting_each_other_leave_one_owner(workspace, two_owners, attempt):
    a, b = two_owners
    outcomes = race(
        lambda: membership_change_role(
            reason="test set-up", membership=a, role=Role.ADMIN, actor=actor_for(b)
        ),
        lambda: membership_change_role(
            reason="test set-up", membership=b, role=Role.ADMIN, actor=actor_for(a)
        ),
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], WardenError) and refused[0].code in (
        "last_owner",
        "forbidden_by_scope",  # the winner already demoted the loser's actor
    ), refused
    assert Membership.objects.filter(workspace=workspace, role=Role.OWNER).count() == 1


@pytest.mark.parametrize("attempt", range(3))
def test_two_owners_removed_at_once_leave_one_owner(workspace, two_owners, attempt):
    a, b = two_owners
    system = Actor.system("tests")
    outcomes = race(
        lambda: membership_remove(reason="test set-up", membership=a, actor=system),
        lambda: membership_remove(reason="test set-up", membership=b, actor=system),
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], WardenError) and refused[0].code == "last_owner", refused
    assert Membership.objects.filter(workspace=workspace, role=Role.OWNER).count() == 1


def test_adding_one_user_twice_at_once_is_a_conflict_not_a_crash(workspace, make_user):
    from tenants.services import membership_add

    user = make_user()
    system = Actor.system("tests")
    outcomes = race(
        lambda: membership_add(
            reason="test set-up", workspace=workspace, user=user, role=Role.MEMBER, actor=system
        ),
        lambda: membership_add(
            reason="test set-up", workspace=workspace, user=user, role=Role.MEMBER, actor=system
        ),
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], WardenError) and refused[0].code == "conflict", refused
    assert Membership.objects.filter(workspace=workspace, user=user).count() == 1


def test_removing_one_member_twice_at_once_is_not_found_not_a_crash(workspace, make_member):
    user = make_member(workspace, Role.APPROVER)
    membership = Membership.objects.get(workspace=workspace, user=user)
    system = Actor.system("tests")
    outcomes = race(
        lambda: membership_remove(reason="test set-up", membership=membership, actor=system),
        lambda: membership_remove(reason="test set-up", membership=membership, actor=system),
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], WardenError) and refused[0].code == "not_found", refused
    assert not Membership.objects.filter(pk=membership.pk).exists()
