"""Every state-changing service writes its audit entry in the same transaction: one
entry per change, and a change whose audit row fails to write is rolled back."""

import pytest
from django.db import transaction

from approvals.asking import action_submit
from approvals.catalog import tool_create, tool_delete, tool_update
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, Tool
from audit import services as audit_services
from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry, VersionLog
from keys.models import MachineKey
from keys.services import key_create, key_revoke, key_rotate, key_set_suspended
from tenants.models import Membership, Role, Workspace
from tenants.services import (
    membership_add,
    membership_change_role,
    membership_remove,
    workspace_create,
    workspace_soft_delete,
    workspace_update,
)
from tests.conftest import SYSTEM


class AuditDown(Exception):
    pass


@pytest.fixture
def audit_fails(monkeypatch):
    """Make every audit append fail, as a full disk or a broken constraint would."""

    def arm():
        def boom(*args, **kwargs):
            raise AuditDown("audit write failed")

        monkeypatch.setattr(AuditEntry, "save", boom)
        # The PostgreSQL path writes the entry with one statement, not through save().
        monkeypatch.setattr(audit_services, "_chain_and_write", boom)

    return arm


def _state(workspace):
    workspace.refresh_from_db()
    return (
        workspace.settings_snapshot(),
        workspace.deleted_at,
        sorted((str(m.user_id), m.role) for m in Membership.objects.filter(workspace=workspace)),
        sorted(
            (k.name, k.digest, str(k.revoked_at), str(k.suspended_at))
            for k in MachineKey.objects.filter(workspace=workspace)
        ),
        sorted((t.name, t.level, t.enabled) for t in Tool.objects.filter(workspace=workspace)),
        workspace.policy_version,
        ActionRequest.objects.filter(workspace=workspace).count(),
        AuditEntry.objects.filter(workspace=workspace).count(),
        VersionLog.objects.filter(workspace=workspace).count(),
    )


def _scenarios(workspace, make_member, make_key, make_user):
    member = make_member(workspace, Role.MEMBER)
    key, _ = make_key(workspace, scopes=["actions:read"])
    tool = tool_create(reason="test set-up", workspace=workspace, actor=SYSTEM, name="crm.lookup")
    membership = Membership.objects.get(workspace=workspace, user=member)
    newcomer = make_user()
    return {
        "workspace_update": lambda: workspace_update(
            reason="test set-up", workspace=workspace, actor=SYSTEM, changes={"plan_rank": 9}
        ),
        "workspace_soft_delete": lambda: workspace_soft_delete(
            reason="test set-up", workspace=workspace, actor=SYSTEM
        ),
        "membership_add": lambda: membership_add(
            reason="test set-up",
            workspace=workspace,
            user=newcomer,
            role=Role.AUDITOR,
            actor=SYSTEM,
        ),
        "membership_change_role": lambda: membership_change_role(
            reason="test set-up", membership=membership, role=Role.APPROVER, actor=SYSTEM
        ),
        "membership_remove": lambda: membership_remove(
            reason="test set-up", membership=membership, actor=SYSTEM
        ),
        "key_create": lambda: key_create(
            reason="test set-up",
            workspace=workspace,
            name="new",
            owner=member,
            scopes=["actions:read"],
            actor=SYSTEM,
        ),
        "key_rotate": lambda: key_rotate(key=key, actor=SYSTEM),
        "key_revoke": lambda: key_revoke(key=key, actor=SYSTEM, reason="r"),
        "key_set_suspended": lambda: key_set_suspended(
            key=key, suspended=True, actor=SYSTEM, reason="r"
        ),
        "tool_create": lambda: tool_create(
            reason="test set-up", workspace=workspace, actor=SYSTEM, name="crm.new"
        ),
        "tool_update": lambda: tool_update(
            reason="test set-up", tool=tool, actor=SYSTEM, changes={"level": "write"}
        ),
        "tool_delete": lambda: tool_delete(reason="test set-up", tool=tool, actor=SYSTEM),
        "action_submit": lambda: action_submit(
            key=key, tool_name="crm.lookup", params={"q": 1}, actor=SYSTEM
        ),
    }


SERVICES = [
    "workspace_update",
    "workspace_soft_delete",
    "membership_add",
    "membership_change_role",
    "membership_remove",
    "key_create",
    "key_rotate",
    "key_revoke",
    "key_set_suspended",
    "tool_create",
    "tool_update",
    "tool_delete",
    "action_submit",
]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_writes_its_entry_in_its_own_transaction(
    workspace, make_member, make_key, make_user, service
):
    # Governance is not under test here (tests/approvals/test_governance.py is).
    with operator_seeding():
        run = _scenarios(workspace, make_member, make_key, make_user)[service]
        before = AuditEntry.objects.filter(workspace=workspace).count()
        run()
    assert AuditEntry.objects.filter(workspace=workspace).count() == before + 1


@pytest.mark.parametrize("service", SERVICES)
def test_failed_audit_write_rolls_the_change_back(
    workspace, make_member, make_key, make_user, audit_fails, service
):
    with operator_seeding():
        run = _scenarios(workspace, make_member, make_key, make_user)[service]
        before = _state(workspace)
        audit_fails()
        with pytest.raises(AuditDown), transaction.atomic():  # the test's own savepoint
            run()
    assert _state(workspace) == before


def test_failed_audit_write_rolls_back_workspace_creation(make_user, audit_fails):
    owner = make_user()
    audit_fails()
    with pytest.raises(AuditDown):
        workspace_create(
            reason="test set-up", slug="never", name="Never", owner=owner, actor=SYSTEM
        )
    assert not Workspace.objects.filter(slug="never").exists()


@pytest.mark.django_db(transaction=True)
def test_audit_record_refuses_to_run_outside_a_transaction(workspace):
    from audit.services import audit_record

    event = EVENTS[AuditAction.AUDIT_VERIFIED].event()
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(event, workspace=workspace, actor=SYSTEM)
