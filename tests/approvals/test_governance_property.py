"""Property: for random sequences of catalog, key and settings edits made by machine
keys, no action that needed a human before the sequence is allowed after it (machine
keys never record a human approval, so none may be allowed)."""

import io
import itertools
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from approvals.catalog import tool_create
from approvals.governance import GOVERNANCE_SCOPES
from approvals.guard import operator_seeding
from approvals.models import Tool
from gateway.models import Connector
from keys.models import MachineKey
from keys.services import key_create
from notifications.models import WebhookEndpoint
from notifications.services import automation_settings_update
from oversight.models import AuditExportDestination
from tenants.models import Invitation, Membership
from tenants.services import user_get_or_create, workspace_create
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
    _, _, tools, governor, issued, _, _ = _seed("prop")
    agent = issued.plaintext
    governor_client, agent_client = _client(governor), _client(agent)
    needed_a_human = {name for name in TOOLS if _ask(agent_client, name) == 202}
    assert needed_a_human  # the set-up gates something
    for kind, name, change in steps:
        if kind == "tool":
            governor_client.patch(f"/api/v1/tools/{tools[name].pk}", change, format="json")
        elif kind == "workspace" and change:
            governor_client.patch("/api/v1/workspace", change, format="json")
        elif kind == "key":
            governor_client.post(
                "/api/v1/keys",
                {"reason": "test change", "name": f"k{next(_n)}", **change},
                format="json",
            )
    for name in needed_a_human:
        assert _ask(agent_client, name) != 200, (name, steps)


# The closed world (issue 21): one custody set (an owner's session, the owner in the
# admin, a workspace:admin key they own, and the commands an operator runs without
# --break-glass) makes random changes through every door: tool edits, renames,
# creations with conditions, delete + re-create, keys, members and invitations,
# connectors and their credentials, webhook endpoints and the audit export. Nobody
# outside the set approves anything, so the effective permissions (what the agent may
# call without a human, where notifications and evidence go, who may approve, what
# keys and upstreams exist) never grow.
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
ROLES = st.sampled_from(["member", "auditor", "approver", "admin"])
HOSTS = st.sampled_from(["https://127.0.0.1/a", "https://127.0.0.2/b"])
TOOL_STEPS = st.one_of(
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
)
API_ONLY = st.one_of(
    st.tuples(st.just("member"), st.none(), ROLES),
    st.tuples(st.just("invite"), st.none(), ROLES),
    st.tuples(st.just("mint"), st.none(), st.sampled_from(["tools:write", "actions:read"])),
    st.tuples(
        st.just("connector"),
        st.none(),
        st.fixed_dictionaries(
            {
                "url": HOSTS,
                "headers": st.sampled_from([{}, {"Authorization": "Bearer other"}]),
                "enabled": st.booleans(),
            }
        ),
    ),
    st.tuples(st.just("new_connector"), st.none(), HOSTS),
)
ADMIN_ONLY = st.one_of(
    st.tuples(st.just("admin_rename"), st.sampled_from(sorted(TOOLS)), st.sampled_from(NEW_NAMES)),
    st.tuples(st.just("webhook_add"), st.none(), HOSTS),
    st.tuples(st.just("webhook_edit"), st.none(), st.fixed_dictionaries({"url": HOSTS})),
    st.tuples(st.just("webhook_delete"), st.none(), st.none()),
    st.tuples(st.just("export_add"), st.none(), HOSTS),
    st.tuples(st.just("member"), st.none(), ROLES),
)
COMMAND_ONLY = st.one_of(
    st.tuples(st.just("member"), st.none(), ROLES),
    st.tuples(st.just("mint"), st.none(), st.sampled_from(["tools:write", "actions:read"])),
)
CLOSED_WORLD_STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["key", "session"]), st.one_of(TOOL_STEPS, API_ONLY)),
        st.tuples(st.just("admin"), ADMIN_ONLY),
        st.tuples(st.just("command"), COMMAND_ONLY),
    ),
    max_size=6,
)


def _allowed(client) -> set[str]:
    return {name for name in PROBE if _ask(client, name) == 200}


