"""Credentials from the customer's own store, resolved at call time inside the
workspace's namespace: mounted files, HashiCorp Vault KV v2 (a local server speaking its
HTTP API: no Vault binary installs here), AWS Secrets Manager (moto's server mode);
and a deployment that refuses literal header values."""

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway import credentials
from gateway.services import _headers_for_call
from tests.http_servers import serve_in_background

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(gw_workspace, settings):
    settings.WARDEN_CREDENTIAL_NAMESPACES = {str(gw_workspace.pk): "ACME"}
    return gw_workspace


# --- mounted files ------------------------------------------------------------------------


@pytest.fixture
def mounted(tmp_path, settings):
    settings.WARDEN_CREDENTIAL_FILE_ROOT = str(tmp_path)
    (tmp_path / "ACME").mkdir()
    (tmp_path / "ACME" / "crm-token").write_text("Bearer from-a-file\n")
    (tmp_path / "GLOBEX").mkdir()
    (tmp_path / "GLOBEX" / "crm-token").write_text("Bearer globex-only\n")
    return tmp_path


def test_a_mounted_file_is_read_at_call_time(acme, mounted, make_connector):
    connector = make_connector(acme, headers={"Authorization": "file:ACME/crm-token"})
    assert _headers_for_call(connector) == {"Authorization": "Bearer from-a-file"}
    (mounted / "ACME" / "crm-token").write_text("Bearer rotated")
    assert _headers_for_call(connector) == {"Authorization": "Bearer rotated"}


@pytest.mark.parametrize(
    "reference", ["file:GLOBEX/crm-token", "file:ACME/../GLOBEX/crm-token", "file:ACME//x"]
)
def test_no_file_reference_reaches_another_namespace(acme, mounted, reference):
    with pytest.raises(credentials.CredentialNotAllowed):
        credentials.check(reference, workspace=acme)
    with pytest.raises(credentials.CredentialNotAllowed):
        credentials.resolve(reference, workspace=acme)


def test_a_symlink_out_of_the_namespace_is_refused(acme, mounted):
    (mounted / "ACME" / "sneaky").symlink_to(mounted / "GLOBEX" / "crm-token")
    with pytest.raises(credentials.CredentialError, match="outside its namespace"):
        credentials.resolve("file:ACME/sneaky", workspace=acme)


def test_an_unconfigured_store_is_refused_not_sent_as_a_literal(acme, settings):
    settings.WARDEN_CREDENTIAL_FILE_ROOT = ""
    with pytest.raises(credentials.CredentialError, match="WARDEN_CREDENTIAL_FILE_ROOT"):
        credentials.resolve("file:ACME/crm-token", workspace=acme)


# --- Vault KV version 2 ------------------------------------------------------------------

VAULT_TOKEN = "hvs.test-token"


class KV2(BaseHTTPRequestHandler):
    """Vault's KV v2 read as its HTTP API documents it: GET /v1/<mount>/data/<path>,
    X-Vault-Token, 403 without a valid token, 404 for no secret."""

    secrets = {"ACME/crm": {"token": "Bearer from-vault"}, "GLOBEX/crm": {"token": "no"}}
    requests: list = []
    redirect_to = None

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("X-Vault-Token")))
        if self.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.redirect_to + self.path)
            self.end_headers()
            return
        if self.headers.get("X-Vault-Token") != VAULT_TOKEN:
            return self._json(403, {"errors": ["permission denied"]})
        prefix = "/v1/secret/data/"
        data = self.secrets.get(self.path[len(prefix) :]) if self.path.startswith(prefix) else None
        if data is None:
            return self._json(404, {"errors": []})
        metadata = {"version": 3, "deletion_time": "", "destroyed": False}
        return self._json(200, {"data": {"data": data, "metadata": metadata}})

    def _json(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def vault(settings):
    KV2.requests = []
    KV2.redirect_to = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), KV2)
    serve_in_background(server)
    settings.WARDEN_VAULT_ADDR = f"http://127.0.0.1:{server.server_address[1]}"
    settings.WARDEN_VAULT_TOKEN = VAULT_TOKEN
    yield server
    server.shutdown()
    server.server_close()


def test_a_vault_field_is_read_at_call_time(acme, vault, make_connector):
    connector = make_connector(acme, headers={"Authorization": "vault:ACME/crm/token"})
    assert _headers_for_call(connector) == {"Authorization": "Bearer from-vault"}
    assert KV2.requests == [("/v1/secret/data/ACME/crm", VAULT_TOKEN)]


def test_vault_errors_name_the_reference_never_a_value(acme, vault, settings):
    with pytest.raises(credentials.CredentialError, match="does not resolve"):
        credentials.resolve("vault:ACME/missing/token", workspace=acme)
    settings.WARDEN_VAULT_TOKEN = "hvs.wrong"
    with pytest.raises(credentials.CredentialError, match="Vault answered 403") as refused:
        credentials.resolve("vault:ACME/crm/token", workspace=acme)
    assert "hvs." not in str(refused.value)
    with pytest.raises(credentials.CredentialNotAllowed):
        credentials.resolve("vault:GLOBEX/crm/token", workspace=acme)


def test_the_vault_token_never_follows_a_redirect(acme, vault, settings):
    elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), KV2)
    serve_in_background(elsewhere)
    KV2.redirect_to = f"http://127.0.0.1:{elsewhere.server_address[1]}"
    try:
        with pytest.raises(credentials.CredentialError, match="307"):
            credentials.resolve("vault:ACME/crm/token", workspace=acme)
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
    assert len(KV2.requests) == 1  # the redirect target was never asked


# --- AWS Secrets Manager ---------------------------------------------------------------


@pytest.fixture
def aws(settings, monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    settings.WARDEN_AWS_SECRETS_ENABLED = True
    settings.WARDEN_AWS_SECRETS_ENDPOINT = endpoint
    client = boto3.client("secretsmanager", endpoint_url=endpoint)
    client.create_secret(Name="ACME/crm/token", SecretString="Bearer from-aws")
    yield client
    server.stop()


def test_an_aws_secret_is_read_at_call_time(acme, aws, make_connector):
    connector = make_connector(acme, headers={"Authorization": "aws-sm:ACME/crm/token"})
    assert _headers_for_call(connector) == {"Authorization": "Bearer from-aws"}
    aws.put_secret_value(SecretId="ACME/crm/token", SecretString="Bearer rotated")
    assert _headers_for_call(connector) == {"Authorization": "Bearer rotated"}
    with pytest.raises(credentials.CredentialError, match="does not resolve"):
        credentials.resolve("aws-sm:ACME/missing", workspace=acme)


# --- literals refused --------------------------------------------------------------------


def test_a_deployment_can_refuse_literal_header_values(acme, gw_admin, user_client, settings):
    settings.WARDEN_CREDENTIAL_LITERALS = False
    client = user_client(gw_admin, acme)
    refused = client.post(
        "/api/v1/connectors",
        {
            "reason": "test change",
            "name": "crm2",
            "kind": "mcp",
            "url": "https://crm.example.com/mcp",
            "headers": {"Authorization": "Bearer pasted-literal"},
        },
        format="json",
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["code"] == "credential_not_allowed"
    assert "pasted-literal" not in refused.content.decode()


def test_a_literal_stored_before_the_setting_is_not_sent(acme, make_connector, settings):
    connector = make_connector(acme, headers={"Authorization": "Bearer stored-earlier"})
    settings.WARDEN_CREDENTIAL_LITERALS = False
    with pytest.raises(credentials.CredentialNotAllowed):
        _headers_for_call(connector)
