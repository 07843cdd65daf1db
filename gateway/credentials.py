"""Header values as stored: a literal, or a reference `scheme:NAME` resolved only at call
time. Resolvers are registered by scheme, so a vault backend is one more `register`.

`env:NAME` reads the server's environment, restricted to names starting with
WARDEN_CREDENTIAL_ENV_PREFIX: a workspace must never be able to make Warden send its own
secrets (SECRET_KEY, DATABASE_URL, ...) to an upstream."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

_REFERENCE = re.compile(r"([a-z][a-z0-9+-]{1,15}):([A-Za-z0-9_./-]{1,200})")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")

_RESOLVERS: dict[str, Callable[[str], str | None]] = {}


class CredentialError(Exception):
    """A reference cannot be used. The message names the reference, never a value."""


def register(scheme: str, resolver: Callable[[str], str | None]) -> None:
    """`resolver(name)` returns the secret, or None when it does not exist."""
    _RESOLVERS[scheme] = resolver


def reference(value: str) -> tuple[str, str] | None:
    """(scheme, name) when `value` is a reference to a registered scheme, else None."""
    match = _REFERENCE.fullmatch(value or "")
    if match is None or match.group(1) not in _RESOLVERS:
        return None
    return match.group(1), match.group(2)


def check(value: str) -> None:
    """Refuse, when a header is saved, a reference that could never resolve."""
    ref = reference(value)
    if ref is not None and ref[0] == "env":
        _env_name_allowed(ref[1])


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
def resolve(value: str) -> str:
    """The value to send: literals as they are, references looked up now."""
    ref = reference(value)
    if ref is None:
        return value
    scheme, name = ref
    resolved = _RESOLVERS[scheme](name)
    if resolved is None:
        raise CredentialError(f"The credential reference {scheme}:{name} does not resolve.")
    return resolved
