"""How OAuth clients identify themselves (README "Connecting with OAuth"): client ID
metadata documents fetched under the outbound policy, dynamic client registration with
a redirect URI policy and a per-address rate limit, and two consents at once."""

from __future__ import annotations

import http.server
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from oauth2_provider.models import get_application_model

from keys import oauth
from keys import services as key_services
from keys.models import MachineKey
from tenants.models import Membership, Role
from tests.http_servers import serve_in_background
from tests.keys.oauth_flow import (
    REDIRECT,
    Registered,
    code_of,
    consent,
    mcp,
    pkce,
    register,
    token,
)
from tests.security.test_egress_policy import FORMS

pytestmark = pytest.mark.django_db

Application = get_application_model()


@pytest.fixture
def owner_browser(workspace):
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    browser = Client()
    browser.force_login(owner)
    browser.owner = owner
    return browser


def _register_raw(client: Client, address="198.51.100.7", **metadata):
    body = {
        "client_name": "Agent",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    return client.post(
        "/oauth/register/",
        json.dumps(body),
        content_type="application/json",
        REMOTE_ADDR=address,
    )


# --- redirect URI policy (dynamic client registration) -------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai/api/mcp/auth_callback",
        "http://127.0.0.1:33418/callback",
        "http://[::1]:6274/oauth/callback",
        "http://localhost:8080/cb",
    ],
)
def test_https_and_loopback_http_redirects_register(client, uri):
    response = _register_raw(client, redirect_uris=[uri])
    assert response.status_code == 201, response.content
    assert response.json()["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    "uri",
    [
        "http://evil.example/callback",  # http off the loopback interface
        "http://10.0.0.5/callback",
        "http://127.0.0.1.evil.example/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "com.example.app:/callback",  # a private-use scheme the operator did not list
        "https://claude.ai/cb#fragment",
        "https:///no-host",
        "",
    ],
)
def test_other_redirects_are_refused_with_invalid_redirect_uri(client, uri):
    before = Application.objects.count()
    response = _register_raw(client, redirect_uris=["https://ok.example/cb", uri])
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_redirect_uri"
    assert body["error_description"]
    assert Application.objects.count() == before


def test_an_update_cannot_widen_the_redirects(client):
    registered = _register_raw(client).json()
    path = f"/oauth/register/{registered['client_id']}/"
    auth = f"Bearer {registered['registration_access_token']}"
    body = {
        "client_id": registered["client_id"],
        "redirect_uris": ["http://evil.example/cb"],
        "token_endpoint_auth_method": "none",
    }
    response = client.put(
        path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    app = Application.objects.get(client_id=registered["client_id"])
    assert app.redirect_uris == REDIRECT


def test_a_listed_private_use_scheme_registers_and_receives_the_code(
    settings, workspace, owner_browser
):
    settings.WARDEN_OAUTH_PRIVATE_USE_SCHEMES = ["com.example.agent"]
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https", "com.example.agent"],
    }
    native = "com.example.agent:/oauth/callback"
    response = _register_raw(Client(), redirect_uris=[native])
    assert response.status_code == 201, response.content
    app = Registered(response.json()["client_id"], None)
    _, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": native,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s1",
        "scope": "actions:read",
    }
    assert owner_browser.get("/oauth/authorize/", params).status_code == 200
    answer = owner_browser.post(
        "/oauth/authorize/",
        {
            **params,
            "workspace": str(workspace.pk),
            "granted_scopes": ["actions:read"],
            "tool_allowlist": "*",
            "allow": "on",
        },
    )
    assert answer.status_code == 302
    assert answer["Location"].startswith(native + "?")
    assert "code=" in answer["Location"]


def test_the_consent_page_names_the_redirect_host(owner_browser):
    uri = "https://claude.ai/api/mcp/auth_callback"
    app = Registered(_register_raw(Client(), redirect_uris=[uri]).json()["client_id"], None)
    _, challenge = pkce()
    shown = _authorize(owner_browser, app, challenge, redirect=uri)
    assert shown.status_code == 200
    assert b"Redirects to <strong>claude.ai</strong>" in shown.content
    assert b"loopback-redirect" not in shown.content  # a warning only where it applies
    assert b"the document at" not in shown.content  # a registered client, not a document


# --- registration rate limit -------------------------------------------------------------


def test_registrations_are_limited_per_address(settings, client):
    settings.WARDEN_OAUTH_REGISTRATIONS_PER_HOUR = 2
    for _ in range(2):
        assert _register_raw(client, address="203.0.113.9").status_code == 201
    before = Application.objects.count()
    refused = _register_raw(client, address="203.0.113.9")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= oauth.REGISTRATION_WINDOW_SECONDS
    assert Application.objects.count() == before
    # Another address is not held back by this one.
    assert _register_raw(client, address="203.0.113.10").status_code == 201


def test_the_registration_limit_can_be_switched_off(settings, client):
    settings.WARDEN_OAUTH_REGISTRATIONS_PER_HOUR = 0
    for _ in range(3):
        assert _register_raw(client, address="203.0.113.11").status_code == 201


