"""Every create/update/delete door of a policy-bearing model gives the same judgement
(approvals.effective through approvals.door): walked with a loosening, it is filed for
a second person and not applied (a command, which cannot file, refuses it); walked with
a narrowing, it applies at once and files nothing.

The doors (issue 21, item 2), and where each one is walked:

- Tool: API (here), admin change (here; add/delete: test_admin.py), connector
  sync/import (tests/gateway/test_governance.py).
- MachineKey: API PATCH/revoke (here), createkey (here), admin unattended/unsuspend
  (test_closed_world.py, test_subject_custody.py), OAuth consent (tests/keys).
- Connector and its credentials: API and sync (tests/gateway/test_governance.py).
- Workspace: API (here); automation settings: admin (here), outbound_hosts on the API
  (test_closed_world.py).
- WebhookEndpoint: admin add, change, delete (here); delivery faults are inert.
- AuditExportDestination: admin add (here), change (test_closed_world.py).
- Membership: API (here), admin add (here), addmember (here).
- Invitation: API and admin add (here); accepting (tests/tenants/test_invitations.py).
- Any write around the doors: the guard (below).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from approvals.guard import operator_seeding
from approvals.models import ActionRequest, Tool
from keys.models import MachineKey
from notifications.models import (
    WebhookEndpoint,
    WorkspaceAutomationSettings,
)
from notifications.services import automation_settings_update
from oversight.models import AuditExportDestination
from tenants.models import Invitation, Membership, Role, Workspace

TOOL_FORM = {
    "name": "crm.lookup",
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


@dataclass
class Ctx:
    workspace: Workspace
    key: Any  # APIClient with a workspace:admin key of the owner
    session: Any  # APIClient, the owner's session
    admin: Client  # the owner in the admin
    tool: Tool
    agent: MachineKey
    outsider: Any  # a user of another workspace (invitations)
    endpoint: WebhookEndpoint


@dataclass(frozen=True)
class Door:
    loosen: Callable[[Ctx], Any]
    narrow: Callable[[Ctx], Any]
    state: Callable[[Ctx], Any]  # what the loosening would change (must not)
    filed: bool = True  # False: a command refuses instead of filing


@pytest.fixture
def ctx(workspace, make_key, key_client, user_client, make_tool, make_workspace, make_member):
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    _, plaintext = make_key(workspace, scopes=["workspace:admin"], owner=owner)
    agent, _ = make_key(workspace, scopes=["actions:write"], owner=owner)
    admin = Client()
    admin.force_login(owner)
    with operator_seeding():
        automation_settings_update(
            reason="test set-up",
            workspace=workspace,
            actor=_system(),
            changes={"webhook_host_allowlist": ["127.0.0.0/8"], "email_notifications": True},
            operator=True,
        )
        endpoint = WebhookEndpoint.objects.create(
            workspace=workspace,
            name="hooks",
            url="https://127.0.0.1/in",
            secret="s" * 32,
            events=["confirmation.requested"],
            created_by="test",
        )
    return Ctx(
        workspace=workspace,
        key=key_client(plaintext),
        session=user_client(owner, workspace),
        admin=admin,
        tool=make_tool(workspace, "crm.lookup", level="read", confirmation="never"),
        agent=agent,
        outsider=make_member(make_workspace(), Role.MEMBER),
        endpoint=endpoint,
    )


def _system():
    from tests.conftest import SYSTEM

    return SYSTEM


def _tools(c: Ctx):
    return sorted(
        Tool.objects.filter(workspace=c.workspace).values_list("name", "confirmation", "enabled")
    )


def _members(c: Ctx):
    return sorted(
        Membership.objects.filter(workspace=c.workspace).values_list("user__email", "role")
    )


def _invitations(c: Ctx):
    return sorted(Invitation.objects.filter(workspace=c.workspace).values_list("role", flat=True))


def _endpoints(c: Ctx):
    return sorted(
        WebhookEndpoint.objects.filter(workspace=c.workspace, enabled=True).values_list(
            "url", "events"
        )
    )


def _export(c: Ctx):
    return list(
        AuditExportDestination.objects.filter(workspace=c.workspace, enabled=True).values_list(
            "url"
        )
    )


def _admin_tool(c: Ctx, **changes):
    c.admin.post(
        f"/admin/approvals/tool/{c.tool.pk}/change/",
        {"reason": "test change", **TOOL_FORM, **changes},
    )


def _command(*args):
    call_command(*args, stdout=open("/dev/null", "w"))  # noqa: SIM115


def _member(c: Ctx, role: str) -> Membership:
    """The member first seeded with `role` (created on first use)."""
    email = f"m-{role}@x.test"
    found = Membership.objects.filter(workspace=c.workspace, user__email=email).first()
    if found is not None:
        return found
    user = type(c.outsider).objects.create_user(username=email, email=email)
    with operator_seeding():
        return Membership.objects.create(workspace=c.workspace, user=user, role=role)


def _export_form(enabled: bool, batch: int = 500) -> dict:
    form = {
        "kind": "webhook",
        "url": "https://127.0.0.3/x",
        "batch_size": str(batch),
        "reason": "test change",
    }
    return {**form, "enabled": "on"} if enabled else form


DOORS: dict[str, Door] = {
    "api key: rename a tool / ask a human always": Door(
        lambda c: c.key.patch(
            f"/api/v1/tools/{c.tool.pk}",
            {"reason": "test change", "name": "crm.delete_all"},
            format="json",
        ),
        lambda c: c.key.patch(
            f"/api/v1/tools/{c.tool.pk}",
            {"reason": "test change", "confirmation": "always"},
            format="json",
        ),
        _tools,
    ),
    "api session: create a tool whose condition never holds / create it disabled": Door(
        lambda c: c.session.post(
            "/api/v1/tools",
            {
                "reason": "test change",
                "name": "ops.wipe",
                "level": "write",
                "confirmation": "conditional",
                "condition": "false",
            },
            format="json",
        ),
        lambda c: c.session.post(
            "/api/v1/tools",
            {
                "reason": "test change",
                "name": "ops.wipe",
                "level": "write",
                "confirmation": "never",
                "enabled": False,
            },
            format="json",
        ),
        _tools,
    ),
    "admin: rename a tool / ask a human always": Door(
        lambda c: _admin_tool(c, name="crm.delete_all"),
        lambda c: _admin_tool(c, confirmation="always"),
        _tools,
    ),
    "api key: switch unattended on / revoke the key": Door(
        lambda c: c.key.patch(
            f"/api/v1/keys/{c.agent.pk}",
            {"reason": "test change", "unattended_mode": True},
            format="json",
        ),
        lambda c: c.key.post(
            f"/api/v1/keys/{c.agent.pk}/revoke", {"reason": "test change"}, format="json"
        ),
        lambda c: [
            (k.unattended_mode, k.revoked_at is None)
            for k in MachineKey.objects.filter(pk=c.agent.pk)
        ],
    ),
    "command createkey: a governance scope / an action scope": Door(
        lambda c: _command(
            "createkey",
            c.workspace.slug,
            "--name",
            "k",
            "--owner",
            c.agent.owner.email,
            "--scopes",
            "tools:write",
            "--reason",
            "test change",
        ),
        lambda c: _command(
            "createkey",
            c.workspace.slug,
            "--name",
            "k",
            "--owner",
            c.agent.owner.email,
            "--scopes",
            "actions:read",
            "--reason",
            "test change",
        ),
        lambda c: sorted(MachineKey.objects.filter(workspace=c.workspace).values_list("name")),
        filed=False,
    ),
    "api session: writes on / writes off": Door(
        lambda c: c.session.patch(
            "/api/v1/workspace", {"reason": "test change", "writes_enabled": True}, format="json"
        ),
        lambda c: c.session.patch(
            "/api/v1/workspace",
            {"reason": "test change", "confirmation_ttl_seconds": 600},
            format="json",
        ),
        lambda c: list(
            Workspace.objects.filter(pk=c.workspace.pk).values_list(
                "writes_enabled", "outbound_allowed", "confirmation_ttl"
            )
        ),
    ),
    "admin: approver e-mail off / auto-suspend on": Door(
        lambda c: c.admin.post(
            f"/admin/notifications/workspaceautomationsettings/{c.workspace.pk}/change/",
            {"reason": "test change"},
        ),
        lambda c: c.admin.post(
            f"/admin/notifications/workspaceautomationsettings/{c.workspace.pk}/change/",
            {"reason": "test change", "email_notifications": "on", "anomaly_auto_suspend": "on"},
        ),
        lambda c: list(
            WorkspaceAutomationSettings.objects.filter(workspace=c.workspace).values_list(
                "email_notifications", "anomaly_auto_suspend"
            )
        ),
    ),
    "admin: add a webhook endpoint / rename one": Door(
        lambda c: c.admin.post(
            "/admin/notifications/webhookendpoint/add/",
            {
                "reason": "test change",
                "workspace": str(c.workspace.pk),
                "name": "more",
                "url": "https://127.0.0.2/more",
                "events": ["action.approved"],
            },
        ),
        lambda c: c.admin.post(
            f"/admin/notifications/webhookendpoint/{c.endpoint.pk}/change/",
            {
                "reason": "test change",
                "name": "renamed",
                "url": c.endpoint.url,
                "events": c.endpoint.events,
                "enabled": "on",
            },
        ),
        _endpoints,
    ),
    "admin: delete a webhook endpoint / rename one": Door(
        lambda c: c.admin.post(
            f"/admin/notifications/webhookendpoint/{c.endpoint.pk}/delete/",
            {"reason": "test change", "post": "yes"},
        ),
        lambda c: c.admin.post(
            f"/admin/notifications/webhookendpoint/{c.endpoint.pk}/change/",
            {
                "reason": "test change",
                "name": "renamed",
                "url": c.endpoint.url,
                "events": c.endpoint.events,
                "enabled": "on",
            },
        ),
        _endpoints,
    ),
    "admin: add an export destination switched on / switched off": Door(
        lambda c: c.admin.post(
            "/admin/oversight/auditexportdestination/add/",
            {"workspace": str(c.workspace.pk), **_export_form(True)},
        ),
        lambda c: c.admin.post(
            "/admin/oversight/auditexportdestination/add/",
            {"workspace": str(c.workspace.pk), **_export_form(False)},
        ),
        _export,
    ),
    "api key: add an approver / add a member": Door(
        lambda c: c.key.post(
            "/api/v1/members",
            {"reason": "test change", "email": "n@x.test", "role": "approver"},
            format="json",
        ),
        lambda c: c.key.post(
            "/api/v1/members",
            {"reason": "test change", "email": "n@x.test", "role": "member"},
            format="json",
        ),
        _members,
    ),
    "api session: raise a member to approver / lower an approver": Door(
        lambda c: c.session.patch(
            f"/api/v1/members/{_member(c, 'member').pk}",
            {"reason": "test change", "role": "approver"},
            format="json",
        ),
        lambda c: c.session.patch(
            f"/api/v1/members/{_member(c, 'approver').pk}",
            {"reason": "test change", "role": "auditor"},
            format="json",
        ),
        lambda c: sorted(_member(c, r).role for r in ("member", "approver")),
    ),
    "api session: invite an approver / invite an auditor": Door(
        lambda c: c.session.post(
            "/api/v1/members",
            {"reason": "test change", "email": c.outsider.email, "role": "approver"},
            format="json",
        ),
        lambda c: c.session.post(
            "/api/v1/members",
            {"reason": "test change", "email": c.outsider.email, "role": "auditor"},
            format="json",
        ),
        _invitations,
    ),
    "admin: invite an approver / invite an auditor": Door(
        lambda c: c.admin.post(
            "/admin/tenants/membership/add/",
            {
                "reason": "test change",
                "workspace": str(c.workspace.pk),
                "email": c.outsider.email,
                "role": "approver",
            },
        ),
        lambda c: c.admin.post(
            "/admin/tenants/membership/add/",
            {
                "reason": "test change",
                "workspace": str(c.workspace.pk),
                "email": c.outsider.email,
                "role": "auditor",
            },
        ),
        _invitations,
    ),
    "admin: add an approver / add a member": Door(
        lambda c: c.admin.post(
            "/admin/tenants/membership/add/",
            {
                "reason": "test change",
                "workspace": str(c.workspace.pk),
                "email": "n@x.test",
                "role": "approver",
            },
        ),
        lambda c: c.admin.post(
            "/admin/tenants/membership/add/",
            {
                "reason": "test change",
                "workspace": str(c.workspace.pk),
                "email": "n@x.test",
                "role": "member",
            },
        ),
        _members,
    ),
    "command addmember: an approver / a member": Door(
        lambda c: _command(
            "addmember",
            c.workspace.slug,
            "n@x.test",
            "--role",
            "approver",
            "--reason",
            "test change",
        ),
        lambda c: _command(
            "addmember", c.workspace.slug, "n@x.test", "--role", "member", "--reason", "test change"
        ),
        _members,
        filed=False,
    ),
}


def _pending(c: Ctx) -> int:
    return ActionRequest.objects.filter(workspace=c.workspace, status="pending").count()


@pytest.mark.parametrize("name", sorted(DOORS))
def test_a_loosening_through_any_door_is_filed_not_applied(ctx, name):
    door = DOORS[name]
    before = door.state(ctx)
    if door.filed:
        door.loosen(ctx)
        assert _pending(ctx) == 1, name
    else:
        with pytest.raises(CommandError, match="loosens governance"):
            door.loosen(ctx)
        assert _pending(ctx) == 0
    assert door.state(ctx) == before, name


@pytest.mark.parametrize("name", sorted(DOORS))
def test_a_narrowing_through_any_door_applies_at_once(ctx, name):
    door = DOORS[name]
    before = door.state(ctx)
    door.narrow(ctx)
    assert _pending(ctx) == 0, name
    after = door.state(ctx)
    if name.startswith(("admin: add a webhook", "admin: delete a webhook")):
        # Renaming changes nothing the effective state reads: it applied all the same.
        assert WebhookEndpoint.objects.get(pk=ctx.endpoint.pk).name == "renamed"
    elif name.startswith("admin: add an export"):
        assert AuditExportDestination.objects.filter(workspace=ctx.workspace, enabled=False)
    else:
        assert after != before, name


def test_a_key_snapshot_holds_every_classified_facet(ctx):
    """What the door and the guard compare for a key covers every facet field, the
    credential kind and the OAuth client included."""
    from approvals import effective
    from approvals.guard import snapshot
    from approvals.proposals import key_unsuspend

    concrete = {f.name for f in MachineKey._meta.concrete_fields}
    classified = {k for facet in effective.KEY_FACETS for k in facet.fields} & concrete
    assert classified <= set(snapshot(ctx.agent))
    assert classified <= set(key_unsuspend(ctx.agent).before)


def _webhook_on(workspace):
    from notifications.services import endpoint_create

    endpoint_create(
        reason="test set-up",
        workspace=workspace,
        name="around",
        url="https://127.0.0.1/around",
        events=["action.approved"],
        actor=_system(),
    )


def _export_on(workspace):
    from oversight.scheduled_export import destination_configure

    destination_configure(
        reason="test set-up",
        workspace=workspace,
        kind="webhook",
        url="https://127.0.0.1/x",
        actor=_system(),
    )


def _approver(workspace):
    from tenants.services import membership_add, user_get_or_create

    user = user_get_or_create(email="around@x.test")
    membership_add(
        reason="test set-up", workspace=workspace, user=user, role=Role.APPROVER, actor=_system()
    )


def _invite_approver(workspace, outsider):
    from tenants.services import invitation_create

    invitation_create(
        reason="test set-up",
        workspace=workspace,
        user=outsider,
        role=Role.APPROVER,
        actor=_system(),
    )


AROUND = {
    "webhook created on": lambda c: _webhook_on(c.workspace),
    "export created on": lambda c: _export_on(c.workspace),
    "approver added": lambda c: _approver(c.workspace),
    "approver invited": lambda c: _invite_approver(c.workspace, c.outsider),
    "tool renamed": lambda c: Tool.objects.filter(pk=c.tool.pk).update(name="crm.delete_all"),
}


@pytest.mark.parametrize("write", sorted(AROUND))
def test_the_guard_refuses_a_write_around_the_door(ctx, write):
    from common.errors import WardenError

    with pytest.raises(WardenError) as refused:
        AROUND[write](ctx)
    assert refused.value.code == "approval_required"
