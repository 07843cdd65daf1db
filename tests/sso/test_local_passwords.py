"""Local passwords switchable off per deployment, and SSO routes closed unless enabled
(the full provider walk is tests/e2e/test_sso.py)."""

from django.test import Client


def _login(user):
    return Client().post(
        "/admin/login/?next=/admin/",
        {"username": user.email, "password": "pw-for-tests-1", "next": "/admin/"},
    )


def test_password_login_works_by_default(make_workspace, make_user):
    owner = make_user()
    make_workspace(owner=owner)
    response = _login(owner)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_password_login_is_refused_with_a_clear_message_when_switched_off(
    settings, make_workspace, make_user
):
    settings.WARDEN_LOCAL_PASSWORDS = False
    owner = make_user()
    make_workspace(owner=owner)
    response = _login(owner)
    assert response.status_code == 200  # the login page again, no session
    html = response.content.decode()
    assert "Password login is switched off on this server" in html
    assert "_auth_user_id" not in response.wsgi_request.session
    assert Client().get("/api/v1/approvals").status_code in (401, 403)


def test_the_login_page_offers_sso_only_when_enabled(settings, db):
    page = Client().get("/admin/login/").content.decode()
    assert 'id="sso-login"' not in page
    settings.WARDEN_OIDC_ENABLED = True
    settings.WARDEN_LOCAL_PASSWORDS = False
    page = Client().get("/admin/login/?next=/admin/approvals/").content.decode()
    assert 'href="/oidc/authenticate/?next=/admin/approvals/"' in page
    assert 'id="id_password"' not in page and 'id="local-passwords-off"' in page


def test_sso_routes_answer_404_unless_enabled(db):
    client = Client()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_sso_start_redirects_to_the_provider_with_pkce_and_state(settings, db):
    settings.WARDEN_OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = "warden"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "https://idp.example.test/authorize"
    response = Client().get("/oidc/authenticate/?next=/admin/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("https://idp.example.test/authorize?")
    assert "code_challenge_method=S256" in location and "state=" in location
    assert "scope=openid+email" in location
