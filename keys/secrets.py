"""Key material. High-entropy secrets need no slow password hash: one HMAC-SHA-256
with a server pepper and a constant-time compare (DESIGN.md: measured facts)."""

import hashlib
import hmac
import secrets

from django.views.decorators.debug import sensitive_variables

from common.secrets import pepper

KEY_PREFIX = "wdn"
SECRET_BYTES = 32


def digest(secret: str) -> str:
    return hmac.new(pepper(), secret.encode(), hashlib.sha256).hexdigest()


@sensitive_variables("secret")
def digests_match(secret: str, stored_digest: str) -> bool:
    return bool(stored_digest) and hmac.compare_digest(digest(secret), stored_digest)


def new_prefix() -> str:
    return secrets.token_hex(6)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


@sensitive_variables("secret")
def format_key(prefix: str, secret: str) -> str:
    return f"{KEY_PREFIX}_{prefix}_{secret}"


@sensitive_variables("raw", "parts", "secret")
def parse_key(raw: str) -> tuple[str, str] | None:
    """Split `wdn_<prefix>_<secret>`; None when the shape is wrong."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != 12 or not all(c in "0123456789abcdef" for c in prefix):
        return None
    if not 32 <= len(secret) <= 128:
        return None
    return prefix, secret
