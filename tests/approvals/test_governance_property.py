"""Property: for random sequences of catalog, key and settings edits made by machine
keys, no action that needed a human before the sequence is allowed after it (machine
keys never record a human approval, so none may be allowed)."""

import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
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
    "crm.lookup": {"level": "read", "confirmation": "never"},
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


# The closed world (issue 21): one custody set (an owner's session and the keys they
# own) makes random changes, renames, creations (conditions included) and deletions
# among them. Nobody outside the set approves anything, so no tool name the agent may
# call without a human may appear that was not callable that way before.
NEW_NAMES = ("crm.lookup2", "ops.wipe", "hr.payroll_export")
PROBE = (*sorted(TOOLS), *NEW_NAMES)
NEW_TOOLS = st.fixed_dictionaries(
    {
        "name": st.sampled_from(NEW_NAMES),
        "level": st.sampled_from(["read", "write", "external"]),
        "confirmation": st.sampled_from(["never", "always", "conditional"]),
        "condition": st.sampled_from(["false", "1 == 2", "params.amount > 1"]),
        "irreversible": st.booleans(),
    }
)
CLOSED_WORLD_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["key", "session"]),
        st.one_of(
            st.tuples(st.just("edit"), st.sampled_from(sorted(TOOLS)), TOOL_EDITS),
            st.tuples(
                st.just("rename"),
                st.sampled_from(sorted(TOOLS)),
                st.sampled_from([*sorted(TOOLS), *NEW_NAMES]),
            ),
            st.tuples(st.just("create"), st.none(), NEW_TOOLS),
            st.tuples(st.just("delete"), st.sampled_from(sorted(TOOLS)), st.none()),
            st.tuples(st.just("workspace"), st.none(), WORKSPACE_EDITS),
            st.tuples(st.just("unattended"), st.none(), st.booleans()),
        ),
    ),
    max_size=8,
)


def _allowed(client) -> set[str]:
    return {name for name in PROBE if _ask(client, name) == 200}


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=CLOSED_WORLD_STEPS)
# The two findings of issue 21, always tried first: a reviewed read renamed onto a new
# name, and a tool created with a condition that is always false.
@example(steps=[("key", ("rename", "crm.lookup", "hr.payroll_export"))])
@example(
    steps=[
        (
            "session",
            (
                "create",
                None,
                {
                    "name": "ops.wipe",
                    "level": "write",
                    "confirmation": "conditional",
                    "condition": "false",
                    "irreversible": False,
                },
            ),
        )
    ]
)
def test_one_custody_set_never_lets_an_agent_do_more_without_a_human(steps):
    n = next(_n)
    owner = user_get_or_create(email=f"cw-owner{n}@example.test")
    with operator_seeding():
        workspace = workspace_create(slug=f"cw{n}", name="cw", owner=owner, actor=SYSTEM)
        workspace.writes_enabled, workspace.mode = True, "live"
        workspace.save()
        tools = {
            name: tool_create(workspace=workspace, actor=SYSTEM, name=name, **fields)
            for name, fields in TOOLS.items()
        }
        governor = key_create(
            workspace=workspace,
            name="governor",
            owner=owner,
            scopes=["workspace:admin"],
            tool_allowlist=["*"],
            actor=SYSTEM,
        ).plaintext
        issued = key_create(
            workspace=workspace,
            name="agent",
            owner=owner,
            scopes=["actions:read", "actions:write", "actions:external"],
            tool_allowlist=["*"],
            actor=SYSTEM,
        )
    session = APIClient()
    session.force_login(owner)
    session.credentials(HTTP_X_WARDEN_WORKSPACE=workspace.slug)
    clients = {"key": _client(governor), "session": session}
    agent_client = _client(issued.plaintext)
    before = _allowed(agent_client)
    for who, (kind, name, change) in steps:
        client = clients[who]
        if kind == "edit":
            client.patch(f"/api/v1/tools/{tools[name].pk}", change, format="json")
        elif kind == "rename":
            client.patch(f"/api/v1/tools/{tools[name].pk}", {"name": change}, format="json")
        elif kind == "create":
            client.post("/api/v1/tools", change, format="json")
        elif kind == "delete":
            client.delete(f"/api/v1/tools/{tools[name].pk}")
        elif kind == "workspace" and change:
            client.patch("/api/v1/workspace", change, format="json")
        elif kind == "unattended":
            client.patch(
                f"/api/v1/keys/{issued.key.pk}", {"unattended_mode": change}, format="json"
            )
    grown = _allowed(agent_client) - before
    assert not grown, (grown, steps)
