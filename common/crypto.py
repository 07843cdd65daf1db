"""Encryption at rest for stored credentials (connector headers, Slack bot tokens): Fernet
(AES-128-CBC + HMAC-SHA-256) through MultiFernet, so keys rotate: the first key of
WARDEN_SECRETS_KEY encrypts, every listed key decrypts, and `reencrypt` moves a token to
the first key. In common so every layer that stores a credential uses the one scheme."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables


class SecretUnreadable(Exception):
    """A stored secret could not be decrypted with any configured key."""


@sensitive_variables("keys", "derived")
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.WARDEN_SECRETS_KEY or () if k and k.strip()]
    if not keys:
        if not settings.DEBUG:
            raise ImproperlyConfigured("Set WARDEN_SECRETS_KEY to store connector credentials.")
        derived = hashlib.sha256(b"warden-secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode("ascii")]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "WARDEN_SECRETS_KEY must hold Fernet keys (32 url-safe base64 bytes)."
        ) from None


@sensitive_variables("plaintext")
def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        raise SecretUnreadable("no configured key decrypts this secret") from None


def reencrypt(token: str) -> str:
    """The same secret under the current first key (after adding a new key in front)."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        raise SecretUnreadable("no configured key decrypts this secret") from None
