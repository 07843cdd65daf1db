"""Workspaces and memberships in the admin: scoped by guardian, written by services."""

from datetime import timedelta

import pytest
from django.test import Client

from approvals.models import ActionRequest
from audit.models import AuditEntry
from tenants.models import Membership, Role, Workspace

MEMBERS = "/admin/tenants/membership/"
WORKSPACES = "/admin/tenants/workspace/"


@pytest.fixture
def owner_a(workspace):
    return Membership.objects.get(workspace=workspace, role=Role.OWNER)


@pytest.fixture
def browser():
    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login


def membership_url(membership, action="change"):
    return f"{MEMBERS}{membership.pk}/{action}/"


# --- memberships -----------------------------------------------------------------


def test_admin_sees_only_their_workspaces_members(workspace, other_workspace, make_member, browser):
    admin = make_member(workspace, Role.ADMIN, email="admin-a@example.test")
    make_member(other_workspace, Role.APPROVER, email="approver-b@example.test")
    html = browser(admin).get(MEMBERS).content.decode()
    assert "admin-a@example.test" in html
    assert "approver-b@example.test" not in html
    assert other_workspace.slug not in html


def test_other_workspaces_membership_page_does_not_open(
    workspace, other_workspace, make_member, owner_a, browser
):
    theirs = Membership.objects.get(workspace=other_workspace, role=Role.OWNER)
    client = browser(owner_a.user)
    assert client.get(membership_url(theirs)).status_code == 302
    followed = client.get(membership_url(theirs), follow=True).content.decode()
    assert theirs.user.email not in followed
    client.post(membership_url(theirs), {"reason": "test change", "role": "member"})
    client.post(membership_url(theirs, "delete"), {"reason": "test change", "post": "yes"})
    theirs.refresh_from_db()
    assert theirs.role == Role.OWNER


