"""Refusals in the admin say what is missing, inside the admin frame, and members
who may not use the admin are told so instead of "wrong password"."""

import pytest
from django.test import Client

from tenants.models import Role

QUEUE = "/admin/approvals/confirmationrequest/"
AUDIT = "/admin/audit/auditentry/"
PASSWORD = "pw-for-tests-1"


def test_auditor_refused_the_queue_sees_which_permission_is_missing(
    workspace, role_users, admin_client_for
):
    response = admin_client_for(role_users[Role.AUDITOR]).get(QUEUE)
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="refusal-reason"' in html
    assert "“Approve or deny agent actions” (approve_actions)" in html
    assert "Roles that have it: Owner, Admin, Approver." in html
    assert 'id="site-name"' in html and 'href="/admin/"' in html  # admin frame, way back


def test_approver_refused_the_audit_log_sees_view_audit_is_missing(
    workspace, role_users, admin_client_for
):
    response = admin_client_for(role_users[Role.APPROVER]).get(AUDIT)
    assert response.status_code == 403
    assert "(view_audit)" in response.content.decode()
    assert "Roles that have it: Owner, Admin, Auditor." in response.content.decode()


def test_approver_refused_the_privacy_summary_sees_the_permission(
    workspace, role_users, admin_client_for
):
    response = admin_client_for(role_users[Role.APPROVER]).get(
        f"/admin/audit/auditentry/privacy-summary/{workspace.slug}/"
    )
    assert response.status_code == 403
    assert "(download_privacy_summary)" in response.content.decode()


def test_api_refusals_stay_json(workspace, role_users, user_client):
    response = user_client(role_users[Role.MEMBER], workspace).get("/api/v1/audit")
    assert response.status_code in (401, 403)
    assert response["Content-Type"].startswith("application/json")


@pytest.fixture
def login_post():
    def post(username, password):
        return Client().post(
            "/admin/login/?next=/admin/",
            {"reason": "test change", "username": username, "password": password},
        )

    return post


def test_member_with_the_right_password_is_told_they_have_no_admin_access(role_users, login_post):
    response = login_post(role_users[Role.MEMBER].username, PASSWORD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your account has no access to the admin: ask a workspace admin" in html
    assert "owner, admin, approver, auditor" in html
    assert "staff account" not in html


def test_wrong_password_keeps_the_neutral_message(role_users, login_post):
    response = login_post(role_users[Role.MEMBER].username, "not-the-password")
    html = response.content.decode()
    assert "no access to the admin" not in html
    assert "correct" in html


def test_approver_still_logs_in(role_users, login_post):
    response = login_post(role_users[Role.APPROVER].username, PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_deactivated_member_gets_no_hint(role_users, login_post):
    member = role_users[Role.MEMBER]
    member.is_active = False
    member.save(update_fields=["is_active"])
    html = login_post(member.username, PASSWORD).content.decode()
    assert "no access to the admin" not in html


def test_the_no_access_answer_is_not_counted_as_a_failed_guess(role_users, login_post, settings):
    settings.WARDEN_LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    member = role_users[Role.MEMBER]
    for _ in range(5):
        html = login_post(member.username, PASSWORD).content.decode()
        assert "no access to the admin" in html


def test_login_asks_for_an_e_mail_and_says_which_request_a_review_link_opens(client):
    """Issue 23: the login said "Username:" for an e-mail, and a signed review link
    that needed a login showed a bare login page."""
    page = client.get("/admin/login/").content.decode()
    assert ">E-mail:</label>" in page and "Username" not in page
    pk = "0f5b8a52-1c9e-4a8e-9a43-2f0b6f1c9d10"
    nxt = f"/admin/approvals/confirmationrequest/{pk}/?link=abc"
    page = client.get("/admin/login/", {"next": nxt}).content.decode()
    assert "Log in to review request 0f5b8a52." in page
    page = client.get("/admin/login/", {"next": "/admin/keys/"}).content.decode()
    assert "Log in to review" not in page