# --- client ID metadata documents ----------------------------------------------------------


def test_metadata_documents_are_advertised(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["client_id_metadata_document_supported"] is True


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: the local document server's and the only
    authority the test fetcher trusts."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class DocumentServer:
    """A local HTTPS server of client ID metadata documents: `documents` maps a path to
    (status, headers, body); `trickle` sends the answer a byte at a time."""

    def __init__(self, certificate):
        documents: dict[str, tuple] = {}
        self.documents = documents
        self.requests: list[str] = []
        self.trickle_seconds = 0.0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                status, headers, body = documents.get(self.path, (404, {}, b""))
                head = f"HTTP/1.1 {status} X\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": len(body)}.items()
                )
                raw = (head + "\r\n").encode() + body
                try:
                    if outer.trickle_seconds:
                        for i in range(len(raw)):
                            self.wfile.write(raw[i : i + 1])
                            self.wfile.flush()
                            time.sleep(outer.trickle_seconds)
                    else:
                        self.wfile.write(raw)
                except OSError:
                    pass  # the fetcher hung up

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, path, document=None, *, status=200, headers=None, body=None):
        client_id = self.base + path
        if body is None:
            body = json.dumps(
                {
                    "client_id": client_id,
                    "client_name": "Doc Agent",
                    "redirect_uris": [REDIRECT],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "none",
                    **(document or {}),
                }
            ).encode()
        self.documents[path] = (
            status,
            {"Content-Type": "application/json", **(headers or {})},
            body,
        )
        return Registered(client_id, None)


@pytest.fixture
def documents(certificate, settings):
    """The document server, and Warden's fetcher trusting it: its certificate and its
    loopback address (which the outbound policy otherwise refuses)."""
    server = DocumentServer(certificate)
    serve_in_background(server.server)

    class TrustingFetcher(oauth.MetadataFetcher):
        def ssl_context(self):
            return ssl.create_default_context(cafile=str(certificate[0]))

    class LocalFetcher(TrustingFetcher):
        trusted_networks = (ipaddress.ip_network("127.0.0.1/32"),)

    server.trusting_fetcher = TrustingFetcher

    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_METADATA_FETCHER": LocalFetcher,
        "CIMD_FETCH_TIMEOUT_SECONDS": 3,  # room for a loaded CI machine's handshake
    }
    yield server
    server.server.shutdown()
    server.server.server_close()


def _authorize(browser, app: Registered, challenge, redirect=REDIRECT):
    return browser.get(
        "/oauth/authorize/",
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": redirect,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s1",
            "scope": "actions:read",
            "resource": "http://testserver/mcp",
        },
    )


def test_a_metadata_document_client_connects_without_registering(
    documents, workspace, owner_browser, make_tool
):
    make_tool(workspace, name="crm.lookup", level="read", confirmation="never")
    app = documents.publish("/agent/client.json")
    verifier, challenge = pkce()
    shown = _authorize(owner_browser, app, challenge)
    assert shown.status_code == 200, shown.content[:500]
    assert b"Doc Agent" in shown.content
    # The spec's localhost-impersonation warnings: whose document, where the code goes.
    assert b"the document at <strong>127.0.0.1</strong>" in shown.content
    assert b"Redirects to <strong>127.0.0.1</strong>" in shown.content
    assert b'data-warning="loopback-redirect"' in shown.content
    code = code_of(
        consent(owner_browser, app, challenge, workspace=workspace, scopes=["actions:read"])
    )
    answer = token(Client(), app, code, verifier)
    assert answer.status_code == 200, answer.content
    listed = mcp(Client(), answer.json()["access_token"])
    assert listed.status_code == 200
    names = [t["name"] for t in listed.json()["result"]["tools"]]
    assert len(names) == 1
    stored = Application.objects.get(client_id=app.client_id)
    assert stored.registration_source == Application.RegistrationSource.CIMD
    assert MachineKey.objects.get(oauth_application=stored).credential == "oauth"
    # Cached: the consent and the token did not fetch the document again.
    assert documents.requests == ["/agent/client.json"]


def _refused(documents, owner_browser, app, path):
    _, challenge = pkce()
    response = _authorize(owner_browser, app, challenge)
    assert response.status_code != 302  # never redirected to a client nobody vouched for
    assert b"Doc Agent" not in response.content
    assert not Application.objects.filter(client_id=app.client_id).exists()
    return response


def test_a_document_naming_another_client_id_is_refused(documents, owner_browser):
    app = documents.publish("/a.json", {"client_id": documents.base + "/b.json"})
    _refused(documents, owner_browser, app, "/a.json")


def test_a_document_with_a_non_loopback_http_redirect_is_refused(documents, owner_browser):
    app = documents.publish(
        "/a.json", {"redirect_uris": [REDIRECT, "http://evil.example/callback"]}
    )
    _refused(documents, owner_browser, app, "/a.json")


