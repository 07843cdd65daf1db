"""An OAuth client driven by hand through Django's test client: registration (RFC 7591),
authorization with PKCE S256 and consent, token, refresh and revocation, as an MCP
client does them (tests/keys/test_oauth_sdk.py runs the official SDK's)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from django.test import Client

REDIRECT = "http://127.0.0.1:33418/callback"
RESOURCE = "http://testserver/mcp"
AGENT_SCOPES = "actions:read actions:write actions:external"


@dataclass
class Registered:
    client_id: str
    client_secret: str | None


def register(client: Client, **metadata) -> Registered:
    body = {
        "client_name": "Claude",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    response = client.post("/oauth/register/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    data = response.json()
    return Registered(data["client_id"], data.get("client_secret"))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(app: Registered, challenge: str, *, scope=AGENT_SCOPES, resource=RESOURCE):
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        "scope": scope,
    }
    if resource:
        params["resource"] = resource
    return params


def consent(
    browser: Client,
    app: Registered,
    challenge: str,
    *,
    workspace,
    scopes,
    tools="*",
    scope=AGENT_SCOPES,
    resource=RESOURCE,
    allow=True,
):
    """The human's consent page: GET shows it, POST answers it. Returns the POST's response."""
    params = authorize_params(app, challenge, scope=scope, resource=resource)
    shown = browser.get("/oauth/authorize/", params)
    assert shown.status_code == 200, shown.content[:500]
    form = {
        **params,
        "workspace": str(workspace.pk),
        "granted_scopes": list(scopes),
        "tool_allowlist": tools,
    }
    if allow:
        form["allow"] = "on"
    return browser.post("/oauth/authorize/", form)


def code_of(response) -> str:
    assert response.status_code == 302, response.content[:500]
    query = parse_qs(urlsplit(response["Location"]).query)
    assert "code" in query, response["Location"]
    return query["code"][0]


def token(client: Client, app: Registered, code: str, verifier: str, *, resource=RESOURCE):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": app.client_id,
        "code_verifier": verifier,
    }
    if resource:
        data["resource"] = resource
    return client.post("/oauth/token/", data)


def refresh(client: Client, app: Registered, refresh_token: str):
    return client.post(
        "/oauth/token/",
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id},
    )


def connect(browser: Client, workspace, scopes=("actions:read",), tools="*") -> tuple:
    """The whole dance for a human already logged in: (registered client, token body)."""
    anonymous = Client()
    app = register(anonymous)
    verifier, challenge = pkce()
    code = code_of(
        consent(browser, app, challenge, workspace=workspace, scopes=scopes, tools=tools)
    )
    answer = token(anonymous, app, code, verifier)
    assert answer.status_code == 200, answer.content
    return app, answer.json()


def mcp(client: Client, access_token: str, method="tools/list", params=None):
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return client.post(
        "/mcp",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {access_token}",
    )
