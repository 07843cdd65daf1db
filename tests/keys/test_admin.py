"""Machine keys in the admin, as a workspace owner or admin uses them."""

import re

import pytest
from django.test import Client
from django.utils import timezone

from approvals.models import ActionRequest
from audit.models import AuditEntry
from keys.models import MachineKey
from tenants.models import Membership, Role

KEY_RE = re.compile(r"wdn_[0-9a-f]{12}_[A-Za-z0-9_-]{32,}")
CHANGELIST = "/admin/keys/machinekey/"
ADD = "/admin/keys/machinekey/add/"


def change_url(key):
    return f"/admin/keys/machinekey/{key.pk}/change/"


@pytest.fixture
def owner_a(workspace):
    return Membership.objects.get(workspace=workspace, role=Role.OWNER).user


@pytest.fixture
def browser():
    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login


def add_form(workspace, owner, **overrides):
    return {
        "workspace": workspace.pk,
        "name": "admin-made",
        "owner": owner.pk,
        "scopes": ["actions:read", "actions:write"],
        "tool_allowlist": "crm.* email.send",
        "allowed_ips": "",
        "rate_limit_per_minute": 60,
        "reason": "test change",
        **overrides,
    }


def test_owner_sees_only_their_workspaces_keys(
    workspace, other_workspace, make_key, owner_a, browser
):
    make_key(workspace, name="key-of-a")
    make_key(other_workspace, name="key-of-b")
    html = browser(owner_a).get(CHANGELIST).content.decode()
    assert "key-of-a" in html
    assert "key-of-b" not in html
    assert other_workspace.slug not in html


def test_admin_role_sees_keys_too(workspace, make_key, make_member, browser):
    make_key(workspace, name="key-of-a")
    admin = make_member(workspace, Role.ADMIN)
    assert "key-of-a" in browser(admin).get(CHANGELIST).content.decode()


