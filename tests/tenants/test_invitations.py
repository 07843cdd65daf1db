"""Adding an existing user of another workspace is an invitation they accept, never
an attachment (issue example: an admin attached another tenant's approver)."""

from rest_framework.test import APIClient

from approvals.models import ConfirmationRequest
from audit.models import AuditEntry
from tenants.models import Membership, Role


def session(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_another_tenants_user_is_invited_not_attached(
    workspace, other_workspace, make_member, user_client
):
    admin = make_member(workspace, Role.ADMIN)
    outsider = make_member(other_workspace, Role.APPROVER)
    response = user_client(admin, workspace).post(
        "/api/v1/members",
        {"reason": "test change", "email": outsider.email, "role": "auditor"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "invited"
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()
    # Their API calls keep working: they still belong to one workspace only.
    assert session(outsider).get("/api/v1/whoami").status_code == 200
    assert AuditEntry.objects.filter(workspace=workspace, action="member.invited").exists()

    invitations = session(outsider).get("/api/v1/invitations").json()["results"]
    assert [(i["workspace"], i["role"]) for i in invitations] == [(workspace.slug, "auditor")]
    accepted = session(outsider).post(f"/api/v1/invitations/{invitations[0]['id']}/accept")
    assert accepted.status_code == 200
    assert Membership.objects.get(workspace=workspace, user=outsider).role == Role.AUDITOR


def test_inviting_an_approver_waits_for_a_second_person_then_accepting_joins(
    workspace, other_workspace, make_member, user_client, approve
):
    """Who may approve grows with an invitation offering a role that may approve
    (closed world): filed, not created; once another person approves it, the invited
    person accepts and joins with that role, asking nobody again."""
    admin = make_member(workspace, Role.ADMIN)
    colleague = make_member(workspace, Role.OWNER)
    outsider = make_member(other_workspace, Role.MEMBER)
    response = user_client(admin, workspace).post(
        "/api/v1/members",
        {"reason": "test change", "email": outsider.email, "role": "approver"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert "warden.member.invite_approver" in response.json()["governed_operations"]
    assert session(outsider).get("/api/v1/invitations").json()["results"] == []
    # The proposer may not approve it; another owner may.
    confirmation = ConfirmationRequest.objects.get(workspace=workspace, status="pending").pk
    assert approve(admin, workspace, confirmation).status_code == 403
    assert approve(colleague, workspace, confirmation).status_code == 200
    invitations = session(outsider).get("/api/v1/invitations").json()["results"]
    assert [(i["workspace"], i["role"]) for i in invitations] == [(workspace.slug, "approver")]
    accepted = session(outsider).post(f"/api/v1/invitations/{invitations[0]['id']}/accept")
    assert accepted.status_code == 200, accepted.json()
    assert Membership.objects.get(workspace=workspace, user=outsider).role == Role.APPROVER


def test_an_approver_invitation_written_around_the_door_is_refused(
    workspace, other_workspace, make_member
):
    """The guard: a write path that forgets the door cannot offer an approving role."""
    import pytest

    from common.errors import WardenError
    from tenants.models import Invitation
    from tenants.services import invitation_create
    from tests.conftest import SYSTEM

    outsider = make_member(other_workspace, Role.MEMBER)
    with pytest.raises(WardenError) as refused:
        invitation_create(
            reason="test set-up",
            workspace=workspace,
            user=outsider,
            role=Role.APPROVER,
            actor=SYSTEM,
        )
    assert refused.value.code == "approval_required"
    assert not Invitation.objects.filter(workspace=workspace).exists()
    invitation_create(
        reason="test set-up", workspace=workspace, user=outsider, role=Role.MEMBER, actor=SYSTEM
    )


def test_only_the_invited_person_can_answer(workspace, other_workspace, make_member, user_client):
    admin = make_member(workspace, Role.ADMIN)
    outsider = make_member(other_workspace, Role.MEMBER)
    body = (
        user_client(admin, workspace)
        .post(
            "/api/v1/members",
            {"reason": "test change", "email": outsider.email, "role": "member"},
            format="json",
        )
        .json()
    )
    invitation_id = body["invitation"]["id"]
    response = session(admin).post(f"/api/v1/invitations/{invitation_id}/accept")
    assert response.status_code == 404
    assert session(outsider).post(f"/api/v1/invitations/{invitation_id}/decline").status_code == 200
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()
    assert session(outsider).post(f"/api/v1/invitations/{invitation_id}/accept").status_code == 404


def test_privileged_roles_are_not_invitable(
    workspace, other_workspace, make_member, user_client, api_error
):
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    outsider = make_member(other_workspace, Role.MEMBER)
    response = user_client(owner, workspace).post(
        "/api/v1/members",
        {"reason": "test change", "email": outsider.email, "role": "admin"},
        format="json",
    )
    api_error(response, 400, "validation_error")


def test_new_people_are_added_at_once(workspace, make_member, user_client):
    admin = make_member(workspace, Role.ADMIN)
    response = user_client(admin, workspace).post(
        "/api/v1/members",
        {"reason": "test change", "email": "new@example.test", "role": "member"},
        format="json",
    )
    assert response.status_code == 201
