"""SECRET_KEY is required where it matters (serving, digests), not for every command.

Each test starts Django in a subprocess with production settings on SQLite, whatever
database the suite runs on: the result cannot differ between CI's two passes, so CI
runs them once, in the PostgreSQL pass."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

pytestmark = pytest.mark.db_independent

ROOT = Path(__file__).resolve().parent.parent


def _production_env() -> dict:
    unset = ("SECRET_KEY", "WARDEN_KEY_PEPPER", "WARDEN_AUDIT_SIGNING_KEY")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0", DATABASE_URL="")
    return env


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_makemigrations_check_runs_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_wsgi_refuses_to_start_without_a_secret_key():
    result = _run("import config.wsgi")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


AUDIT_KEY = base64.b64encode(b"s" * 32).decode()


def test_wsgi_starts_with_a_secret_key():
    env = {**_production_env(), "SECRET_KEY": "k" * 60, "WARDEN_AUDIT_SIGNING_KEY": AUDIT_KEY}
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_no_digest_is_ever_keyed_with_an_empty_pepper():
    result = _run(
        "import django; django.setup()\nfrom keys.secrets import digest\ndigest('anything')"
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def _run_with(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**_production_env(), "SECRET_KEY": "k" * 60, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_wsgi_refuses_to_start_without_the_audit_signing_key():
    result = _run_with("import config.wsgi")
    assert result.returncode != 0
    assert "WARDEN_AUDIT_SIGNING_KEY is required when DEBUG is off" in result.stderr


def test_wsgi_refuses_a_malformed_audit_signing_key():
    result = _run_with("import config.wsgi", WARDEN_AUDIT_SIGNING_KEY="c2hvcnQ=")
    assert result.returncode != 0
    assert "must be 32 bytes" in result.stderr
    assert "c2hvcnQ=" not in result.stderr  # the key itself is never echoed


def test_a_pem_audit_signing_key_is_accepted_and_its_public_half_printed():
    private = Ed25519PrivateKey.from_private_bytes(b"p" * 32)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    result = _run_with(
        "import config.wsgi\nfrom django.core.management import call_command\n"
        "call_command('audit_public_key')",
        WARDEN_AUDIT_SIGNING_KEY=pem,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == base64.b64encode(public).decode()


def test_debug_derives_a_development_signing_key():
    result = _run_with(
        "import django; django.setup()\nfrom audit.signing import public_key_b64\n"
        "print(public_key_b64())",
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert len(base64.b64decode(result.stdout.strip())) == 32
