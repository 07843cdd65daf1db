"""MCP authorization (README "Connecting with OAuth"): /mcp is an OAuth 2.1 protected
resource, Warden its authorization server, and a consent is a machine key."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken, get_application_model

from approvals.models import ConfirmationRequest
from keys.models import MachineKey
from tenants.models import Membership, Role
from tests.keys.oauth_flow import (
    AGENT_SCOPES,
    RESOURCE,
    code_of,
    connect,
    consent,
    mcp,
    pkce,
    refresh,
    register,
    token,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_browser(workspace):
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    browser = Client()
    browser.force_login(owner)
    browser.owner = owner
    return browser


@pytest.fixture
def crm_tool(workspace, make_tool):
    return make_tool(workspace, name="crm.lookup", level="read", confirmation="never")


# --- discovery ---------------------------------------------------------------------------


def test_401_names_the_protected_resource_metadata_and_scope(client):
    response = client.post("/mcp", "{}", content_type="application/json")
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert (
        'resource_metadata="http://testserver/.well-known/oauth-protected-resource/mcp"'
        in challenge
    )
    assert f'scope="{AGENT_SCOPES}"' in challenge
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "path",
    ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"],
)
def test_protected_resource_metadata_names_mcp_and_warden(client, path):
    data = client.get(path).json()
    assert data["resource"] == RESOURCE
    assert data["authorization_servers"] == ["http://testserver"]
    assert "actions:read" in data["scopes_supported"]


def test_authorization_server_metadata(client):
    data = client.get("/.well-known/oauth-authorization-server").json()
    assert data["issuer"] == "http://testserver"
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert data["registration_endpoint"] == "http://testserver/oauth/register/"
    assert data["authorization_endpoint"] == "http://testserver/oauth/authorize/"
    assert data["revocation_endpoint"] == "http://testserver/oauth/revoke/"
    assert set(data["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert data["response_types_supported"] == ["code"]


def test_registration_of_a_grant_without_a_human_is_refused(client):
    body = {"redirect_uris": ["https://x.example/cb"], "grant_types": ["client_credentials"]}
    response = client.post("/oauth/register/", json.dumps(body), content_type="application/json")
    assert response.status_code == 401
    assert not get_application_model().objects.exists()


# --- the flow ----------------------------------------------------------------------------


def test_consent_is_a_key_and_its_token_lists_and_calls_tools(
    workspace, owner_browser, crm_tool, make_tool
):
    make_tool(workspace, name="billing.refund", level="write")
    app, tokens = connect(owner_browser, workspace, scopes=("actions:read",), tools="crm.*")
    key = MachineKey.objects.get(oauth_application__client_id=app.client_id)
    assert key.credential == "oauth"
    assert key.owner == owner_browser.owner
    assert key.scopes == ["actions:read"] and key.tool_allowlist == ["crm.*"]
    assert key.digest == ""  # no secret: only its tokens act as it

    listed = mcp(Client(), tokens["access_token"]).json()["result"]["tools"]
    assert [t["name"] for t in listed] == ["crm-lookup"]  # its portable MCP name
    called = mcp(
        Client(), tokens["access_token"], "tools/call", {"name": "crm.lookup", "arguments": {}}
    ).json()["result"]
    assert called["isError"] is False
    hidden = mcp(
        Client(), tokens["access_token"], "tools/call", {"name": "billing.refund", "arguments": {}}
    ).json()["result"]
    assert hidden["isError"] is True and "tool_not_allowed" in hidden["content"][0]["text"]


def test_pkce_is_required(workspace, owner_browser):
    app = register(Client())
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": "http://127.0.0.1:33418/callback",
        "scope": "actions:read",
        "resource": RESOURCE,
    }
    response = owner_browser.get("/oauth/authorize/", params)
    assert response.status_code == 302
    assert "error=invalid_request" in response["Location"]
    assert "code=" not in response["Location"]


def test_the_code_needs_its_verifier(workspace, owner_browser):
    app = register(Client())
    _verifier, challenge = pkce()
    code = code_of(
        consent(owner_browser, app, challenge, workspace=workspace, scopes=["actions:read"])
    )
    wrong, _ = pkce()
    assert token(Client(), app, code, wrong).status_code == 400


def test_refresh_issues_a_working_token_once(workspace, owner_browser, crm_tool):
    app, tokens = connect(owner_browser, workspace)
    renewed = refresh(Client(), app, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.content
    fresh = renewed.json()
    assert mcp(Client(), fresh["access_token"]).status_code == 200
    assert refresh(Client(), app, tokens["refresh_token"]).status_code == 400  # rotated


def test_revoked_token_gets_401(workspace, owner_browser, crm_tool):
    app, tokens = connect(owner_browser, workspace)
    revoked = Client().post(
        "/oauth/revoke/", {"token": tokens["access_token"], "client_id": app.client_id}
    )
    assert revoked.status_code == 200
    response = mcp(Client(), tokens["access_token"])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_revoking_the_grant_key_ends_its_tokens(
    workspace, owner_browser, crm_tool, user_client, api_error
):
    app, tokens = connect(owner_browser, workspace)
    key = MachineKey.objects.get(oauth_application__client_id=app.client_id)
    api = user_client(owner_browser.owner, workspace)
    listed = api.get("/api/v1/keys").json()["results"]
    grant = next(k for k in listed if k["id"] == str(key.pk))
    assert grant["credential"] == "oauth"
    assert grant["oauth_client"] == {"client_id": app.client_id, "name": "Claude"}
    assert (
        api.post(
            f"/api/v1/keys/{key.pk}/revoke", {"reason": "test change"}, format="json"
        ).status_code
        == 200
    )
    api_error(mcp(Client(), tokens["access_token"]), 401, "invalid_token")
    assert refresh(Client(), app, tokens["refresh_token"]).status_code == 400


def test_an_expired_token_is_refused(workspace, owner_browser, crm_tool, api_error):
    _, tokens = connect(owner_browser, workspace)
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    api_error(mcp(Client(), tokens["access_token"]), 401, "invalid_token")


def test_a_grant_cannot_be_rotated_into_a_secret(workspace, owner_browser, user_client, api_error):
    app, _ = connect(owner_browser, workspace)
    key = MachineKey.objects.get(oauth_application__client_id=app.client_id)
    api = user_client(owner_browser.owner, workspace)
    api_error(api.post(f"/api/v1/keys/{key.pk}/rotate", {}, format="json"), 409, "conflict")


def test_the_suspension_of_the_grant_holds_for_its_tokens(workspace, owner_browser, api_error):
    app, tokens = connect(owner_browser, workspace)
    MachineKey.objects.filter(oauth_application__client_id=app.client_id).update(
        suspended_at=timezone.now()
    )
    api_error(mcp(Client(), tokens["access_token"]), 401, "key_revoked")


# --- audience (RFC 8707) -----------------------------------------------------------------


def test_a_token_for_another_resource_is_refused(workspace, owner_browser, crm_tool, api_error):
    _, tokens = connect(owner_browser, workspace)
    AccessToken.objects.update(resource=["https://elsewhere.example/mcp"])
    body = api_error(mcp(Client(), tokens["access_token"]), 401, "invalid_token")
    assert "not issued for this resource" in body["error"]["message"]


def test_an_unrestricted_token_is_refused(workspace, owner_browser, crm_tool, api_error):
    _, tokens = connect(owner_browser, workspace)
    AccessToken.objects.update(resource=[])
    api_error(mcp(Client(), tokens["access_token"]), 401, "invalid_token")


def test_consent_for_another_resource_is_refused(workspace, owner_browser):
    app = register(Client())
    _, challenge = pkce()
    shown = owner_browser.get(
        "/oauth/authorize/",
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": "http://127.0.0.1:33418/callback",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "actions:read",
            "resource": "https://elsewhere.example/mcp",
        },
    )
    assert shown.status_code == 403
    assert b"invalid_target" in shown.content


def test_without_a_resource_the_token_is_still_bound_to_mcp(workspace, owner_browser, crm_tool):
    anonymous = Client()
    app = register(anonymous)
    verifier, challenge = pkce()
    code = code_of(
        consent(
            owner_browser,
            app,
            challenge,
            workspace=workspace,
            scopes=["actions:read"],
            resource=None,
        )
    )
    answer = token(anonymous, app, code, verifier, resource=None)
    assert answer.status_code == 200, answer.content
    assert AccessToken.objects.get(user=owner_browser.owner).resource == [RESOURCE]
    assert mcp(Client(), answer.json()["access_token"]).status_code == 200


def test_the_registration_token_is_no_access_token(client, api_error):
    body = {"redirect_uris": ["http://127.0.0.1:1/cb"], "token_endpoint_auth_method": "none"}
    registered = client.post(
        "/oauth/register/", json.dumps(body), content_type="application/json"
    ).json()
    api_error(mcp(Client(), registered["registration_access_token"]), 401, "invalid_token")


# --- consent: no wider than the human, governed when it changes governance ---------------


def test_consent_wider_than_the_role_is_refused(workspace, make_member):
    admin = make_member(workspace, Role.ADMIN)  # manage_keys, not manage_workspace
    browser = Client()
    browser.force_login(admin)
    app = register(Client())
    _, challenge = pkce()
    refused = consent(
        browser,
        app,
        challenge,
        workspace=workspace,
        scopes=["workspace:admin"],
        scope="actions:read workspace:admin",
    )
    assert refused.status_code == 403
    assert b"forbidden_by_scope" in refused.content
    assert not MachineKey.objects.filter(credential="oauth").exists()
    assert not ConfirmationRequest.objects.exists()


def test_a_member_who_may_not_hand_out_keys_cannot_consent(workspace, make_member):
    approver = make_member(workspace, Role.APPROVER)
    browser = Client()
    browser.force_login(approver)
    _, challenge = pkce()
    refused = consent(
        browser, register(Client()), challenge, workspace=workspace, scopes=["actions:read"]
    )
    assert refused.status_code == 403
    assert not MachineKey.objects.filter(credential="oauth").exists()


def test_scopes_the_client_did_not_ask_for_are_refused(workspace, owner_browser):
    _, challenge = pkce()
    refused = consent(
        owner_browser,
        register(Client()),
        challenge,
        workspace=workspace,
        scopes=["actions:read", "audit:read"],
        scope="actions:read",
    )
    assert refused.status_code == 403
    assert not MachineKey.objects.filter(credential="oauth").exists()


def test_consent_in_a_workspace_one_is_not_a_member_of_is_refused(
    workspace, other_workspace, owner_browser
):
    _, challenge = pkce()
    refused = consent(
        owner_browser,
        register(Client()),
        challenge,
        workspace=other_workspace,
        scopes=["actions:read"],
    )
    assert refused.status_code == 200  # the form again: no such choice
    assert "code=" not in refused.get("Location", "")
    assert not MachineKey.objects.filter(credential="oauth").exists()


def test_governance_scope_consent_is_filed_for_a_second_person(
    workspace, owner_browser, make_member, approve
):
    app = register(Client())
    _, challenge = pkce()
    filed = consent(
        owner_browser,
        app,
        challenge,
        workspace=workspace,
        scopes=["actions:read", "tools:write"],
        scope="actions:read tools:write",
    )
    assert filed.status_code == 202
    assert b"Waiting for a second person" in filed.content
    pending = ConfirmationRequest.objects.get(status="pending")
    assert pending.action_request.tool_name == "warden.key.grant_governance_scope"
    assert not MachineKey.objects.filter(credential="oauth").exists()

    # Its owner may not approve it; another owner does, and the grant exists.
    second = make_member(workspace, Role.OWNER)
    assert approve(second, workspace, pending.pk).status_code == 200
    key = MachineKey.objects.get(credential="oauth")
    assert key.scopes == ["actions:read", "tools:write"]
    assert key.owner == owner_browser.owner
    assert owner_browser.owner.pk in key.custody_user_ids

    # Connecting again with the same choices uses the approved grant.
    verifier, challenge = pkce()
    code = code_of(
        consent(
            owner_browser,
            app,
            challenge,
            workspace=workspace,
            scopes=["actions:read", "tools:write"],
            scope="actions:read tools:write",
        )
    )
    assert token(Client(), app, code, verifier).status_code == 200
    assert MachineKey.objects.filter(credential="oauth").count() == 1


def test_a_new_consent_replaces_the_previous_grant(workspace, owner_browser, crm_tool, api_error):
    anonymous = Client()
    app = register(anonymous)
    verifier, challenge = pkce()
    first = code_of(
        consent(owner_browser, app, challenge, workspace=workspace, scopes=["actions:read"])
    )
    old = token(anonymous, app, first, verifier).json()
    verifier, challenge = pkce()
    second = code_of(
        consent(
            owner_browser,
            app,
            challenge,
            workspace=workspace,
            scopes=["actions:read"],
            tools="crm.lookup",
        )
    )
    new = token(anonymous, app, second, verifier).json()
    keys = MachineKey.objects.filter(credential="oauth").order_by("created_at")
    assert [k.revoked_at is not None for k in keys] == [True, False]
    api_error(mcp(Client(), old["access_token"]), 401, "invalid_token")
    assert mcp(Client(), new["access_token"]).status_code == 200


# --- tenants ------------------------------------------------------------------------------


def test_another_workspace_cannot_see_or_revoke_the_grant(
    workspace, other_workspace, owner_browser, user_client, make_key, key_client, api_error
):
    app, tokens = connect(owner_browser, workspace)
    grant = MachineKey.objects.get(oauth_application__client_id=app.client_id)
    other_owner = Membership.objects.get(workspace=other_workspace, role=Role.OWNER).user
    _, other_key = make_key(other_workspace, scopes=["workspace:admin"], owner=other_owner)
    for intruder in (user_client(other_owner, other_workspace), key_client(other_key)):
        listed = intruder.get("/api/v1/keys").json()["results"]
        assert str(grant.pk) not in json.dumps(listed)
        api_error(intruder.get(f"/api/v1/keys/{grant.pk}"), 404, "not_found")
        api_error(
            intruder.post(
                f"/api/v1/keys/{grant.pk}/revoke", {"reason": "test change"}, format="json"
            ),
            404,
            "not_found",
        )
    grant.refresh_from_db()
    assert grant.revoked_at is None
    assert mcp(Client(), tokens["access_token"]).status_code == 200
    # And its token acts in its own workspace only.
    response = mcp(Client(), tokens["access_token"])
    assert other_workspace.slug not in response.content.decode()


def test_another_client_cannot_refresh_or_revoke_the_grants_tokens(
    workspace, owner_browser, crm_tool
):
    _, tokens = connect(owner_browser, workspace)
    intruder = register(Client(), client_name="Intruder")
    revoked = Client().post(
        "/oauth/revoke/", {"token": tokens["access_token"], "client_id": intruder.client_id}
    )
    assert revoked.status_code in (200, 400, 401)
    assert mcp(Client(), tokens["access_token"]).status_code == 200
    assert refresh(Client(), intruder, tokens["refresh_token"]).status_code in (400, 401)
    assert mcp(Client(), tokens["access_token"]).status_code == 200


def test_a_client_cannot_skip_the_consent_page(workspace, owner_browser):
    anonymous = Client()
    app = register(anonymous)
    verifier, challenge = pkce()
    code = code_of(
        consent(owner_browser, app, challenge, workspace=workspace, scopes=["actions:read"])
    )
    assert token(anonymous, app, code, verifier).status_code == 200
    _, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": "http://127.0.0.1:33418/callback",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "actions:read",
        "resource": RESOURCE,
        "approval_prompt": "auto",
    }
    AccessToken.objects.update(scope="actions:read")
    shown = owner_browser.get("/oauth/authorize/", params)
    assert shown.status_code == 200  # the consent page, not a redirect with a code
    assert b"Connect an MCP client" in shown.content


def test_a_tampered_resource_on_the_consent_form_is_refused(workspace, owner_browser):
    app = register(Client())
    _, challenge = pkce()
    response = consent(owner_browser, app, challenge, workspace=workspace, scopes=["actions:read"])
    assert response.status_code == 302
    _, challenge = pkce()
    shown = owner_browser.post(
        "/oauth/authorize/",
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": "http://127.0.0.1:33418/callback",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "actions:read",
            "resource": "https://elsewhere.example/mcp",
            "workspace": str(workspace.pk),
            "granted_scopes": ["actions:read"],
            "tool_allowlist": "*",
            "allow": "on",
        },
    )
    assert shown.status_code == 403
    assert b"invalid_target" in shown.content


def test_the_grants_ip_allowlist_holds_for_its_tokens(workspace, owner_browser, api_error):
    app, tokens = connect(owner_browser, workspace)
    MachineKey.objects.filter(oauth_application__client_id=app.client_id).update(
        allowed_ips=["10.0.0.0/8"]
    )
    api_error(mcp(Client(), tokens["access_token"]), 401, "invalid_token")


def test_guessing_tokens_is_throttled_per_address(settings, api_error):
    settings.WARDEN_KEY_GUESS_MAX_PER_ADDRESS = 3
    for attempt in range(3):
        api_error(mcp(Client(), f"guess-{attempt}-{'x' * 40}"), 401, "invalid_token")
    api_error(mcp(Client(), "guess-final-" + "x" * 40), 429, "rate_limited")


def test_codes_and_tokens_never_reach_the_logs(workspace, owner_browser, crm_tool, caplog):
    caplog.set_level(logging.DEBUG)
    anonymous = Client()
    app = register(anonymous)
    verifier, challenge = pkce()
    code = code_of(
        consent(owner_browser, app, challenge, workspace=workspace, scopes=["actions:read"])
    )
    tokens = token(anonymous, app, code, verifier).json()
    mcp(Client(), tokens["access_token"])
    refresh(anonymous, app, tokens["refresh_token"])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (code, verifier, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in logged


def test_the_grant_is_listed_and_revocable_in_the_admin(workspace, owner_browser, crm_tool):
    app, tokens = connect(owner_browser, workspace)
    key = MachineKey.objects.get(oauth_application__client_id=app.client_id)
    listed = owner_browser.get("/admin/keys/machinekey/")
    assert listed.status_code == 200 and b"OAuth: Claude" in listed.content
    page = owner_browser.get(f"/admin/keys/machinekey/{key.pk}/change/")
    assert page.status_code == 200
    assert app.client_id.encode() in page.content and b"OAuth grant" in page.content
    owner_browser.post(
        "/admin/keys/machinekey/",
        {"reason": "test change", "action": "revoke_selected", "_selected_action": [key.pk]},
        follow=True,
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert mcp(Client(), tokens["access_token"]).status_code == 401
