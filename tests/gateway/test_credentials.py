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


@pytest.fixture
def acme(gw_workspace, settings):
    """The operator gave the workspace the credential namespace ACME."""
    settings.WARDEN_CREDENTIAL_NAMESPACES = {str(gw_workspace.pk): "ACME"}
    return gw_workspace


def test_env_reference_resolved_at_call_time(acme, make_connector, monkeypatch):
    connector = make_connector(acme, headers={"Authorization": "env:WARDEN_CRED_ACME_CRM_TOKEN"})
    monkeypatch.setenv("WARDEN_CRED_ACME_CRM_TOKEN", "Bearer from-env")
    assert _headers_for_call(connector) == {"Authorization": "Bearer from-env"}
    monkeypatch.setenv("WARDEN_CRED_ACME_CRM_TOKEN", "Bearer rotated")
    assert _headers_for_call(connector) == {"Authorization": "Bearer rotated"}


def test_env_reference_outside_the_prefix_never_resolves(acme, monkeypatch, settings):
    monkeypatch.setenv("DATABASE_PASSWORD", "server-secret")
    with pytest.raises(credentials.CredentialError):
        credentials.resolve("env:DATABASE_PASSWORD", workspace=acme)
    settings.WARDEN_CREDENTIAL_ENV_PREFIX = ""
    monkeypatch.setenv("ACME_TOKEN", "server-secret")
    with pytest.raises(credentials.CredentialError):
        credentials.resolve("env:ACME_TOKEN", workspace=acme)


def test_missing_env_reference_is_an_error_naming_only_the_reference(acme):
    with pytest.raises(credentials.CredentialError, match="WARDEN_CRED_ACME_MISSING"):
        credentials.resolve("env:WARDEN_CRED_ACME_MISSING", workspace=acme)


def test_a_new_scheme_is_one_registration_and_keeps_to_the_namespace(acme):
    credentials.register("vault-test", lambda name: f"secret-for-{name}")
    try:
        assert credentials.resolve("vault-test:ACME/crm", workspace=acme) == "secret-for-ACME/crm"
        with pytest.raises(credentials.CredentialNotAllowed):
            credentials.resolve("vault-test:GLOBEX/crm", workspace=acme)
    finally:
        credentials._RESOLVERS.pop("vault-test")


def test_another_workspaces_reference_never_resolves(acme, other_workspace, settings, monkeypatch):
    settings.WARDEN_CREDENTIAL_NAMESPACES = {str(acme.pk): "ACME", str(other_workspace.pk): "B"}
    monkeypatch.setenv("WARDEN_CRED_ACME_CRM_TOKEN", "Bearer acme-only")
    with pytest.raises(credentials.CredentialNotAllowed):
        credentials.resolve("env:WARDEN_CRED_ACME_CRM_TOKEN", workspace=other_workspace)
    assert credentials.resolve("env:WARDEN_CRED_ACME_CRM_TOKEN", workspace=acme)


def test_a_namespace_is_not_a_prefix_of_another(acme, other_workspace, settings, monkeypatch):
    """ACME may not read ACMECRM's variables, nor the other way round."""
    settings.WARDEN_CREDENTIAL_NAMESPACES = {
        str(acme.pk): "ACME",
        str(other_workspace.pk): "ACMECRM",
    }
    monkeypatch.setenv("WARDEN_CRED_ACMECRM_TOKEN", "Bearer crm-only")
    with pytest.raises(credentials.CredentialNotAllowed):
        credentials.resolve("env:WARDEN_CRED_ACMECRM_TOKEN", workspace=acme)


def test_a_shared_or_missing_namespace_resolves_nothing(
    acme, other_workspace, settings, monkeypatch
):
    monkeypatch.setenv("WARDEN_CRED_ACME_CRM_TOKEN", "Bearer acme-only")
    settings.WARDEN_CREDENTIAL_NAMESPACES = {str(acme.pk): "ACME", str(other_workspace.pk): "ACME"}
    with pytest.raises(credentials.CredentialNotAllowed):
        credentials.resolve("env:WARDEN_CRED_ACME_CRM_TOKEN", workspace=acme)
    settings.WARDEN_CREDENTIAL_NAMESPACES = {}
    with pytest.raises(credentials.CredentialNotAllowed):
        credentials.resolve("env:WARDEN_CRED_ACME_CRM_TOKEN", workspace=acme)


def test_a_stored_reference_is_checked_again_when_it_is_resolved(
    acme, other_workspace, make_connector, settings, monkeypatch
):
    """Defence in depth: a reference stored before the namespace moved (or by any path
    that skipped the proposal check) never resolves outside the namespace."""
    connector = make_connector(acme, headers={"Authorization": "env:WARDEN_CRED_ACME_CRM_TOKEN"})
    monkeypatch.setenv("WARDEN_CRED_ACME_CRM_TOKEN", "Bearer acme-only")
    settings.WARDEN_CREDENTIAL_NAMESPACES = {str(acme.pk): "ACMENEW"}
    with pytest.raises(credentials.CredentialNotAllowed):
        _headers_for_call(connector)


def test_literals_pass_through(gw_workspace):
    assert credentials.resolve("Bearer abc:def", workspace=gw_workspace) == "Bearer abc:def"