def _seed(prefix: str):
    """A live workspace with the catalog above, an owner, a workspace:admin key and an
    agent key they own, a connector with a credential, one webhook endpoint and no
    export. One seeding for both properties."""
    n = next(_n)
    owner = user_get_or_create(email=f"{prefix}-owner{n}@example.test")
    with operator_seeding():
        workspace = workspace_create(
            reason="test set-up", slug=f"{prefix}{n}", name=prefix, owner=owner, actor=SYSTEM
        )
        workspace.writes_enabled, workspace.mode = True, "live"
        workspace.save()
        automation_settings_update(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            changes={"webhook_host_allowlist": ["127.0.0.0/8"]},
            operator=True,
        )
        tools = {
            name: tool_create(
                workspace=workspace, actor=SYSTEM, name=name, reason="test set-up", **fields
            )
            for name, fields in TOOLS.items()
        }
        governor = key_create(
            reason="test set-up",
            workspace=workspace,
            name="governor",
            owner=owner,
            scopes=["workspace:admin"],
            tool_allowlist=["*"],
            actor=SYSTEM,
        ).plaintext
        issued = key_create(
            reason="test set-up",
            workspace=workspace,
            name="agent",
            owner=owner,
            scopes=["actions:read", "actions:write", "actions:external"],
            tool_allowlist=["*"],
            actor=SYSTEM,
        )
        connector = Connector.objects.create(
            workspace=workspace, name="up", kind="mcp", url="https://127.0.0.1/mcp"
        )
        endpoint = WebhookEndpoint.objects.create(
            workspace=workspace,
            name="hooks",
            url="https://127.0.0.1/in",
            secret="s" * 32,
            events=["confirmation.requested"],
            created_by="seed",
        )
    return workspace, owner, tools, governor, issued, connector, endpoint


def _effective(workspace, agent_client) -> dict:
    """Item 2's effective permissions, as sets that may only shrink without a human."""
    approving = ("owner", "admin", "approver")
    return {
        "callable without a human": _allowed(agent_client),
        "who may approve": set(
            Membership.objects.filter(workspace=workspace, role__in=approving).values_list(
                "user__email", "role"
            )
        ),
        "offered a role that may approve": set(
            Invitation.objects.filter(workspace=workspace, role__in=approving).values_list(
                "user__email", "role"
            )
        ),
        # A key within its minter's bounds is no wider than the set already is; one
        # that changes governance or skips confirmation rules is.
        "keys that govern or skip confirmation": {
            k.name
            for k in MachineKey.objects.filter(workspace=workspace, revoked_at__isnull=True)
            if k.unattended_mode or set(k.scopes) & GOVERNANCE_SCOPES
        },
        "upstreams": set(
            Connector.objects.filter(workspace=workspace, enabled=True).values_list(
                "name", "url", "headers_encrypted"
            )
        ),
        "notifications go to": {
            (e.url, tuple(e.events))
            for e in WebhookEndpoint.objects.filter(workspace=workspace, enabled=True)
        },
        "evidence goes to": set(
            AuditExportDestination.objects.filter(workspace=workspace, enabled=True).values_list(
                "kind", "url", "directory"
            )
        ),
    }


