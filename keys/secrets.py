"""Key material. High-entropy secrets need no slow password hash: one HMAC-SHA-256
with a server pepper and a constant-time compare (DESIGN.md: measured facts)."""

import hashlib
import hmac
import secrets

from django.views.decorators.debug import sensitive_variables

from common.secrets import current_key_pepper, key_pepper, pepper

KEY_PREFIX = "wdn"
SECRET_BYTES = 32


def digest(secret: str) -> str:
    """Keyed with the base pepper: tokens and parameter digests, compared by equality."""
    return hmac.new(pepper(), secret.encode(), hashlib.sha256).hexdigest()


@sensitive_variables("secret")
def key_digest(secret: str) -> str:
    """A machine-key secret's stored digest, under the current pepper id: bare hex for
    id 0 (every digest before pepper ids existed), `p<id>$<hex>` otherwise."""
    pepper_id, secret_pepper = current_key_pepper()
    hexed = hmac.new(secret_pepper, secret.encode(), hashlib.sha256).hexdigest()
    return hexed if pepper_id == 0 else f"p{pepper_id}${hexed}"


@sensitive_variables("secret")
def digests_match(secret: str, stored_digest: str) -> bool:
    """Checked under the pepper the stored digest names; a retired pepper never matches."""
    named, _, hexed = stored_digest.rpartition("$")
    if not hexed or (named and not (named[:1] == "p" and named[1:].isdigit())):
        return False
    secret_pepper = key_pepper(int(named[1:]) if named else 0)
    if secret_pepper is None:
        return False
    expected = hmac.new(secret_pepper, secret.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, hexed)


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
