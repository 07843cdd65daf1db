"""No path around a human: governed operations go through one door (approvals.door).

Each loosening is filed for a second person and applied when they approve it; the
proposer (and the proposing key's chain of custody) cannot approve; narrowing changes
apply at once. The matrix at the end is generated from the registry."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.governance import OPERATIONS, Target
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ConfirmationRequest, Tool
from audit.models import AuditEntry, ExceptionRecord
from keys.models import MachineKey
from tenants.models import Membership, Role, Workspace


def code(response):
    return response.json()["error"]["code"]


def confirm(client, method, url, body, first):
    call = getattr(client, method)
    return call(
        url,
        {**body, "confirmed": True, "confirmation_token": first["confirmation_token"]},
        format="json",
    )


@pytest.fixture
def owner(workspace):
    return Membership.objects.get(workspace=workspace, role=Role.OWNER).user


@pytest.fixture
def second_owner(workspace, make_member):
    """Platform changes are decided by people who may manage what they change."""
    return make_member(workspace, Role.OWNER)


def pending_confirmation():
    return ConfirmationRequest.objects.get(status="pending")


# --- workspace ----------------------------------------------------------------------------


@pytest.fixture
def dry_run_over(workspace):
    with operator_seeding():
        Workspace.objects.filter(pk=workspace.pk).update(
            live_after=timezone.now() - timedelta(hours=1)
        )


def test_going_live_needs_a_second_owner(
    workspace, owner, second_owner, user_client, make_member, approve, dry_run_over
):
    client = user_client(owner, workspace)
    first = client.patch(
        "/api/v1/workspace", {"reason": "test change", "mode": "live"}, format="json"
    )
    assert first.status_code == 202, first.json()
    body = first.json()
    assert body["confirmation_token"].startswith("ct_")
    assert body["governed_operations"] == ["warden.workspace.go_live"]
    assert Workspace.objects.get(pk=workspace.pk).mode == "dry_run"
    action = ActionRequest.objects.get(pk=body["id"])
    assert (action.tool_name, action.key_id) == ("warden.workspace.go_live", None)
    assert action.params["changes"]["mode"] == {"before": "dry_run", "after": "live"}
    confirmation = action.confirmation
    assert code(approve(owner, workspace, confirmation.pk)) == "four_eyes"
    # A plain approver may not decide a platform change (it needs manage_workspace).
    approver = make_member(workspace, Role.APPROVER)
    assert code(approve(approver, workspace, confirmation.pk)) == "forbidden_by_scope"
    assert code(confirm(client, "patch", "/api/v1/workspace", {"mode": "live"}, body)) == (
        "confirmation_pending"
    )
    assert approve(second_owner, workspace, confirmation.pk).status_code == 200
    # Applied by the approval itself: the proposer need not come back.
    assert Workspace.objects.get(pk=workspace.pk).mode == "live"
    collected = confirm(client, "patch", "/api/v1/workspace", {"mode": "live"}, body)
    assert collected.status_code == 200 and collected.json()["mode"] == "live"
    again = confirm(client, "patch", "/api/v1/workspace", {"mode": "live"}, body)
    assert code(again) == "confirmation_used"


def test_one_patch_cannot_loosen_several_settings_at_once(workspace, owner, user_client):
    """Issue example: two approvals off, retention 1 day, plan rank lowered: one PATCH."""
    workspace.require_two_approvals_for_irreversible = True
    workspace.audit_retention_days = 365
    workspace.plan_rank = 5
    with operator_seeding():
        workspace.save()
    response = user_client(owner, workspace).patch(
        "/api/v1/workspace",
        {
            "reason": "test change",
            "require_two_approvals_for_irreversible": False,
            "audit_retention_days": 1,
            "plan_rank": 0,
        },
        format="json",
    )
    assert response.status_code == 202
    assert set(response.json()["governed_operations"]) == {
        "warden.workspace.disable_two_approvals",
        "warden.workspace.shorten_retention",
        "warden.workspace.lower_limits",
    }
    workspace.refresh_from_db()
    assert workspace.require_two_approvals_for_irreversible is True
    assert (workspace.audit_retention_days, workspace.plan_rank) == (365, 5)


def test_narrowing_changes_apply_at_once(workspace, owner, user_client):
    response = user_client(owner, workspace).patch(
        "/api/v1/workspace",
        {
            "reason": "test change",
            "name": "Renamed",
            "confirmation_ttl_seconds": 600,
            "require_two_approvals_for_irreversible": True,
        },
        format="json",
    )
    assert response.status_code == 200
    assert Workspace.objects.get(pk=workspace.pk).name == "Renamed"
    assert not ActionRequest.objects.exists()
    assert AuditEntry.objects.filter(action="workspace.settings_changed").exists()


def test_key_asks_to_enable_writes_and_its_custody_cannot_approve(
    workspace, make_key, key_client, second_owner, make_member, approve
):
    key, plaintext = make_key(
        workspace, scopes=["workspace:admin"], owner=make_member(workspace, Role.OWNER)
    )
    client = key_client(plaintext)
    first = client.patch(
        "/api/v1/workspace", {"reason": "test change", "writes_enabled": True}, format="json"
    )
    assert first.status_code == 202
    confirmation = ActionRequest.objects.get(pk=first.json()["id"]).confirmation
    assert code(approve(key.owner, workspace, confirmation.pk)) == "four_eyes"
    approve(second_owner, workspace, confirmation.pk)
    assert Workspace.objects.get(pk=workspace.pk).writes_enabled is True


def test_unattended_key_cannot_skip_a_governed_change(workspace, make_key, key_client):
    key, plaintext = make_key(workspace, scopes=["workspace:admin"])
    with operator_seeding():
        MachineKey.objects.filter(pk=key.pk).update(unattended_mode=True)
    response = key_client(plaintext).patch(
        "/api/v1/workspace", {"reason": "test change", "outbound_allowed": True}, format="json"
    )
    assert response.status_code == 202


def test_tampered_recall_is_a_mismatch(workspace, owner, second_owner, user_client, approve):
    client = user_client(owner, workspace)
    first = client.patch(
        "/api/v1/workspace", {"reason": "test change", "mode": "live"}, format="json"
    ).json()
    approve(second_owner, workspace, pending_confirmation().pk)
    tampered = confirm(
        client, "patch", "/api/v1/workspace", {"mode": "live", "outbound_allowed": True}, first
    )
    assert code(tampered) == "confirmation_mismatch"


def test_another_human_cannot_use_the_requesters_token(
    workspace, owner, second_owner, user_client, approve
):
    first = (
        user_client(owner, workspace)
        .patch("/api/v1/workspace", {"reason": "test change", "mode": "live"}, format="json")
        .json()
    )
    approve(second_owner, workspace, pending_confirmation().pk)
    stolen = confirm(
        user_client(second_owner, workspace), "patch", "/api/v1/workspace", {"mode": "live"}, first
    )
    assert code(stolen) == "confirmation_mismatch"


def test_patch_needs_workspace_admin(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["keys:write"])
    response = key_client(plaintext).patch(
        "/api/v1/workspace", {"reason": "test change", "mode": "live"}, format="json"
    )
    assert code(response) == "forbidden_by_scope"


def test_deleting_a_workspace_is_governed_and_soft(
    workspace, owner, second_owner, user_client, make_key, key_client, approve
):
    _, agent_key = make_key(workspace)
    client = user_client(owner, workspace)
    first = client.delete("/api/v1/workspace", {"reason": "closing"}, format="json")
    assert first.status_code == 202
    assert first.json()["irreversible"] is True
    approve(second_owner, workspace, pending_confirmation().pk)
    assert Workspace.objects.get(pk=workspace.pk).deleted_at is not None
    assert code(key_client(agent_key).get("/api/v1/whoami")) == "invalid_key"


def test_switching_off_the_sensitivity_floor_needs_two_more_people(
    workspace, owner, second_owner, make_member, user_client, approve
):
    first = user_client(owner, workspace).patch(
        "/api/v1/workspace", {"reason": "test change", "sensitivity_floor": False}, format="json"
    )
    assert first.status_code == 202
    confirmation = pending_confirmation()
    assert confirmation.approvals_required == 2
    approve(second_owner, workspace, confirmation.pk)
    assert Workspace.objects.get(pk=workspace.pk).sensitivity_floor is True
    approve(make_member(workspace, Role.OWNER), workspace, confirmation.pk)
    assert Workspace.objects.get(pk=workspace.pk).sensitivity_floor is False


# --- keys -------------------------------------------------------------------------------------


def test_creating_an_admin_key_is_governed_and_its_secret_goes_to_its_owner(
    workspace, owner, second_owner, user_client, approve
):
    client = user_client(owner, workspace)
    body = {"reason": "test change", "name": "root-agent", "scopes": ["workspace:admin"]}
    first = client.post("/api/v1/keys", body, format="json")
    assert first.status_code == 202
    assert not MachineKey.objects.filter(name="root-agent").exists()
    approve(second_owner, workspace, pending_confirmation().pk)
    key = MachineKey.objects.get(name="root-agent")
    assert key.scopes == ["workspace:admin"] and key.secret_pending
    assert owner.pk in key.custody_user_ids  # the proposer answers for it too
    created = confirm(client, "post", "/api/v1/keys", body, first.json())
    assert created.status_code == 201, created.json()
    assert "key" not in created.json()
    claimed = client.post(f"/api/v1/keys/{key.pk}/claim")
    assert claimed.status_code == 200 and claimed.json()["key"].startswith("wdn_")


def test_plain_keys_are_created_at_once(workspace, owner, user_client):
    response = user_client(owner, workspace).post(
        "/api/v1/keys",
        {"reason": "test change", "name": "reader", "scopes": ["actions:read"]},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["key"].startswith("wdn_")


@pytest.mark.parametrize(
    ("scopes", "expires_in_days"),
    [(["workspace:admin"], 30), (["actions:read"], None), (["actions:read"], 91)],
    ids=["admin-scope", "no-expiry", "too-long"],
)
def test_unattended_keys_must_be_narrow_and_short_lived(
    workspace, owner, user_client, scopes, expires_in_days
):
    body = {"reason": "test change", "name": "robot", "scopes": scopes, "unattended_mode": True}
    if expires_in_days:
        body["expires_at"] = (timezone.now() + timedelta(days=expires_in_days)).isoformat()
    response = user_client(owner, workspace).post("/api/v1/keys", body, format="json")
    assert (response.status_code, code(response)) == (400, "validation_error")


def test_unattended_key_creation_is_governed(workspace, owner, make_member, user_client, approve):
    client = user_client(owner, workspace)
    body = {
        "reason": "test change",
        "name": "robot",
        "scopes": ["actions:read"],
        "unattended_mode": True,
        "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
    }
    first = client.post("/api/v1/keys", body, format="json")
    assert first.status_code == 202
    assert ActionRequest.objects.get().tool_name == "warden.key.enable_unattended"
    approve(make_member(workspace, Role.ADMIN), workspace, pending_confirmation().pk)
    assert MachineKey.objects.get(name="robot").unattended_mode is True


def test_a_human_cannot_launder_four_eyes_through_a_key_made_for_someone_else(
    workspace, make_member, user_client
):
    """Issue example: an admin made a key owned by a member, asked through it, then
    approved the request himself."""
    admin = make_member(workspace, Role.ADMIN)
    member = make_member(workspace, Role.MEMBER)
    response = user_client(admin, workspace).post(
        "/api/v1/keys",
        {
            "reason": "test change",
            "name": "laundered",
            "owner": member.email,
            "scopes": ["actions:write"],
            "tool_allowlist": ["billing.*"],
        },
        format="json",
    )
    assert response.status_code == 201
    assert "key" not in response.json()  # the secret went to the member, not the admin
    key = MachineKey.objects.get(name="laundered")
    assert {admin.pk, member.pk} <= set(key.custody_user_ids)


def test_a_minting_key_owner_cannot_approve_the_minted_keys_requests(
    workspace, make_key, make_member, key_client, user_client, approve, make_tool
):
    workspace.writes_enabled = True
    with operator_seeding():
        workspace.save()
    make_tool(workspace, "billing.refund", level="write", confirmation="always")
    alice = make_member(workspace, Role.ADMIN)
    bob = make_member(workspace, Role.APPROVER)
    minter, plaintext = make_key(
        workspace, scopes=["keys:write", "actions:write"], tools=["billing.*"], owner=alice
    )
    minted = key_client(plaintext).post(
        "/api/v1/keys",
        {
            "reason": "test change",
            "name": "child",
            "owner": bob.email,
            "scopes": ["actions:write"],
            "tool_allowlist": ["billing.*"],
        },
        format="json",
    )
    assert minted.status_code == 201, minted.json()
    assert "key" not in minted.json()
    child = MachineKey.objects.get(name="child")
    assert child.minted_by_id == minter.pk
    secret = user_client(bob, workspace).post(f"/api/v1/keys/{child.pk}/claim").json()["key"]
    first = key_client(secret).post(
        "/api/v1/actions", {"tool": "billing.refund", "params": {"amount": 5}}, format="json"
    )
    assert first.status_code == 202
    confirmation = pending_confirmation()
    assert code(approve(alice, workspace, confirmation.pk)) == "four_eyes"  # minter's owner
    assert code(approve(bob, workspace, confirmation.pk)) == "four_eyes"  # owner
    assert (
        approve(make_member(workspace, Role.APPROVER), workspace, confirmation.pk).status_code
        == 200
    )


def test_minted_keys_are_bounded_by_their_minter(workspace, make_key, key_client):
    """Issue example: crm.*, one IP, 5/min, one day minted `*`, any IP, no expiry, 100k/min."""
    _, plaintext = make_key(
        workspace,
        scopes=["keys:write", "actions:read"],
        tools=["crm.*"],
        allowed_ips=["127.0.0.1/32"],
        rate_limit_per_minute=5,
        expires_at=timezone.now() + timedelta(days=1),
    )
    client = key_client(plaintext)
    base = {"name": "wide", "scopes": ["actions:read"], "tool_allowlist": ["crm.lookup"]}
    narrow_expiry = (timezone.now() + timedelta(hours=1)).isoformat()
    wider = [
        {"tool_allowlist": ["*"]},
        {"allowed_ips": []},
        {"expires_at": None},
        {"rate_limit_per_minute": 100_000},
    ]
    for change in wider:
        body = {
            "reason": "test change",
            **base,
            "allowed_ips": ["127.0.0.1/32"],
            "expires_at": narrow_expiry,
            **change,
        }
        body = {k: v for k, v in body.items() if v is not None}
        response = client.post("/api/v1/keys", body, format="json")
        assert code(response) == "forbidden_by_scope", (change, response.json())
    assert not MachineKey.objects.filter(name="wide").exists()
    ok = {
        "reason": "test change",
        **base,
        "allowed_ips": ["127.0.0.1/32"],
        "expires_at": narrow_expiry,
    }
    assert client.post("/api/v1/keys", ok, format="json").status_code == 201


def test_a_weaker_key_cannot_revoke_a_stronger_one(workspace, make_key, key_client):
    admin_key, _ = make_key(workspace, scopes=["workspace:admin"])
    _, plaintext = make_key(workspace, scopes=["keys:write", "keys:read"])
    response = key_client(plaintext).post(
        f"/api/v1/keys/{admin_key.pk}/revoke", {"reason": "test change"}, format="json"
    )
    assert code(response) == "forbidden_by_scope"
    admin_key.refresh_from_db()
    assert admin_key.revoked_at is None


# --- tools ------------------------------------------------------------------------------------


def test_a_tools_write_key_cannot_remove_its_own_gate(workspace, make_key, key_client, make_tool):
    """Issue example: PATCH confirmation never, then the same refund was allowed."""
    workspace.writes_enabled = True
    workspace.sensitivity_floor = False  # the tool's own rule is what is under test
    with operator_seeding():
        workspace.save()
    tool = make_tool(
        workspace,
        "billing.refund",
        level="write",
        confirmation="conditional",
        condition="params.amount > 1000",
    )
    _, plaintext = make_key(workspace, scopes=["tools:write", "actions:write"], tools=["billing.*"])
    client = key_client(plaintext)
    refund = {"tool": "billing.refund", "params": {"amount": 5000}}
    assert client.post("/api/v1/actions", refund, format="json").status_code == 202
    patched = client.patch(
        f"/api/v1/tools/{tool.pk}",
        {"reason": "test change", "confirmation": "never"},
        format="json",
    )
    assert patched.status_code == 202
    assert patched.json()["governed_operations"] == ["warden.tool.lower_confirmation"]
    assert client.post("/api/v1/actions", refund, format="json").status_code == 202
    # Tightening applies at once.
    tightened = client.patch(
        f"/api/v1/tools/{tool.pk}",
        {"reason": "test change", "confirmation": "always"},
        format="json",
    )
    assert tightened.status_code == 200


def test_tool_approved_by_a_second_person_takes_effect(
    workspace, owner, make_member, user_client, approve
):
    response = user_client(owner, workspace).post(
        "/api/v1/tools",
        {"reason": "test change", "name": "crm.lookup", "level": "read"},
        format="json",
    )
    assert response.status_code == 202  # confirmation never by default: governed
    assert not Tool.objects.filter(name="crm.lookup").exists()
    approve(make_member(workspace, Role.ADMIN), workspace, pending_confirmation().pk)
    assert Tool.objects.get(workspace=workspace, name="crm.lookup").confirmation == "never"


def test_a_disabled_tool_is_created_at_once(workspace, owner, user_client):
    response = user_client(owner, workspace).post(
        "/api/v1/tools",
        {
            "reason": "test change",
            "name": "crm.update",
            "level": "write",
            "confirmation": "always",
            "enabled": False,
        },
        format="json",
    )
    assert response.status_code == 201


def test_an_enabled_tool_is_governed_even_when_it_always_asks(workspace, owner, user_client):
    response = user_client(owner, workspace).post(
        "/api/v1/tools",
        {"reason": "test change", "name": "crm.update", "level": "write", "confirmation": "always"},
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["governed_operations"] == ["warden.tool.create"]


# --- members ------------------------------------------------------------------------------------


def test_removing_or_demoting_the_last_approver_is_a_governed_operation():
    from approvals.governance import loosening

    last = {"user": "a@x", "role": "approver", "other_approvers": 0}
    names = lambda before, after: [op.name for op in loosening(Target.MEMBERSHIP, before, after)]  # noqa: E731
    assert names(last, None) == ["warden.member.remove_last_approver"]
    assert names(last, {**last, "role": "member"}) == ["warden.member.remove_last_approver"]
    assert names({**last, "other_approvers": 1}, None) == []
    assert names(last, {**last, "role": "admin"}) == ["warden.member.grant_admin"]


def test_raising_a_member_to_admin_is_governed(
    workspace, owner, second_owner, user_client, make_member, approve
):
    member = make_member(workspace, Role.MEMBER)
    membership = Membership.objects.get(user=member, workspace=workspace)
    first = user_client(owner, workspace).patch(
        f"/api/v1/members/{membership.pk}",
        {"reason": "test change", "role": "admin"},
        format="json",
    )
    assert first.status_code == 202
    assert Membership.objects.get(pk=membership.pk).role == Role.MEMBER
    approve(second_owner, workspace, pending_confirmation().pk)
    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN


def test_removing_an_ordinary_member_is_immediate(workspace, owner, user_client, make_member):
    member = make_member(workspace, Role.APPROVER)
    membership = Membership.objects.get(user=member, workspace=workspace)
    response = user_client(owner, workspace).delete(
        f"/api/v1/members/{membership.pk}", {"reason": "test change"}, format="json"
    )
    assert response.status_code == 204


def test_governed_requests_appear_in_the_queue(
    workspace, owner, second_owner, user_client, dry_run_over
):
    user_client(owner, workspace).patch(
        "/api/v1/workspace", {"reason": "test change", "mode": "live"}, format="json"
    )
    rows = user_client(second_owner, workspace).get("/api/v1/approvals").json()["results"]
    assert [row["tool"] for row in rows] == ["warden.workspace.go_live"]
    assert rows[0]["requested_by"] == f"user:{owner.email}"
    assert "dry_run -> live" in rows[0]["summary"].replace('"', "")


# --- dry run ------------------------------------------------------------------------------------


def test_an_approval_given_in_dry_run_is_void_once_live(
    workspace, make_key, key_client, make_tool, make_member, approve
):
    """Issue example: approved while "nothing will be done for real", used after go-live."""
    workspace.writes_enabled = True
    with operator_seeding():
        workspace.save()
    make_tool(workspace, "crm.update", level="write", confirmation="always")
    _, plaintext = make_key(workspace, scopes=["actions:write"])
    client = key_client(plaintext)
    body = {"tool": "crm.update", "params": {"id": 1}}
    first = client.post("/api/v1/actions", body, format="json").json()
    approve(make_member(workspace, Role.APPROVER), workspace, pending_confirmation().pk)
    workspace.mode = "live"
    with operator_seeding():
        workspace.save()
    used = client.post(
        "/api/v1/actions",
        {**body, "confirmed": True, "confirmation_token": first["confirmation_token"]},
        format="json",
    )
    assert code(used) == "confirmation_expired"
    assert used.json()["error"]["detail"]["reason"] == "approved_in_dry_run"


# --- break-glass --------------------------------------------------------------------------------


def test_createkey_refuses_a_governance_scope_without_break_glass(workspace, owner):
    with pytest.raises(Exception, match="loosens governance"):
        call_command(
            "createkey",
            workspace.slug,
            "--reason",
            "test change",
            name="root",
            owner=owner.email,
            scopes="workspace:admin",
        )
    assert not MachineKey.objects.filter(name="root").exists()


def test_createkey_with_break_glass_is_recorded_as_such(workspace, owner, capsys):
    call_command(
        "createkey",
        workspace.slug,
        "--reason",
        "test change",
        name="root",
        owner=owner.email,
        scopes="workspace:admin",
        break_glass="incident 42: restore automation",
    )
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("wdn_")
    entry = AuditEntry.objects.get(action="key.created", target_type="machine_key")
    assert entry.rationale.startswith("break-glass: incident 42")
    override = ExceptionRecord.objects.get(kind="override")
    assert override.why == "incident 42: restore automation"


# --- the model-level guard: every write path, generated from the registry ---------------------


GUARD_CASES = {
    "warden.tool.lower_confirmation": ("tool", {"confirmation": "never"}),
    "warden.tool.lower_level": ("tool", {"level": "read"}),
    "warden.tool.remove_protection": ("tool", {"irreversible": False}),
    "warden.tool.enable": ("disabled_tool", {"enabled": True}),
    "warden.key.grant_governance_scope": ("key", {"scopes": ["tools:write"]}),
    "warden.key.enable_unattended": ("key", {"unattended_mode": True}),
    "warden.key.unsuspend": ("suspended_key", {"suspended_at": None}),
    "warden.workspace.enable_writes": ("workspace", {"writes_enabled": True}),
    "warden.workspace.enable_outbound": ("workspace", {"outbound_allowed": True}),
    "warden.workspace.go_live": ("workspace", {"mode": "live"}),
    "warden.workspace.go_live_early": ("workspace", {"mode": "live"}),
    "warden.workspace.delete": ("workspace", {"deleted_at": timezone.now()}),
    "warden.workspace.disable_two_approvals": (
        "strict_workspace",
        {"require_two_approvals_for_irreversible": False},
    ),
    "warden.workspace.lower_floor": ("workspace", {"sensitivity_floor": False}),
    "warden.workspace.shorten_retention": ("workspace", {"audit_retention_days": 1}),
    "warden.workspace.lower_limits": ("strict_workspace", {"plan_rank": 0}),
    "warden.member.grant_admin": ("membership", {"role": "admin"}),
}


@pytest.fixture
def objects(workspace, make_key, make_member, make_tool, operator_seeded):
    tool = make_tool(
        workspace, "crm.update", level="external", confirmation="always", irreversible=True
    )
    disabled = make_tool(workspace, "crm.archive", confirmation="always", enabled=False)
    key, _ = make_key(workspace)
    suspended, _ = make_key(workspace)
    MachineKey.objects.filter(pk=suspended.pk).update(suspended_at=timezone.now())
    strict = Workspace.objects.get(pk=workspace.pk)
    Workspace.objects.filter(pk=workspace.pk).update(
        require_two_approvals_for_irreversible=True, plan_rank=3
    )
    member = make_member(workspace, Role.MEMBER)
    return {
        "tool": tool,
        "disabled_tool": disabled,
        "key": key,
        "suspended_key": MachineKey.objects.get(pk=suspended.pk),
        "workspace": Workspace.objects.get(pk=strict.pk),
        "strict_workspace": Workspace.objects.get(pk=strict.pk),
        "membership": Membership.objects.get(workspace=workspace, user=member),
    }


def test_every_registered_operation_has_a_guard_case():
    guarded = {
        op.name
        for op in OPERATIONS
        if op.target in {Target.TOOL, Target.KEY, Target.WORKSPACE, Target.MEMBERSHIP}
    }
    # Creations are walked in tests/approvals/test_closed_world.py.
    assert guarded - {"warden.member.remove_last_approver", "warden.tool.create"} == set(
        GUARD_CASES
    )


@pytest.mark.parametrize("operation", sorted(GUARD_CASES))
@pytest.mark.parametrize("path", ["save", "update"])
def test_no_write_path_loosens_without_the_door(objects, operation, path, django_db_blocker):
    from approvals.guard import _GRANTS

    token = _GRANTS.set(())  # leave the set-up's operator grant
    try:
        name, changes = GUARD_CASES[operation]
        obj = objects[name]
        model = type(obj)
        with pytest.raises(Exception, match="loosens governance") as raised:
            if path == "save":
                for field, value in changes.items():
                    setattr(obj, field, value)
                obj.save()
            else:
                model.objects.filter(pk=obj.pk).update(**changes)
        assert operation in raised.value.detail["operations"]
    finally:
        _GRANTS.reset(token)


def test_a_deny_rule_refuses_with_its_reason_and_records_a_denial(
    workspace, make_key, key_client, make_tool
):
    make_tool(
        workspace,
        "crm.export",
        confirmation="always",
        deny_condition="params.rows > 1000 && key.unattended == false",
        deny_reason="Exports above 1000 rows go through the data team.",
    )
    _, plaintext = make_key(workspace)
    response = key_client(plaintext).post(
        "/api/v1/actions", {"tool": "crm.export", "params": {"rows": 5000}}, format="json"
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "denied_by_policy"
    assert error["message"] == "Exports above 1000 rows go through the data team."
    assert ExceptionRecord.objects.get(kind="denial").what.startswith("Deny rule of crm.export")
    small = key_client(plaintext).post(
        "/api/v1/actions", {"tool": "crm.export", "params": {"rows": 5}}, format="json"
    )
    assert small.status_code == 202


def test_changing_an_enabled_tools_argument_schema_is_governed(
    workspace, make_key, key_client, make_tool, other_workspace, user_client, make_member
):
    schema = {"type": "object", "properties": {"rows": {"type": "integer", "maximum": 10}}}
    tool = make_tool(workspace, "crm.export", confirmation="always", input_schema=schema)
    _, plaintext = make_key(workspace, scopes=["tools:write"])
    response = key_client(plaintext).patch(
        f"/api/v1/tools/{tool.pk}", {"reason": "test change", "input_schema": {}}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["governed_operations"] == ["warden.tool.remove_protection"]
    tool.refresh_from_db()
    assert tool.input_schema == schema
    # Another workspace's admin cannot even see the tool to propose a change.
    outsider = user_client(make_member(other_workspace, Role.ADMIN), other_workspace)
    assert (
        outsider.patch(
            f"/api/v1/tools/{tool.pk}", {"reason": "test change", "input_schema": {}}, format="json"
        ).status_code
        == 404
    )
