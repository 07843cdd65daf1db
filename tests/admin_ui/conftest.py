"""Admin UI fixtures: one logged-in browser-like client per role, and pending
confirmations created straight in the database (fast, for volume and escaping tests;
the decision tests go through the real API and services)."""

import hashlib
import itertools
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ConfirmationRequest, Tool
from tenants.models import Role

ADMIN_ROLES = (Role.OWNER, Role.ADMIN, Role.APPROVER, Role.AUDITOR, Role.MEMBER)
_n = itertools.count(1)


@pytest.fixture
def admin_client_for():
    def make(user):
        client = Client(enforce_csrf_checks=False)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def role_users(workspace, make_member):
    """One user per role in `workspace` (the owner is the workspace's creator)."""
    users = {role: make_member(workspace, role) for role in ADMIN_ROLES if role != Role.OWNER}
    users[Role.OWNER] = workspace.memberships.get(role=Role.OWNER).user
    return users


@pytest.fixture
def make_tool(db):
    def make(workspace, name="crm.update", **fields):
        defaults = {"level": "write", "confirmation": "always", "data_classes": ["pii"]}
        defaults.update(fields)
        with operator_seeding():  # set-up: adding an enabled tool is governed
            tool, _ = Tool.objects.get_or_create(workspace=workspace, name=name, defaults=defaults)
        return tool

    return make


def _digest(value) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def pending_rows(
    workspace,
    key,
    tool,
    count,
    *,
    params=None,
    reason="",
    summary=None,
    irreversible=False,
    start=None,
):
    """Unsaved (ActionRequest, ConfirmationRequest) pairs, oldest first."""
    start = start or timezone.now() - timedelta(seconds=count + 60)
    actions, confirmations = [], []
    for i in range(count):
        created = start + timedelta(seconds=i)
        action = ActionRequest(
            id=uuid.uuid4(),
            workspace=workspace,
            key=key,
            requested_by=f"key:{key.pk}",
            accountable_user=key.owner,
            tool=tool,
            tool_name=tool.name,
            params=params if params is not None else {"n": i},
            params_digest=_digest(i),
            reason=reason,
            decision=ActionRequest.Decision.REQUIRES_CONFIRMATION,
            status=ActionRequest.Status.PENDING,
            policy_version=workspace.policy_version,
            created_at=created,
        )
        actions.append(action)
        confirmations.append(
            ConfirmationRequest(
                workspace=workspace,
                action_request=action,
                token_digest=_digest(uuid.uuid4()),
                params_digest=action.params_digest,
                summary=summary if summary is not None else f"Update record {i}",
                irreversible=irreversible,
                approvals_required=1,
                created_at=created,
                expires_at=created + timedelta(hours=24),
            )
        )
    return actions, confirmations


@pytest.fixture
def make_pending(make_tool):
    def make(workspace, key, count=1, tool=None, **kwargs):
        tool = tool or make_tool(workspace)
        actions, confirmations = pending_rows(workspace, key, tool, count, **kwargs)
        ActionRequest.objects.bulk_create(actions, batch_size=2000)
        ConfirmationRequest.objects.bulk_create(confirmations, batch_size=2000)
        return confirmations

    return make
