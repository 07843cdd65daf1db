"""OAuth for an MCP client, the human's part in a real browser (issue 22's proof): the
client's authorization URL sends a logged-out human to the login page, then back to
the consent page, where they pick the workspace, a scope and an allowlist; the code
reaches the client's loopback callback, and the token it buys lists tools on /mcp."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from keys.models import MachineKey
from tenants.models import Membership, Role
from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

CALLBACK = "http://127.0.0.1:33421/callback"


def test_a_human_logs_in_and_consents_in_the_browser(
    workspace, make_tool, live_server, settings, page, playwright_instance
):
    make_tool(workspace, name="crm.lookup", level="read", confirmation="never")
    make_tool(workspace, name="billing.refund", level="write")
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    resource = f"{live_server.url}/mcp"
    settings.WARDEN_OAUTH_RESOURCE = resource
    client = playwright_instance.request.new_context(base_url=live_server.url)
    try:
        registered = client.post(
            "/oauth/register/",
            data=json.dumps(
                {
                    "client_name": "Browser-tested agent",
                    "redirect_uris": [CALLBACK],
                    "token_endpoint_auth_method": "none",
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        assert registered.status == 201, registered.text()
        client_id = registered.json()["client_id"]
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": CALLBACK,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "browser-state",
                "scope": "actions:read actions:write",
                "resource": resource,
            }
        )
        # The loopback callback: the browser's navigation there is caught, not served.
        reached: list[str] = []

        def callback(route):
            reached.append(route.request.url)
            route.fulfill(status=200, body="You may close this window.")

        page.route(f"{CALLBACK}**", callback)

        page.goto(f"/oauth/authorize/?{query}")
        assert "/admin/login/" in page.url  # not logged in: the login page first
        page.fill("#id_username", owner.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/oauth/authorize/**")
        assert page.get_by_text("Browser-tested agent").count() >= 1
        assert page.locator('[data-warning="loopback-redirect"]').count() == 1
        page.select_option("#id_workspace", str(workspace.pk))
        page.uncheck("input[name=granted_scopes][value='actions:write']")
        page.check("input[name=granted_scopes][value='actions:read']")
        page.fill("#id_tool_allowlist", "crm.*")
        page.click("button[name=allow]")
        page.wait_for_url(f"{CALLBACK}**")
        assert len(reached) == 1
        answer = parse_qs(urlsplit(reached[0]).query)
        assert answer["state"] == ["browser-state"]

        issued = client.post(
            "/oauth/token/",
            form={
                "grant_type": "authorization_code",
                "code": answer["code"][0],
                "redirect_uri": CALLBACK,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": resource,
            },
        )
        assert issued.status == 200, issued.text()
        listed = client.post(
            "/mcp",
            data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {issued.json()['access_token']}",
            },
        )
        assert listed.status == 200, listed.text()
        names = [tool["name"] for tool in listed.json()["result"]["tools"]]
        assert names == ["crm-lookup"]  # the allowlist the human typed, nothing else
    finally:
        client.dispose()
    grant = MachineKey.objects.get(credential="oauth")
    assert grant.owner == owner and grant.scopes == ["actions:read"]
    assert grant.tool_allowlist == ["crm.*"]
