"""Credential references into the customer's own secret store, registered like `env:`
(gateway.credentials), so a connector's header names a secret Warden fetches at call
time and never stores:

- `file:<NS>/<path>`: a file under WARDEN_CREDENTIAL_FILE_ROOT (Kubernetes or Docker
  secrets mounted read-only), e.g. `file:ACME/crm-token`.
- `vault:<NS>/<path>/<field>`: HashiCorp Vault (or OpenBao) KV version 2 at
  WARDEN_VAULT_ADDR, mount WARDEN_VAULT_MOUNT; the last segment is the field of the
  secret at the path, e.g. `vault:ACME/crm/token` reads field `token` of `ACME/crm`.
- `aws-sm:<NS>/<name>`: AWS Secrets Manager's SecretString (boto3, the `aws` extra; the
  standard AWS_* variables; WARDEN_AWS_SECRETS_ENDPOINT for a local endpoint).

Every scheme is registered; one the deployment has not configured is refused with a
clear error when a header names it. The namespace rule of gateway.credentials applies to
all of them before a resolver runs. The stores are the operator's own
infrastructure, often on private addresses, so they are reached directly (not through
the outbound policy that guards agent-chosen upstreams); errors name the reference, never
a value."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from gateway.credentials import CredentialError, register

MAX_SECRET_BYTES = 64 * 1024
STORE_TIMEOUT_SECONDS = 5


def _configured(scheme: str, setting: str) -> str:
    value = getattr(settings, setting)
    if not value:
        raise CredentialError(f"{scheme}: references need {setting} (not set here).")
    return value


@sensitive_variables("value")
def from_file(name: str) -> str | None:
    root = Path(_configured("file", "WARDEN_CREDENTIAL_FILE_ROOT")).resolve()
    target = (root / name).resolve()
    own = (root / name.split("/", 1)[0]).resolve()
    if own not in target.parents:  # a symlink out of the namespace's own directory
        raise CredentialError(f"file:{name} is outside its namespace's directory.")
    try:
        with target.open("rb") as handle:
            value = handle.read(MAX_SECRET_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialError(f"file:{name} cannot be read ({exc.strerror}).") from None
    if len(value) > MAX_SECRET_BYTES:
        raise CredentialError(f"file:{name} is larger than {MAX_SECRET_BYTES} bytes.")
    return value.decode("utf-8").rstrip("\r\n")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """The token header must never follow a redirect to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


def _vault_token() -> str:
    token = settings.WARDEN_VAULT_TOKEN
    if not token and settings.WARDEN_VAULT_TOKEN_FILE:
        token = Path(settings.WARDEN_VAULT_TOKEN_FILE).read_text().strip()
    return token


@sensitive_variables("token", "body", "value")
def from_vault(name: str) -> str | None:
    path, _, field = name.rpartition("/")
    if not path or not field:
        raise CredentialError(f"vault:{name} must be <path>/<field>.")
    address = _configured("vault", "WARDEN_VAULT_ADDR").rstrip("/")
    if urllib.parse.urlsplit(address).scheme not in ("http", "https"):
        raise CredentialError("WARDEN_VAULT_ADDR must be an http(s) URL.")
    url = "{}/v1/{}/data/{}".format(
        address,
        urllib.parse.quote(settings.WARDEN_VAULT_MOUNT.strip("/")),
        urllib.parse.quote(path),
    )
    request = urllib.request.Request(url, headers={"X-Vault-Token": _vault_token()})  # noqa: S310 - http(s) only, checked above
    if settings.WARDEN_VAULT_NAMESPACE:
        request.add_header("X-Vault-Namespace", settings.WARDEN_VAULT_NAMESPACE)
    try:
        with _NO_REDIRECTS.open(request, timeout=STORE_TIMEOUT_SECONDS) as answer:
            body = answer.read(MAX_SECRET_BYTES * 4)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise CredentialError(f"vault:{name}: Vault answered {exc.code}.") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise CredentialError(f"vault:{name}: Vault is unreachable ({exc}).") from None
    try:
        value = json.loads(body)["data"]["data"].get(field)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CredentialError(f"vault:{name}: not a KV version 2 answer.") from None
    return value if isinstance(value, str) else None


@sensitive_variables("secret")
def from_aws_secrets_manager(name: str) -> str | None:
    _configured("aws-sm", "WARDEN_AWS_SECRETS_ENABLED")
    import boto3  # the `aws` extra; imported only when the scheme is used
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "secretsmanager", endpoint_url=settings.WARDEN_AWS_SECRETS_ENDPOINT or None
    )
    try:
        secret = client.get_secret_value(SecretId=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise CredentialError(f"aws-sm:{name}: {exc.response['Error'].get('Code')}.") from None
    except BotoCoreError as exc:
        reason = type(exc).__name__
        raise CredentialError(f"aws-sm:{name}: AWS is unreachable ({reason}).") from None
    return secret.get("SecretString")


def register_stores() -> None:
    """gateway's AppConfig.ready: the schemes exist in every deployment, so a reference
    to an unconfigured store is refused, never sent upstream as a literal."""
    register("file", from_file)
    register("vault", from_vault)
    register("aws-sm", from_aws_secrets_manager)
