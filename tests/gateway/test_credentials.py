"""Encryption at rest with rotation, and credential references resolved at call time."""

import pytest
from cryptography.fernet import Fernet

from gateway import credentials, crypto
from gateway.models import Connector
from gateway.services import _headers_for_call, reencrypt_all

pytestmark = pytest.mark.django_db


def test_rotation_keeps_old_secrets_readable_and_reencrypts(gw_workspace, make_connector, settings):
    old = settings.WARDEN_SECRETS_KEY[0]
    connector = make_connector(gw_workspace, headers={"X-Api-Key": "old-key-secret-value"})
    new = Fernet.generate_key().decode()
    settings.WARDEN_SECRETS_KEY = [new, old]
    assert _headers_for_call(connector) == {"X-Api-Key": "old-key-secret-value"}
    assert reencrypt_all() == 1
    settings.WARDEN_SECRETS_KEY = [new]
    connector = Connector.objects.get(pk=connector.pk)
    assert _headers_for_call(connector) == {"X-Api-Key": "old-key-secret-value"}


def test_unknown_key_cannot_decrypt(gw_workspace, make_connector, settings):
    connector = make_connector(gw_workspace)
    settings.WARDEN_SECRETS_KEY = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretUnreadable):
        _headers_for_call(connector)


def test_env_reference_resolved_at_call_time(gw_workspace, make_connector, monkeypatch):
    connector = make_connector(gw_workspace, headers={"Authorization": "env:WARDEN_CRED_CRM_TOKEN"})
    monkeypatch.setenv("WARDEN_CRED_CRM_TOKEN", "Bearer from-env")
    assert _headers_for_call(connector) == {"Authorization": "Bearer from-env"}
    monkeypatch.setenv("WARDEN_CRED_CRM_TOKEN", "Bearer rotated")
    assert _headers_for_call(connector) == {"Authorization": "Bearer rotated"}


def test_env_reference_outside_the_prefix_never_resolves(monkeypatch):
    monkeypatch.setenv("DATABASE_PASSWORD", "server-secret")
    with pytest.raises(credentials.CredentialError):
        credentials.resolve("env:DATABASE_PASSWORD")


def test_missing_env_reference_is_an_error_naming_only_the_reference():
    with pytest.raises(credentials.CredentialError, match="WARDEN_CRED_MISSING"):
        credentials.resolve("env:WARDEN_CRED_MISSING")


def test_a_new_scheme_is_one_registration():
    credentials.register("vault-test", lambda name: f"secret-for-{name}")
    try:
        assert credentials.resolve("vault-test:crm/token") == "secret-for-crm/token"
    finally:
        credentials._RESOLVERS.pop("vault-test")


def test_literals_pass_through():
    assert credentials.resolve("Bearer abc:def") == "Bearer abc:def"
