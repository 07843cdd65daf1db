"""Property: for random sequences of catalog, key and settings edits made by machine
keys, no action that needed a human before the sequence is allowed after it (machine
keys never record a human approval, so none may be allowed)."""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from keys.services import key_create
from tenants.models import Role
from tenants.services import membership_add, user_get_or_create, workspace_create
from tests.conftest import SYSTEM

_n = itertools.count(1)

TOOLS = {
    "crm.always": {"level": "write", "confirmation": "always"},
    "crm.cond": {
        "level": "write",
        "confirmation": "conditional",
        "condition": "params.amount > 100",
    },
    "mail.send": {"level": "external", "confirmation": "never"},
    "db.drop": {"level": "write", "confirmation": "never", "irreversible": True},
    "hr.update": {"level": "write", "confirmation": "never", "data_classes": ["pii"]},
    "vault.read": {"level": "read", "confirmation": "never", "data_classes": ["secrets"]},
}
TOOL_EDITS = st.one_of(
    st.fixed_dictionaries({"confirmation": st.sampled_from(["never", "always", "conditional"])}),
    st.fixed_dictionaries({"level": st.sampled_from(["read", "write", "external"])}),
    st.fixed_dictionaries({"irreversible": st.booleans()}),
    st.fixed_dictionaries(
        {"data_classes": st.lists(st.sampled_from(["pii", "secrets"]), unique=True)}
    ),
    st.fixed_dictionaries({"enabled": st.booleans()}),
    st.fixed_dictionaries(
        {
            "confirmation": st.just("conditional"),
            "condition": st.sampled_from(["false", "params.amount > 10000"]),
        }
    ),
    st.fixed_dictionaries({"deny_condition": st.sampled_from(["", "true"])}),
)
WORKSPACE_EDITS = st.fixed_dictionaries(
    {},
    optional={
        "outbound_allowed": st.booleans(),
        "writes_enabled": st.booleans(),
        "sensitivity_floor": st.booleans(),
        "mode": st.sampled_from(["live", "dry_run"]),
    },
)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("tool"), st.sampled_from(sorted(TOOLS)), TOOL_EDITS),
        st.tuples(st.just("workspace"), st.none(), WORKSPACE_EDITS),
        st.tuples(
            st.just("key"),
            st.none(),
            st.fixed_dictionaries(
                {
                    "scopes": st.lists(
                        st.sampled_from(["actions:write", "actions:external", "tools:write"]),
                        unique=True,
                    )
                }
            ),
        ),
    ),
    max_size=8,
)


def _client(plaintext):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def _ask(client, tool):
    return client.post(
        "/api/v1/actions", {"tool": tool, "params": {"amount": 500}}, format="json"
    ).status_code


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_machine_keys_never_loosen_their_own_leash(steps):
    n = next(_n)
    owner = user_get_or_create(email=f"prop-owner{n}@example.test")
    with operator_seeding():
        workspace = workspace_create(slug=f"prop{n}", name="p", owner=owner, actor=SYSTEM)
        workspace.writes_enabled, workspace.mode = True, "live"
        workspace.save()
        member = user_get_or_create(email=f"prop-admin{n}@example.test")
        membership_add(workspace=workspace, user=member, role=Role.OWNER, actor=SYSTEM)
        tools = {
            name: tool_create(workspace=workspace, actor=SYSTEM, name=name, **fields)
            for name, fields in TOOLS.items()
        }
        governor = key_create(
            workspace=workspace,
            name="governor",
            owner=member,
            scopes=["workspace:admin"],
            tool_allowlist=["*"],
            actor=SYSTEM,
        ).plaintext
        agent = key_create(
            workspace=workspace,
            name="agent",
            owner=member,
            scopes=["actions:read", "actions:write", "actions:external"],
            tool_allowlist=["*"],
            actor=SYSTEM,
        ).plaintext
    governor_client, agent_client = _client(governor), _client(agent)
    needed_a_human = {name for name in TOOLS if _ask(agent_client, name) == 202}
    assert needed_a_human  # the set-up gates something
    for kind, name, change in steps:
        if kind == "tool":
            governor_client.patch(f"/api/v1/tools/{tools[name].pk}", change, format="json")
        elif kind == "workspace" and change:
            governor_client.patch("/api/v1/workspace", change, format="json")
        elif kind == "key":
            governor_client.post("/api/v1/keys", {"name": f"k{next(_n)}", **change}, format="json")
    for name in needed_a_human:
        assert _ask(agent_client, name) != 200, (name, steps)
