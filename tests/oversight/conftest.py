"""Oversight tests reuse the notification fixtures (receiver, endpoints, agent).

Synthetic workspaces for posture: one locked down, one permissive, built from the
same rows a real workspace has (settings, tools, keys, recent decisions)."""

import hashlib
import itertools
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.guard import operator_seeding
from approvals.models import ActionRequest, Tool
from tests.notifications.conftest import (  # noqa: F401 - the scheduled work notifies
    SYSTEM,
    allow_http,
    ask_pending,
    eager_retries,
    gated_tool,
    make_endpoint,
    receiver,
)

_n = itertools.count(1)


@pytest.fixture
def add_tool(db):
    def add(workspace, name, level="read", data_classes=(), confirmation="never", **fields):
        with operator_seeding():
            return Tool.objects.create(
                workspace=workspace,
                name=name,
                level=level,
                data_classes=list(data_classes),
                confirmation=confirmation,
                **fields,
            )

    return add


@pytest.fixture
def add_traffic(db):
    """`count` allowed decisions on `tool` by `key`, `age` ago."""

    def add(workspace, key, tool, count, age=timedelta(hours=1)):
        when = timezone.now() - age
        ActionRequest.objects.bulk_create(
            [
                ActionRequest(
                    workspace=workspace,
                    key=key,
                    requested_by=f"key:{key.pk}",
                    accountable_user=key.owner,
                    tool=tool,
                    tool_name=tool.name,
                    params={"n": i},
                    params_digest=hashlib.sha256(f"{next(_n)}".encode()).hexdigest(),
                    decision=ActionRequest.Decision.ALLOWED,
                    status=ActionRequest.Status.ALLOWED,
                    policy_version=workspace.policy_version,
                    created_at=when,
                    id=uuid.uuid4(),
                )
                for i in range(count)
            ]
        )

    return add


@pytest.fixture
def locked_down(make_workspace, make_key, add_tool, add_traffic):
    """Defaults everywhere (dry run, writes off, outbound needs a human, floor on), one
    attended key, no sensitive tools, every write tool confirmed."""
    workspace = make_workspace(slug="locked")
    lookup = add_tool(workspace, "crm.lookup")
    add_tool(workspace, "crm.update", level="write", confirmation="always")
    key, _ = make_key(workspace, scopes=["actions:read"])
    add_traffic(workspace, key, lookup, 20)
    return workspace


@pytest.fixture
def permissive(make_workspace, make_key, add_tool, add_traffic):
    """Live, writes on, unattended outbound, floor off; sensitive tools that never ask;
    one of two keys unattended; most traffic on sensitive tools."""
    workspace = make_workspace(
        slug="open",
        writes_enabled=True,
        mode="live",
        outbound_allowed=True,
        sensitivity_floor=False,
    )
    email = add_tool(workspace, "email.send", level="external", data_classes=["pii"])
    add_tool(workspace, "billing.refund", level="write", data_classes=["financial"])
    lookup = add_tool(workspace, "crm.lookup")
    add_tool(workspace, "vault.read", data_classes=["secrets"])  # no traffic: idle
    key, _ = make_key(workspace, scopes=["actions:read", "actions:external"], name="runner")
    make_key(
        workspace,
        scopes=["actions:read"],
        name="night-bot",
        unattended_mode=True,
        expires_at=timezone.now() + timedelta(days=30),
    )
    add_traffic(workspace, key, email, 10)
    add_traffic(workspace, key, lookup, 5)
    return workspace