def _quiet(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except CommandError:
        return None  # a command refuses a loosening (it cannot file one)


@pytest.mark.django_db
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(steps=CLOSED_WORLD_STEPS)
# The findings of issue 21, always tried first: a reviewed read renamed onto a new
# name, a tool created with a condition that is always false, and delete + re-create.
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
@example(steps=[("admin", ("webhook_add", None, "https://127.0.0.2/b"))])
@example(steps=[("session", ("invite", None, "approver"))])
def test_one_custody_set_never_lets_an_agent_do_more_without_a_human(steps):
    workspace, owner, tools, governor, issued, connector, endpoint = _seed("cw")
    other = user_get_or_create(email=f"elsewhere{next(_n)}@example.test")
    with operator_seeding():
        workspace_create(
            reason="test set-up", slug=f"else{next(_n)}", name="else", owner=other, actor=SYSTEM
        )
    session = APIClient()
    session.force_login(owner)
    session.credentials(HTTP_X_WARDEN_WORKSPACE=workspace.slug)
    admin = Client()
    admin.force_login(owner)
    clients = {"key": _client(governor), "session": session}
    agent_client = _client(issued.plaintext)
    before = _effective(workspace, agent_client)
    emails = itertools.count(1)
    for who, (kind, name, change) in steps:
        if who == "admin":
            _admin_step(admin, workspace, tools, endpoint, kind, name, change, emails)
            continue
        if who == "command":
            _command_step(workspace, owner, kind, change, emails)
            continue
        client = clients[who]
        if kind == "edit":
            client.patch(f"/api/v1/tools/{tools[name].pk}", change, format="json")
        elif kind == "rename":
            client.patch(
                f"/api/v1/tools/{tools[name].pk}",
                {"reason": "test change", "name": change},
                format="json",
            )
        elif kind == "create":
            client.post("/api/v1/tools", change, format="json")
        elif kind == "delete":
            client.delete(
                f"/api/v1/tools/{tools[name].pk}", {"reason": "test change"}, format="json"
            )
        elif kind == "workspace" and change:
            client.patch("/api/v1/workspace", change, format="json")
        elif kind == "unattended":
            client.patch(
                f"/api/v1/keys/{issued.key.pk}",
                {"reason": "test change", "unattended_mode": change},
                format="json",
            )
        elif kind == "member":
            email = f"m{next(emails)}@example.test"
            client.post(
                "/api/v1/members",
                {"reason": "test change", "email": email, "role": change},
                format="json",
            )
        elif kind == "invite":
            role = change if change != "admin" else "approver"  # admin is not invitable
            client.post(
                "/api/v1/members",
                {"reason": "test change", "email": other.email, "role": role},
                format="json",
            )
        elif kind == "mint":
            client.post(
                "/api/v1/keys",
                {"reason": "test change", "name": f"k{next(emails)}", "scopes": [change]},
                format="json",
            )
        elif kind == "connector":
            client.patch(f"/api/v1/connectors/{connector.pk}", change, format="json")
        elif kind == "new_connector":
            client.post(
                "/api/v1/connectors",
                {"reason": "test change", "name": f"c{next(emails)}", "kind": "mcp", "url": change},
                format="json",
            )
    after = _effective(workspace, agent_client)
    grown = {
        facet: after[facet] - before[facet] for facet in before if after[facet] - before[facet]
    }
    assert not grown, (grown, steps)


TOOL_FORM = {
    "description": "",
    "level": "read",
    "data_classes": "[]",
    "confirmation": "never",
    "condition": "",
    "summary_template": "",
    "secret_params": "[]",
    "enabled": "on",
    "input_schema": "{}",
    "deny_condition": "",
    "deny_reason": "",
}


def _admin_step(admin, workspace, tools, endpoint, kind, name, change, emails):
    if kind == "admin_rename":
        tool = Tool.objects.filter(pk=tools[name].pk).first()
        if tool is not None:
            form = {
                **TOOL_FORM,
                "name": change,
                "level": tool.level,
                "confirmation": tool.confirmation,
                "condition": tool.condition,
                "irreversible": "on" if tool.irreversible else "",
                "data_classes": json.dumps(tool.data_classes),
            }
            if not tool.irreversible:
                del form["irreversible"]
            admin.post(f"/admin/approvals/tool/{tool.pk}/change/", form)
    elif kind == "webhook_add":
        admin.post(
            "/admin/notifications/webhookendpoint/add/",
            {
                "reason": "test change",
                "workspace": str(workspace.pk),
                "name": f"w{next(emails)}",
                "url": change,
                "events": ["action.approved"],
            },
        )
    elif kind == "webhook_edit":
        admin.post(
            f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/",
            {
                "reason": "test change",
                "name": "hooks",
                "events": ["action.approved"],
                "enabled": "on",
                **change,
            },
        )
    elif kind == "webhook_delete":
        admin.post(
            f"/admin/notifications/webhookendpoint/{endpoint.pk}/delete/",
            {"reason": "test change", "post": "yes"},
        )
    elif kind == "export_add":
        admin.post(
            "/admin/oversight/auditexportdestination/add/",
            {
                "reason": "test change",
                "workspace": str(workspace.pk),
                "kind": "webhook",
                "url": change,
                "enabled": "on",
                "batch_size": "500",
            },
        )
    elif kind == "member":
        admin.post(
            "/admin/tenants/membership/add/",
            {
                "reason": "test change",
                "workspace": str(workspace.pk),
                "email": f"a{next(emails)}@example.test",
                "role": change,
            },
        )


def _command_step(workspace, owner, kind, change, emails):
    out = io.StringIO()
    if kind == "member":
        email = f"c{next(emails)}@example.test"
        _quiet(call_command, "addmember", workspace.slug, email, "--role", change, stdout=out)
    elif kind == "mint":
        _quiet(
            call_command,
            "createkey",
            workspace.slug,
            "--name",
            f"cli{next(emails)}",
            "--owner",
            owner.email,
            "--scopes",
            change,
            stdout=out,
        )
