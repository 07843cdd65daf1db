"""The sender connects to the address that was checked, with TLS verified against the
URL's host name, and never follows redirects."""

import shutil
import ssl
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common import egress
from notifications import transport
from tests.http_servers import serve_in_background

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=hooks.test",
            "-addext", "subjectAltName=DNS:hooks.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate):
    cert, key = certificate
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            hits.append(
                (self.headers["Host"], self.rfile.read(int(self.headers["Content-Length"])))
            )
            status = 302 if self.path == "/redirect" else 204
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "http://169.254.169.254/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    serve_in_background(server)
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


@pytest.fixture
def trust(certificate, monkeypatch):
    cert, _ = certificate
    real = ssl.create_default_context
    monkeypatch.setattr(transport.ssl, "create_default_context", lambda: real(cafile=str(cert)))
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: ["127.0.0.1"])


def send(url, allowlist):
    target = egress.check_destination(url, allowlist)
    return transport.post(target, b"{}", {"Content-Type": "application/json"}, timeout=5)


def test_tls_is_verified_against_the_url_host_while_connecting_to_the_checked_ip(tls_server, trust):
    port, hits = tls_server
    response = send(f"https://hooks.test:{port}/in", ["hooks.test", "127.0.0.1"])
    assert response.status == 204
    assert hits == [(f"hooks.test:{port}", b"{}")]


def test_a_certificate_for_another_name_is_refused(tls_server, trust):
    port, hits = tls_server
    with pytest.raises(transport.TransportError):
        send(f"https://other.test:{port}/in", ["other.test", "127.0.0.1"])
    assert hits == []


def test_redirects_are_not_followed(tls_server, trust):
    port, hits = tls_server
    response = send(f"https://hooks.test:{port}/redirect", ["hooks.test", "127.0.0.1"])
    assert response.status == 302  # a failure for the caller; Location is ignored
    assert len(hits) == 1


def test_connection_refused_is_a_transport_error(trust):
    with pytest.raises(transport.TransportError):
        send("https://hooks.test:1/in", ["hooks.test", "127.0.0.1"])