def test_adding_a_member_goes_through_the_service(workspace, owner_a, browser):
    response = browser(owner_a.user).post(
        f"{MEMBERS}add/",
        {
            "reason": "test change",
            "workspace": workspace.pk,
            "email": "new@example.test",
            "role": "auditor",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    membership = Membership.objects.get(workspace=workspace, user__email="new@example.test")
    assert membership.role == Role.AUDITOR
    assert membership.user.has_perm("tenants.view_audit", workspace)
    assert membership.user.is_staff
    entry = AuditEntry.objects.get(action="member.added", target_id=str(membership.pk))
    assert entry.actor == f"user:{owner_a.user.email}"


def test_adding_an_existing_member_is_a_form_error(workspace, make_member, owner_a, browser):
    user = make_member(workspace, Role.MEMBER)
    response = browser(owner_a.user).post(
        f"{MEMBERS}add/",
        {"reason": "test change", "workspace": workspace.pk, "email": user.email, "role": "admin"},
    )
    assert response.status_code == 200
    assert "already a member" in response.content.decode()


def test_cannot_add_a_member_to_another_workspace(workspace, other_workspace, owner_a, browser):
    browser(owner_a.user).post(
        f"{MEMBERS}add/",
        {
            "reason": "test change",
            "workspace": other_workspace.pk,
            "email": "sneak@example.test",
            "role": "admin",
        },
    )
    assert not Membership.objects.filter(user__email="sneak@example.test").exists()


def test_add_form_has_no_user_picker(workspace, other_workspace, owner_a, browser):
    outsider = Membership.objects.get(workspace=other_workspace, role=Role.OWNER).user
    html = browser(owner_a.user).get(f"{MEMBERS}add/").content.decode()
    assert 'name="email"' in html
    assert outsider.email not in html


def test_changing_a_role_moves_guardian_permissions(workspace, make_member, owner_a, browser):
    user = make_member(workspace, Role.MEMBER)
    membership = Membership.objects.get(workspace=workspace, user=user)
    browser(owner_a.user).post(
        membership_url(membership), {"reason": "test change", "role": "auditor"}
    )
    membership.refresh_from_db()
    assert membership.role == Role.AUDITOR
    assert user.has_perm("tenants.view_audit", workspace)
    assert AuditEntry.objects.filter(
        action="member.role_changed", target_id=str(membership.pk)
    ).exists()


def test_raising_a_role_to_admin_in_the_admin_waits_for_a_second_person(
    workspace, make_member, owner_a, browser
):
    user = make_member(workspace, Role.MEMBER)
    membership = Membership.objects.get(workspace=workspace, user=user)
    response = browser(owner_a.user).post(
        membership_url(membership), {"reason": "test change", "role": "admin"}, follow=True
    )
    assert "needs another person" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
    assert not user.has_perm("tenants.manage_keys", workspace)


def test_demoting_the_last_owner_shows_an_error(workspace, owner_a, browser):
    response = browser(owner_a.user).post(
        membership_url(owner_a), {"reason": "test change", "role": "admin"}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "must keep at least one owner" in html
    assert "was changed successfully" not in html
    owner_a.refresh_from_db()
    assert owner_a.role == Role.OWNER
    assert not AuditEntry.objects.filter(action="member.role_changed").exists()


def test_removing_the_last_owner_shows_an_error(workspace, owner_a, browser):
    response = browser(owner_a.user).post(
        membership_url(owner_a, "delete"), {"reason": "test change", "post": "yes"}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "must keep at least one owner" in html
    assert "deleted successfully" not in html
    assert Membership.objects.filter(pk=owner_a.pk).exists()


def test_removing_a_member_goes_through_the_service(workspace, make_member, owner_a, browser):
    user = make_member(workspace, Role.ADMIN)
    membership = Membership.objects.get(workspace=workspace, user=user)
    browser(owner_a.user).post(
        membership_url(membership, "delete"), {"reason": "test change", "post": "yes"}
    )
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert not user.has_perm("tenants.manage_keys", workspace)
    assert AuditEntry.objects.filter(action="member.removed", target_id=str(membership.pk)).exists()


def test_bulk_delete_keeps_the_last_owner_and_removes_the_rest(
    workspace, make_member, owner_a, browser
):
    user = make_member(workspace, Role.APPROVER)
    other = Membership.objects.get(workspace=workspace, user=user)
    response = browser(owner_a.user).post(
        MEMBERS,
        {
            "reason": "test change",
            "action": "delete_selected",
            "_selected_action": [owner_a.pk, other.pk],
            "post": "yes",
        },
        follow=True,
    )
    html = response.content.decode()
    assert "must keep at least one owner" in html
    assert "Removed 1 member(s)." in html
    assert Membership.objects.filter(pk=owner_a.pk).exists()
    assert not Membership.objects.filter(pk=other.pk).exists()


def test_admin_role_cannot_make_an_owner_in_the_admin(workspace, make_member, browser):
    admin = make_member(workspace, Role.ADMIN)
    membership = Membership.objects.get(workspace=workspace, user=admin)
    response = browser(admin).post(
        membership_url(membership), {"reason": "test change", "role": "owner"}, follow=True
    )
    assert "Only an owner may grant" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_approver_cannot_manage_members(workspace, make_member, browser):
    approver = make_member(workspace, Role.APPROVER)
    assert browser(approver).get(MEMBERS).status_code == 403


# --- workspaces ------------------------------------------------------------------


def test_owner_sees_only_their_workspace(workspace, other_workspace, owner_a, browser):
    html = browser(owner_a.user).get(WORKSPACES).content.decode()
    assert workspace.slug in html
    assert other_workspace.slug not in html


def test_admin_role_cannot_open_workspace_settings(workspace, make_member, browser):
    admin = make_member(workspace, Role.ADMIN)
    assert browser(admin).get(WORKSPACES).status_code == 403


def settings_form(workspace, **overrides):
    """The change form as the browser posts it (unchecked boxes are absent)."""
    form = {
        "name": workspace.name,
        "mode": workspace.mode,
        "live_after_0": workspace.live_after.strftime("%Y-%m-%d"),
        "live_after_1": workspace.live_after.strftime("%H:%M:%S"),
        "confirmation_ttl": "1 00:00:00",
        "plan_rank": 0,
        "audit_retention_days": "",
        "plain_copy_retention_days": workspace.plain_copy_retention_days or "",
        "reason": "test change",
    }
    for switch in ("writes_enabled", "outbound_allowed", "sensitivity_floor"):
        if getattr(workspace, switch):
            form[switch] = "on"
    return {**form, **overrides}


def test_owner_changes_settings_through_the_service(workspace, owner_a, browser):
    response = browser(owner_a.user).post(
        f"{WORKSPACES}{workspace.pk}/change/",
        settings_form(workspace, name="Renamed", confirmation_ttl="02:00:00"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    workspace.refresh_from_db()
    assert workspace.name == "Renamed"
    assert workspace.confirmation_ttl == timedelta(hours=2)
    entry = AuditEntry.objects.filter(action="workspace.settings_changed").get()
    assert entry.input["after"]["name"] == "Renamed"


def test_owner_sets_the_plain_copy_period_in_the_admin_at_once_and_it_is_audited(
    workspace, owner_a, browser
):
    page = browser(owner_a.user).get(f"{WORKSPACES}{workspace.pk}/change/").content.decode()
    assert 'name="plain_copy_retention_days"' in page and 'value="30"' in page
    response = browser(owner_a.user).post(
        f"{WORKSPACES}{workspace.pk}/change/",
        settings_form(workspace, plain_copy_retention_days="90"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    workspace.refresh_from_db()
    assert workspace.plain_copy_retention_days == 90  # not governed: no second person
    entry = AuditEntry.objects.filter(action="workspace.settings_changed").get()
    assert entry.input["before"]["plain_copy_retention_days"] == 30
    assert entry.input["after"]["plain_copy_retention_days"] == 90


def test_safety_switches_in_the_admin_wait_for_a_second_person(workspace, owner_a, browser):
    response = browser(owner_a.user).post(
        f"{WORKSPACES}{workspace.pk}/change/",
        settings_form(workspace, writes_enabled="on", mode="live", outbound_allowed="on"),
        follow=True,
    )
    assert "needs another person" in response.content.decode()
    workspace.refresh_from_db()
    assert workspace.writes_enabled is False
    assert workspace.mode == Workspace.Mode.DRY_RUN
    assert workspace.outbound_allowed is False
    request = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert request.tool_name == "warden.workspace.change"
    assert set(request.params["operations"]) == {
        "warden.workspace.enable_writes",
        "warden.workspace.go_live",
        "warden.workspace.go_live_early",  # the 7-day dry run has not ended
        "warden.workspace.enable_outbound",
    }


def test_owner_cannot_change_another_workspace(workspace, other_workspace, owner_a, browser):
    browser(owner_a.user).post(
        f"{WORKSPACES}{other_workspace.pk}/change/",
        settings_form(other_workspace, name="Hijacked"),
    )
    other_workspace.refresh_from_db()
    assert other_workspace.name != "Hijacked"


def test_workspaces_cannot_be_deleted_in_the_admin(workspace, owner_a, browser):
    browser(owner_a.user).post(
        f"{WORKSPACES}{workspace.pk}/delete/", {"reason": "test change", "post": "yes"}
    )
    assert Workspace.objects.filter(pk=workspace.pk).exists()


def test_superuser_creates_a_workspace_with_an_owner(make_user, browser):
    root = make_user()
    root.is_superuser = root.is_staff = True
    root.save()
    response = browser(root).post(
        f"{WORKSPACES}add/",
        {"reason": "test change", "slug": "acme", "name": "Acme", "owner_email": "boss@acme.test"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    acme = Workspace.objects.get(slug="acme")
    owner = Membership.objects.get(workspace=acme, role=Role.OWNER)
    assert owner.user.email == "boss@acme.test"
    assert AuditEntry.objects.filter(workspace=acme, action="workspace.created").exists()


def test_owner_cannot_add_workspaces(owner_a, browser):
    assert browser(owner_a.user).get(f"{WORKSPACES}add/").status_code == 403


# --- what each role sees -----------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        (Role.OWNER, ["Workspaces", "Memberships", "Machine keys"], []),
        (Role.ADMIN, ["Memberships", "Machine keys"], ["Workspaces"]),
        (Role.AUDITOR, [], ["Workspaces", "Memberships", "Machine keys"]),
    ],
)
def test_admin_index_shows_what_the_role_may_manage(
    workspace, make_member, browser, role, visible, hidden
):
    user = make_member(workspace, role)
    html = browser(user).get("/admin/").content.decode()
    for label in visible:
        assert label in html, label
    for label in hidden:
        assert label not in html, label


def test_owner_pages_render(workspace, owner_a, make_key, browser):
    key, _ = make_key(workspace)
    client = browser(owner_a.user)
    for url in (
        WORKSPACES,
        f"{WORKSPACES}{workspace.pk}/change/",
        MEMBERS,
        f"{MEMBERS}add/",
        membership_url(owner_a),
        "/admin/keys/machinekey/",
        "/admin/keys/machinekey/add/",
        f"/admin/keys/machinekey/{key.pk}/change/",
        f"/admin/keys/machinekey/{key.pk}/rotate/",
        f"/admin/keys/machinekey/{key.pk}/revoke/",
    ):
        assert client.get(url).status_code == 200, url
