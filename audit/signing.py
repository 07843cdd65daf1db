"""The audit signing key: Ed25519, from the environment, never in the database.

`WARDEN_AUDIT_SIGNING_KEY` holds the private key, either as base64 of the 32-byte raw
seed or as a PKCS#8 PEM block. With DEBUG on and no key configured, a development key
is derived from SECRET_KEY (stable across restarts, worthless as evidence); with DEBUG
off, serving processes refuse to start without a key (config/startup.py) and signing
refuses to run.

Two things are derived from the one key:
- checkpoint signatures (Ed25519), which anyone holding the public key can check
  offline (`manage.py audit_public_key` prints it);
- the per-entry MAC (HMAC-SHA-256 under a key derived from the seed), which only the
  server can check: it proves an entry newer than the last signed checkpoint was
  written by the application and not appended by someone with database access;
- the queue MAC (HMAC-SHA-256 under a second key derived from the seed, label
  "warden.audit.pending-mac"), over the whole content of an entry waiting in the
  group-commit queue: the sealer chains only rows the application wrote.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

_RAW = serialization.Encoding.Raw


class SigningKeyMissing(ImproperlyConfigured):
    """No usable WARDEN_AUDIT_SIGNING_KEY where one is required."""


@sensitive_variables("configured", "seed")
def _load_private_key(configured: str, debug: bool, secret_key: str) -> Ed25519PrivateKey:
    configured = configured.strip()
    if not configured:
        if not debug:
            raise SigningKeyMissing("WARDEN_AUDIT_SIGNING_KEY is required when DEBUG is off.")
        seed = hashlib.sha256(b"warden.audit.dev-signing-key|" + secret_key.encode()).digest()
        return Ed25519PrivateKey.from_private_bytes(seed)
    if configured.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(configured.encode(), password=None)
        except (ValueError, TypeError):
            raise SigningKeyMissing("WARDEN_AUDIT_SIGNING_KEY is not a readable PEM key.") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyMissing("WARDEN_AUDIT_SIGNING_KEY must be an Ed25519 key.")
        return key
    try:
        seed = base64.b64decode(configured, validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyMissing("WARDEN_AUDIT_SIGNING_KEY is neither base64 nor PEM.") from None
    if len(seed) != 32:
        raise SigningKeyMissing("WARDEN_AUDIT_SIGNING_KEY must be 32 bytes (base64).")
    return Ed25519PrivateKey.from_private_bytes(seed)


@cache
def _keys(configured: str, debug: bool, secret_key: str) -> tuple[Ed25519PrivateKey, bytes, bytes]:
    private = _load_private_key(configured, debug, secret_key)
    seed = private.private_bytes(
        _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    mac_key = hmac.new(seed, b"warden.audit.entry-mac", hashlib.sha256).digest()
    # A distinct key per purpose: a queue MAC can never pass for an entry MAC or back.
    pending_key = hmac.new(seed, b"warden.audit.pending-mac", hashlib.sha256).digest()
    return private, mac_key, pending_key


def _current() -> tuple[Ed25519PrivateKey, bytes, bytes]:
    return _keys(
        settings.WARDEN_AUDIT_SIGNING_KEY or "",
        bool(settings.DEBUG),
        settings.SECRET_KEY or "",
    )


def require_signing_key() -> None:
    """Raise SigningKeyMissing unless a key is configured (or DEBUG derives one)."""
    _current()


def public_key_bytes() -> bytes:
    return _current()[0].public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)


def public_key_b64() -> str:
    return base64.b64encode(public_key_bytes()).decode("ascii")


def public_key_pem() -> str:
    public = _current()[0].public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id(public: bytes | None = None) -> str:
    """Short fingerprint naming the key a checkpoint was signed with."""
    return hashlib.sha256(public if public is not None else public_key_bytes()).hexdigest()[:16]


def sign(message: bytes) -> str:
    return base64.b64encode(_current()[0].sign(message)).decode("ascii")


def trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    """key id -> public key: the current key plus retired ones still trusted for
    checkpoints signed before a rotation (WARDEN_AUDIT_TRUSTED_PUBLIC_KEYS)."""
    keys = {key_id(): Ed25519PublicKey.from_public_bytes(public_key_bytes())}
    for text in settings.WARDEN_AUDIT_TRUSTED_PUBLIC_KEYS or []:
        raw = base64.b64decode(text)
        keys[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)
    return keys


def verify(message: bytes, signature: str, public: Ed25519PublicKey) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def entry_mac(entry_hash: str) -> str:
    """HMAC of an entry's hash under the server's key: only the application can make it."""
    return hmac.new(_current()[1], entry_hash.encode("ascii"), hashlib.sha256).hexdigest()


def entry_mac_checker():
    """A fast `check(hash, mac) -> bool` for the verify loop (key looked up once)."""
    key = _current()[1]
    digest = hmac.digest
    compare = hmac.compare_digest

    def check(entry_hash: str, mac: str) -> bool:
        return compare(digest(key, entry_hash.encode("ascii"), "sha256").hex(), mac)

    return check


def pending_mac_checker():
    """`(mac(message) -> str, check(message, mac) -> bool)` for queued entries (audit
    group commit): HMAC-SHA-256 of the canonical JSON of a queued row's whole content
    under the queue key (key looked up once). A missing MAC never checks."""
    key = _current()[2]
    digest = hmac.digest
    compare = hmac.compare_digest

    def mac(message: bytes) -> str:
        return digest(key, message, "sha256").hex()

    def check(message: bytes, stored: str | None) -> bool:
        return bool(stored) and compare(digest(key, message, "sha256").hex(), stored)

    return mac, check


def pending_mac(message: bytes) -> str:
    return pending_mac_checker()[0](message)
