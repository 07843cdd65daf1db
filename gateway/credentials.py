"""Header values as stored: a literal, or a reference `scheme:NAME` resolved only at call
time. Resolvers are registered by scheme, so a vault backend is one more `register`.

Credentials belong to one workspace. The operator assigns each workspace (by its id,
which never changes) a namespace in WARDEN_CREDENTIAL_NAMESPACES, capitals and digits
only (`ACME`), and a workspace's references resolve only inside its own namespace:
`env:<WARDEN_CREDENTIAL_ENV_PREFIX><NS>_...` (`env:WARDEN_CRED_ACME_CRM_TOKEN`) and, for
any other scheme, `<scheme>:<NS>/...` (`vault:ACME/crm/token`). The namespace holds no
underscore, so no namespace is a prefix of another's. Checked when a header is proposed
(CredentialNotAllowed, error code `credential_not_allowed`) and again when a reference
is resolved: a reference stored before the rule, or by any other path, never resolves
into another workspace's secrets. A workspace without a namespace (or sharing one with
another workspace: a misconfiguration) can use literals only.

`env:` names must also start with WARDEN_CREDENTIAL_ENV_PREFIX: a workspace must never
be able to make Warden send its own secrets (SECRET_KEY, DATABASE_URL, ...) upstream."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

_REFERENCE = re.compile(r"([a-z][a-z0-9+-]{1,15}):([A-Za-z0-9_./-]{1,200})")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
NAMESPACE = re.compile(r"[A-Z0-9]{1,32}")

_RESOLVERS: dict[str, Callable[[str], str | None]] = {}


class CredentialError(Exception):
    """A reference cannot be used. The message names the reference, never a value."""


class CredentialNotAllowed(CredentialError):
    """A reference outside the workspace's own credential namespace."""


def register(scheme: str, resolver: Callable[[str], str | None]) -> None:
    """`resolver(name)` returns the secret, or None when it does not exist."""
    _RESOLVERS[scheme] = resolver


def reference(value: str) -> tuple[str, str] | None:
    """(scheme, name) when `value` is a reference to a registered scheme, else None."""
    match = _REFERENCE.fullmatch(value or "")
    if match is None or match.group(1) not in _RESOLVERS:
        return None
    return match.group(1), match.group(2)


def namespace(workspace) -> str | None:
    """The workspace's credential namespace, or None (none assigned, or not its own)."""
    assigned = settings.WARDEN_CREDENTIAL_NAMESPACES or {}
    mine = assigned.get(str(workspace.pk))
    if not isinstance(mine, str) or not NAMESPACE.fullmatch(mine):
        return None
    if sum(1 for other in assigned.values() if other == mine) != 1:
        return None
    return mine


def required_prefix(scheme: str, ns: str) -> str:
    if scheme == "env":
        return f"{settings.WARDEN_CREDENTIAL_ENV_PREFIX}{ns}_"
    return f"{ns}/"


def _own(workspace, scheme: str, name: str) -> None:
    ns = namespace(workspace)
    if ns is None:
        raise CredentialNotAllowed(
            f"The reference {scheme}:{name} cannot be used: this workspace has no credential "
            "namespace (the operator assigns one in WARDEN_CREDENTIAL_NAMESPACES)."
        )
    prefix = required_prefix(scheme, ns)
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        # `file:ACME/../GLOBEX/x` or `vault:ACME/../GLOBEX/crm/token` would pass the
        # prefix test and then walk into another namespace inside the store.
        raise CredentialNotAllowed(
            f"The reference {scheme}:{name} has an empty, '.' or '..' path segment."
        )
    if not name.startswith(prefix) or len(name) == len(prefix):
        raise CredentialNotAllowed(
            f"The reference {scheme}:{name} is outside this workspace's credential "
            f"namespace: {scheme}: references must start with {prefix}."
        )


def _literal_refused() -> CredentialNotAllowed:
    return CredentialNotAllowed(
        "Literal header values are refused in this deployment (WARDEN_CREDENTIAL_LITERALS "
        "is off): name the secret in your store instead, e.g. vault:<NS>/crm/token."
    )


def check(value: str, *, workspace) -> None:
    """Refuse, when a header is proposed, a reference that could never resolve here, and
    a literal where the deployment allows only references."""
    ref = reference(value)
    if ref is None:
        if not settings.WARDEN_CREDENTIAL_LITERALS:
            raise _literal_refused()
        return
    if ref[0] == "env":
        _env_name_allowed(ref[1])
    _own(workspace, *ref)


def describe(value: str) -> str:
    """What people may see of a header value: the reference it names, never a value."""
    ref = reference(value)
    return f"{ref[0]}:{ref[1]}" if ref is not None else "(literal, encrypted, write-only)"


def _env_name_allowed(name: str) -> None:
    prefix = settings.WARDEN_CREDENTIAL_ENV_PREFIX
    if not prefix or not name.startswith(prefix) or not _ENV_NAME.fullmatch(name):
        raise CredentialError(
            f"env: references must name a variable starting with {prefix or '(disabled)'}."
        )


def _from_env(name: str) -> str | None:
    _env_name_allowed(name)
    return os.environ.get(name)


register("env", _from_env)


@sensitive_variables("value", "resolved")
def resolve(value: str, *, workspace) -> str:
    """The value to send: literals as they are, references looked up now, and only
    inside the workspace's own namespace."""
    ref = reference(value)
    if ref is None:
        if not settings.WARDEN_CREDENTIAL_LITERALS:  # stored before the setting
            raise _literal_refused()
        return value
    scheme, name = ref
    _own(workspace, scheme, name)
    resolved = _RESOLVERS[scheme](name)
    if resolved is None:
        raise CredentialError(f"The credential reference {scheme}:{name} does not resolve.")
    return resolved