def test_a_document_with_a_secret_is_refused(documents, owner_browser):
    app = documents.publish("/a.json", {"token_endpoint_auth_method": "client_secret_basic"})
    _refused(documents, owner_browser, app, "/a.json")


def test_an_oversized_document_is_refused(documents, owner_browser):
    app = documents.publish("/big.json", {"client_name": "Doc Agent" + "x" * 20_000})
    _refused(documents, owner_browser, app, "/big.json")


def test_a_trickling_document_server_is_cut_at_the_deadline(documents, owner_browser):
    app = documents.publish("/slow.json")
    documents.trickle_seconds = 0.05  # ~400 bytes: 20 s if nobody cut it
    started = time.monotonic()
    _refused(documents, owner_browser, app, "/slow.json")
    assert time.monotonic() - started < 6  # CIMD_FETCH_TIMEOUT_SECONDS is 3 here


def test_a_document_on_an_internal_address_is_never_fetched(documents, settings, owner_browser):
    """Without a trusted network (as in production) 127.0.0.1 is refused before any
    connection, as webhooks and connectors refuse it; the certificate would pass."""
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_METADATA_FETCHER": documents.trusting_fetcher,
    }
    app = documents.publish("/agent.json")
    _refused(documents, owner_browser, app, "/agent.json")
    assert documents.requests == []


def test_metadata_documents_can_be_switched_off(documents, settings, owner_browser):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "CIMD_ENABLED": False}
    app = documents.publish("/agent.json")
    _refused(documents, owner_browser, app, "/agent.json")
    assert documents.requests == []


# --- two consents at once ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_consents_for_one_client_at_once_leave_one_grant(workspace, monkeypatch):
    """The same human consents twice to the same client at the same moment (two tabs,
    a double click): no 500; the second consent replaces the first's grant."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks and real concurrent transactions")
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    app = register(Client())
    both_checked = threading.Barrier(2, timeout=20)
    real_check = key_services.check_mintable

    def check_then_wait(**kwargs):
        # Both consents have seen no reusable grant before either writes one.
        real_check(**kwargs)
        both_checked.wait()

    monkeypatch.setattr(key_services, "check_mintable", check_then_wait)
    answers: dict[int, object] = {}

    def one_consent(index):
        try:
            browser = Client(raise_request_exception=False)
            browser.force_login(owner)
            verifier, challenge = pkce()
            answer = consent(browser, app, challenge, workspace=workspace, scopes=["actions:read"])
            answers[index] = (answer, verifier)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_consent, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(answer.status_code for answer, _ in answers.values())
    assert statuses == [302, 302], [a.content[:300] for a, _ in answers.values()]
    live = MachineKey.objects.filter(
        oauth_application__client_id=app.client_id, owner=owner, revoked_at__isnull=True
    )
    assert live.count() == 1
    replaced = MachineKey.objects.filter(
        oauth_application__client_id=app.client_id, revoked_at__isnull=False
    )
    assert replaced.count() == 1
    # Whichever code survived the replacement gets a token that works on /mcp.
    tokens = [
        token(Client(), app, code_of(answer), verifier) for answer, verifier in answers.values()
    ]
    working = [t for t in tokens if t.status_code == 200]
    assert working
    assert all(t.status_code in (200, 400) for t in tokens)
    assert mcp(Client(), working[0].json()["access_token"]).status_code == 200


@pytest.fixture
def resolver(monkeypatch):
    """A DNS answer per host for the fetcher, and a record of every connection tried."""
    table: dict[str, list[str]] = {}
    connections: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, 1, 6, "", (a, port))
            for a in table[host]
        ]

    def fetch_from(self, ip, *args, **kwargs):
        connections.append(ip)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(oauth.MetadataFetcher, "_fetch_from", fetch_from)
    return table, connections


@pytest.mark.parametrize("address", FORMS.values(), ids=FORMS.keys())
def test_a_document_host_resolving_to_an_internal_address_is_never_fetched(
    resolver, owner_browser, address
):
    """The outbound policy webhooks and connectors share (common.egress, including the
    IPv6 forms of internal IPv4 addresses), on the metadata document path."""
    table, connections = resolver
    table["agent.example"] = ["93.184.216.34", address]  # one bad answer spoils the host
    app = Registered("https://agent.example/client.json", None)
    _, challenge = pkce()
    assert _authorize(owner_browser, app, challenge).status_code != 302
    assert connections == []
    assert not Application.objects.filter(client_id=app.client_id).exists()


def test_a_document_host_resolving_to_public_addresses_is_fetched(resolver, owner_browser):
    table, connections = resolver
    table["agent.example"] = ["93.184.216.34", "64:ff9b::5db8:d822"]
    _, challenge = pkce()
    _authorize(owner_browser, Registered("https://agent.example/c.json", None), challenge)
    assert connections == ["93.184.216.34", "64:ff9b::5db8:d822"]  # NAT64 of a public one
