"""Single sign-on through a real OpenID Connect provider (issue 23, item 4), in Chromium.

The provider is django-oauth-toolkit with OIDC on (tests/sso/provider.py), served by
the same live server under /idp/ and reached as another host (127.0.0.1 against
Warden's localhost), so its login session is its own. Warden is the relying party
through mozilla-django-oidc: nothing of the library is mocked. Password login is
switched off (WARDEN_LOCAL_PASSWORDS=false) for the whole walk."""

from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauth2_provider.models import Application
from oauth2_provider.views.mixins import OAuthLibMixin

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from audit.models import AuditEntry
from tenants.models import Role
from tests.conftest import SYSTEM
from tests.sso.provider import DIRECTORY

pytestmark = pytest.mark.e2e

CLIENT_ID = "warden-sso-test"
CLIENT_SECRET = "rp-secret-for-tests-only-0123456789"
IDP_PASSWORD = "idp-pw-for-tests-1"


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _forget_oauthlib_cores() -> None:
    """django-oauth-toolkit caches each view class's oauthlib server on first use: after
    Warden's own OAuth tests the provider's views would answer without OIDC, and after
    these, Warden's would answer with the provider's validator."""
    pending = [OAuthLibMixin]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "_oauthlib_core" in cls.__dict__:
            del cls._oauthlib_core


@pytest.fixture
def idp(settings, live_server, e2e_settings, django_user_model):
    """The provider, the relying party's settings pointing at it, and a way to enrol
    a provider account with the claims the provider asserts."""
    rp = live_server.url
    port = urlsplit(rp).port
    idp_base = f"http://127.0.0.1:{port}/idp"
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
    _forget_oauthlib_cores()
    settings.ROOT_URLCONF = "tests.sso.provider"
    settings.LOGIN_URL = "/idp/login/"  # the provider's own login, for its authorize view
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_ENABLED": True,
        "OIDC_RSA_PRIVATE_KEY": _rsa_pem(),
        "OIDC_ISS_ENDPOINT": idp_base,
        "OAUTH2_VALIDATOR_CLASS": "tests.sso.provider.DirectoryValidator",
        "SCOPES": {**settings.OAUTH2_PROVIDER["SCOPES"], "openid": "OpenID", "email": "E-mail"},
    }
    Application.objects.create(
        name="Warden (relying party)",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=f"{rp}/oidc/callback/",
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )
    settings.WARDEN_OIDC_ENABLED = True
    settings.WARDEN_LOCAL_PASSWORDS = False
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{idp_base}/authorize/"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{idp_base}/token/"
    settings.OIDC_OP_USER_ENDPOINT = f"{idp_base}/userinfo/"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{idp_base}/jwks/"

    def enrol(name: str, email: str, verified: bool = True) -> str:
        username = f"idp-{name}"
        django_user_model.objects.create_user(
            username=username, email=f"{username}@idp.invalid", password=IDP_PASSWORD
        )
        DIRECTORY[username] = {"email": email, "email_verified": verified}
        return username

    yield enrol
    DIRECTORY.clear()
    _forget_oauthlib_cores()


def _sso_login(page, username: str) -> None:
    page.goto("/admin/")
    assert page.locator("#local-passwords-off").is_visible()  # no password form to use
    assert page.locator("#id_password").count() == 0
    page.click("#sso-login a")
    page.wait_for_url("**/idp/login/**")
    assert urlsplit(page.url).hostname == "127.0.0.1"  # the provider, not Warden's host
    page.fill("#id_username", username)
    page.fill("#id_password", IDP_PASSWORD)
    page.click("#idp-login")
    page.wait_for_load_state()


@pytest.fixture
def pending(workspace, make_key, make_member, api):
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            name="crm.update_stage",
            level="read",
            confirmation="always",
        )
    _, plaintext = make_key(workspace, scopes=["actions:read"], owner=make_member(workspace))
    answer = api(plaintext).post(
        "/api/v1/actions", data={"tool": "crm.update_stage", "params": {"deal": 77}}
    )
    assert answer.status == 202, answer.text()
    return ConfirmationRequest.objects.get(action_request_id=answer.json()["id"])


def test_an_approver_logs_in_through_the_provider_and_approves(
    idp, page, workspace, make_member, pending, screenshot
):
    approver = make_member(workspace, Role.APPROVER, email="ann.approver@example.test")
    username = idp("ann", "Ann.Approver@example.test")  # the provider's spelling
    _sso_login(page, username)
    page.wait_for_url("**/admin/")
    assert urlsplit(page.url).hostname == "localhost"
    assert approver.email in page.content()
    page.goto(f"/admin/approvals/confirmationrequest/{pending.pk}/")
    page.fill("#decide-reason", "signed in through SSO, deal 77 is right")
    page.click("button.approve")
    page.wait_for_load_state()
    screenshot(page, "sso-approved")
    pending.refresh_from_db()
    assert pending.status == ConfirmationRequest.Status.APPROVED
    assert AuditEntry.objects.get(action="confirmation.approved").actor == f"user:{approver.email}"
    # the same session is the session API's too
    me = page.request.get("/api/v1/approvals")
    assert me.status == 200, me.text()


def test_an_unverified_email_does_not_log_in(idp, page, workspace, make_member):
    make_member(workspace, Role.APPROVER, email="bob@example.test")
    _sso_login(page, idp("bob", "bob@example.test", verified=False))
    page.wait_for_url("**/admin/login/**")
    assert page.locator("#sso-failed").is_visible()
    page.goto("/admin/")
    assert "/admin/login/" in page.url  # no Warden session came of it


def test_an_unknown_email_is_not_created_unless_allowed(idp, page, settings, django_user_model):
    _sso_login(page, idp("carol", "carol@example.test"))
    page.wait_for_url("**/admin/login/**")
    assert page.locator("#sso-failed").is_visible()
    assert not django_user_model.objects.filter(email__iexact="carol@example.test").exists()


def test_with_creation_allowed_a_new_user_is_created_without_any_role(
    idp, page, settings, django_user_model
):
    settings.WARDEN_OIDC_CREATE_USERS = True
    settings.OIDC_CREATE_USER = True
    _sso_login(page, idp("dan", "dan@example.test"))
    page.wait_for_load_state()
    created = django_user_model.objects.get(email__iexact="dan@example.test")
    assert not created.is_staff and not created.memberships.exists()