def test_other_workspaces_key_page_does_not_open(
    workspace, other_workspace, make_key, owner_a, browser
):
    theirs, _ = make_key(other_workspace, name="key-of-b")
    client = browser(owner_a)
    response = client.get(change_url(theirs))
    assert response.status_code == 302  # "doesn't exist", back to the admin index
    followed = client.get(change_url(theirs), follow=True).content.decode()
    assert "key-of-b" not in followed
    assert theirs.prefix not in followed
    for action in ("revoke", "rotate"):
        assert client.get(f"/admin/keys/machinekey/{theirs.pk}/{action}/").status_code == 404
        assert client.post(f"/admin/keys/machinekey/{theirs.pk}/{action}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_key_page_shows_prefix_and_name(workspace, make_key, owner_a, browser):
    key, _ = make_key(workspace, name="visible-name")
    html = browser(owner_a).get(change_url(key)).content.decode()
    assert "visible-name" in html
    assert f"wdn_{key.prefix}_" in html


def test_creating_a_key_shows_the_full_key_once(workspace, owner_a, browser, key_client):
    client = browser(owner_a)
    response = client.post(ADD, add_form(workspace, owner_a))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = KEY_RE.findall(response.content.decode())
    assert len(set(shown)) == 1
    plaintext = shown[0]
    key = MachineKey.objects.get(name="admin-made")
    assert plaintext.startswith(f"wdn_{key.prefix}_")
    assert key.scopes == ["actions:read", "actions:write"]
    assert key.tool_allowlist == ["crm.*", "email.send"]
    assert key.created_by == f"user:{owner_a.email}"
    assert key_client(plaintext).get("/api/v1/whoami").status_code == 200
    for page in (CHANGELIST, change_url(key)):
        assert plaintext.split("_", 2)[2] not in client.get(page).content.decode()


def test_key_created_in_the_admin_is_audited(workspace, owner_a, browser):
    browser(owner_a).post(ADD, add_form(workspace, owner_a))
    key = MachineKey.objects.get(name="admin-made")
    entry = AuditEntry.objects.get(action="key.created", target_id=str(key.pk))
    assert entry.actor == f"user:{owner_a.email}"


def test_cannot_create_a_key_in_another_workspace(workspace, other_workspace, owner_a, browser):
    response = browser(owner_a).post(ADD, add_form(other_workspace, owner_a))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not MachineKey.objects.filter(name="admin-made").exists()


def test_owner_must_be_a_member_of_the_keys_workspace(
    workspace, other_workspace, owner_a, make_member, browser
):
    stranger = make_member(other_workspace, Role.ADMIN)
    response = browser(owner_a).post(ADD, add_form(workspace, stranger))
    assert response.status_code == 200
    assert not MachineKey.objects.filter(name="admin-made").exists()
    assert KEY_RE.search(response.content.decode()) is None


def test_unknown_scope_and_bad_patterns_are_form_errors(workspace, owner_a, browser):
    client = browser(owner_a)
    for overrides in (
        {"scopes": ["root:all"]},
        {"tool_allowlist": "DROP TABLE"},
        {"allowed_ips": "not-an-ip"},
        {"expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"},
    ):
        response = client.post(ADD, add_form(workspace, owner_a, **overrides))
        assert response.status_code == 200
        assert "errornote" in response.content.decode()
    assert not MachineKey.objects.filter(name="admin-made").exists()


def test_admin_role_cannot_create_a_workspace_admin_key(workspace, make_member, browser):
    admin = make_member(workspace, Role.ADMIN)
    response = browser(admin).post(ADD, add_form(workspace, admin, scopes=["workspace:admin"]))
    assert "You cannot hand out scopes you do not hold" in response.content.decode()
    assert not MachineKey.objects.filter(name="admin-made").exists()


def test_revoke_action_revokes_and_audits(workspace, make_key, owner_a, browser, key_client):
    key, plaintext = make_key(workspace)
    response = browser(owner_a).post(
        CHANGELIST,
        {"reason": "test change", "action": "revoke_selected", "_selected_action": [key.pk]},
        follow=True,
    )
    assert "Revoked 1 key(s)." in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.revoked_by == f"user:{owner_a.email}"
    entry = AuditEntry.objects.get(action="key.revoked", target_id=str(key.pk))
    assert entry.actor == f"user:{owner_a.email}"
    assert key_client(plaintext).get("/api/v1/whoami").status_code == 401


def test_revoke_action_ignores_other_workspaces_keys(
    workspace, other_workspace, make_key, owner_a, browser
):
    theirs, _ = make_key(other_workspace)
    browser(owner_a).post(
        CHANGELIST,
        {"reason": "test change", "action": "revoke_selected", "_selected_action": [theirs.pk]},
    )
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert not AuditEntry.objects.filter(action="key.revoked").exists()


def test_revoke_button_revokes_with_a_reason(workspace, make_key, owner_a, browser):
    key, _ = make_key(workspace)
    client = browser(owner_a)
    assert "Revoke" in client.get(change_url(key)).content.decode()
    client.post(f"/admin/keys/machinekey/{key.pk}/revoke/", {"reason": "left the team"})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.get(action="key.revoked").rationale == "left the team"


def test_rotate_button_shows_the_new_key_once(workspace, make_key, owner_a, browser, key_client):
    key, old = make_key(workspace, owner=owner_a)  # the owner rotates their own key
    response = browser(owner_a).post(
        f"/admin/keys/machinekey/{key.pk}/rotate/", {"reason": "test change", "grace_hours": "1"}
    )
    assert "no-store" in response["Cache-Control"]
    new = KEY_RE.search(response.content.decode()).group(0)
    assert new != old
    assert key_client(new).get("/api/v1/whoami").status_code == 200
    assert key_client(old).get("/api/v1/whoami").status_code == 200  # within grace
    assert AuditEntry.objects.filter(action="key.rotated", target_id=str(key.pk)).exists()


def test_rotate_with_out_of_range_grace_changes_nothing(workspace, make_key, owner_a, browser):
    key, _ = make_key(workspace)
    digest = key.digest
    response = browser(owner_a).post(
        f"/admin/keys/machinekey/{key.pk}/rotate/",
        {"reason": "test change", "grace_hours": "999"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Grace must be between 0 and 7 days." in response.content.decode()
    key.refresh_from_db()
    assert key.digest == digest


def test_key_change_page_is_read_only(workspace, make_key, owner_a, browser):
    key, _ = make_key(workspace, name="fixed")
    client = browser(owner_a)
    html = client.get(change_url(key)).content.decode()
    assert 'name="_save"' not in html
    client.post(change_url(key), {"reason": "test change", "name": "renamed"})
    key.refresh_from_db()
    assert key.name == "fixed"


def test_keys_cannot_be_deleted_in_the_admin(workspace, make_key, owner_a, browser):
    key, _ = make_key(workspace)
    client = browser(owner_a)
    client.post(
        f"/admin/keys/machinekey/{key.pk}/delete/", {"reason": "test change", "post": "yes"}
    )
    assert MachineKey.objects.filter(pk=key.pk).exists()


def test_approver_cannot_see_keys(workspace, make_key, make_member, browser):
    make_key(workspace, name="key-of-a")
    approver = make_member(workspace, Role.APPROVER)
    response = browser(approver).get(CHANGELIST)
    assert response.status_code == 403


def test_plain_member_has_no_admin_access(workspace, make_member, browser):
    member = make_member(workspace, Role.MEMBER)
    response = browser(member).get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_owner_picker_lists_only_members_of_managed_workspaces(
    workspace, other_workspace, make_member, owner_a, browser
):
    outsider = make_member(other_workspace, Role.ADMIN, email="outsider@example.test")
    html = browser(owner_a).get(ADD).content.decode()
    assert owner_a.email in html
    assert outsider.email not in html


def test_superuser_sees_every_workspaces_keys(
    workspace, other_workspace, make_key, make_user, browser
):
    make_key(workspace, name="key-of-a")
    make_key(other_workspace, name="key-of-b")
    root = make_user()
    root.is_superuser = root.is_staff = True
    root.save()
    html = browser(root).get(CHANGELIST).content.decode()
    assert "key-of-a" in html and "key-of-b" in html


def test_workspace_admin_key_cannot_skip_the_approval_gate_in_the_admin(
    workspace, owner_a, browser
):
    response = browser(owner_a).post(
        ADD, add_form(workspace, owner_a, scopes=["workspace:admin"]), follow=True
    )
    assert "needs another person" in response.content.decode()
    assert not MachineKey.objects.filter(name="admin-made").exists()
    request = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert request.tool_name == "warden.key.grant_governance_scope"


def test_admin_audit_rows_carry_the_request_id_and_address(workspace, owner_a, browser):
    browser(owner_a).post(ADD, add_form(workspace, owner_a), HTTP_X_REQUEST_ID="req-admin-1")
    entry = AuditEntry.objects.get(action="key.created", target_type="machine_key")
    assert entry.request_id == "req-admin-1"
    assert entry.client_ip == "127.0.0.1"


# --- lifting a suspension: a governed change, approved by another person ------------


@pytest.fixture
def suspended(workspace, make_key):
    key, plaintext = make_key(workspace, name="suspended-agent")
    MachineKey.objects.filter(pk=key.pk).update(suspended_at=timezone.now())
    key.refresh_from_db()
    return key, plaintext


def unsuspend_url(key):
    return f"/admin/keys/machinekey/{key.pk}/unsuspend/"


def test_a_suspended_key_offers_lifting_the_suspension(suspended, owner_a, browser):
    key, _ = suspended
    client = browser(owner_a)
    assert unsuspend_url(key) in client.get(change_url(key)).content.decode()
    page = client.get(unsuspend_url(key)).content.decode()
    assert "another person approves it" in page


def test_lifting_a_suspension_waits_for_another_persons_approval(
    workspace, suspended, owner_a, make_member, browser, approve, key_client
):
    key, plaintext = suspended
    response = browser(owner_a).post(unsuspend_url(key), {"reason": "false alarm"}, follow=True)
    assert "needs another person" in response.content.decode()
    key.refresh_from_db()
    assert key.suspended_at is not None  # nothing changed yet
    assert key_client(plaintext).get("/api/v1/whoami").status_code == 401
    request = ActionRequest.objects.get(workspace=workspace, tool_name="warden.key.unsuspend")
    assert approve(owner_a, workspace, request.confirmation.pk).status_code == 403  # not alone
    second = make_member(workspace, Role.ADMIN)
    assert approve(second, workspace, request.confirmation.pk).status_code == 200
    key.refresh_from_db()
    assert key.suspended_at is None
    assert key_client(plaintext).get("/api/v1/whoami").status_code == 200
    assert AuditEntry.objects.filter(
        workspace=workspace, action="key.unsuspended", target_id=str(key.pk)
    ).exists()


def test_lifting_needs_manage_keys_and_a_suspended_key(
    workspace, suspended, make_key, make_member, owner_a, browser
):
    key, _ = suspended
    member = make_member(workspace, Role.MEMBER)
    assert browser(member).post(unsuspend_url(key)).status_code in (302, 403)
    key.refresh_from_db()
    assert key.suspended_at is not None
    active, _ = make_key(workspace, name="active-agent")
    response = browser(owner_a).post(unsuspend_url(active), follow=True)
    assert "is not suspended" in response.content.decode()
    assert not ActionRequest.objects.filter(tool_name="warden.key.unsuspend").exists()


def test_key_page_shows_lists_as_lists_and_times_with_their_zone(
    workspace, make_key, owner_a, browser
):
    """Issue 23: scopes and allowlist were JSON arrays, times had no zone."""
    key, _ = make_key(
        workspace, scopes=["actions:read", "audit:read"], tools=["crm.*", "email.send"]
    )
    html = browser(owner_a).get(change_url(key)).content.decode()
    assert "<code>actions:read</code><br><code>audit:read</code>" in html
    assert "<code>crm.*</code><br><code>email.send</code>" in html
    assert '["actions:read"' not in html and "[&quot;actions:read" not in html
    created = timezone.localtime(key.created_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    assert created in html and created.endswith("UTC")
