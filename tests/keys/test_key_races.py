"""Concurrent key lifecycle calls on PostgreSQL: serialized on the key row, no crash."""

import pytest
from django.db import connection

from audit.models import AuditEntry
from common.actor import Actor
from common.errors import WardenError
from keys.models import MachineKey
from keys.services import key_revoke, key_rotate
from tenants.models import Role
from tenants.services import membership_change_role
from tests.tenants.test_owner_races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _postgres_only(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: select_for_update is a no-op on SQLite")


def test_revoking_one_key_twice_at_once_records_one_revocation(workspace, make_key):
    key, _ = make_key(workspace)
    outcomes = race(
        lambda: key_revoke(reason="test set-up", key=key, actor=SYSTEM),
        lambda: key_revoke(reason="test set-up", key=key, actor=SYSTEM),
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert AuditEntry.objects.filter(action="key.revoked", target_id=str(key.pk)).count() == 1


def test_rotation_racing_revocation_ends_revoked(workspace, make_key):
    key, _ = make_key(workspace)
    outcomes = race(
        lambda: key_rotate(key=key, actor=SYSTEM),
        lambda: key_revoke(reason="test set-up", key=key, actor=SYSTEM),
    )
    for outcome in outcomes:
        assert not isinstance(outcome, Exception) or (
            isinstance(outcome, WardenError) and outcome.code == "conflict"
        ), outcomes
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.previous_digest == ""


def test_rotation_racing_a_role_change_of_its_owner_does_not_deadlock(
    workspace, make_key, make_member
):
    owner = make_member(workspace, Role.ADMIN)
    key, _ = make_key(workspace, owner=owner)
    membership = owner.memberships.get(workspace=workspace)
    # Roles that may not approve: raising to one that may is governed (closed world).
    for role in (Role.MEMBER, Role.AUDITOR, Role.MEMBER):
        outcomes = race(
            lambda: key_rotate(key=key, actor=SYSTEM),
            lambda role=role: membership_change_role(
                reason="test set-up", membership=membership, role=role, actor=SYSTEM
            ),
        )
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert MachineKey.objects.get(pk=key.pk).revoked_at is None
