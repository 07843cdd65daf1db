"""Erasable personal data (crypto-shredding), the pure part: data keys, sealing and the
data subject's keyed digest. No database; the models and approvals.erasure use it.

Every agent request gets one random data key (a Fernet key). Its plain values (the
stored params, the confirmation summary rendered from them, the reported output, the
gateway's output copy) are stored only encrypted under that key; the key itself is
stored only wrapped by a key-encryption key derived (HKDF-SHA-256) from Warden's
secrets (each `WARDEN_SECRETS_KEY` entry, then `SECRET_KEY`). Erasing a request
destroys its wrapped key: every ciphertext of it becomes unreadable at once, in every
table and in every backup, and the audit chain, which holds only digests, verifies as
before.

A data subject is found without storing the value: a tool may name one parameter as
its `subject_param`; the request keeps `subject_digest`, an HMAC-SHA-256 of the
workspace id and that parameter's canonical value under a key derived from the same
secrets, so erasing "everything about alice@example.com" looks rows up by digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

# What people and replay read where a plain value was erased.
ERASED = "(erased)"
_KEK_INFO = b"warden personal data: key-encryption key"
_SUBJECT_INFO = b"warden personal data: subject digest"


class Erased(Exception):
    """The value's data key was destroyed (or never readable with the configured secrets)."""


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


@sensitive_variables("secret")
def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        secret.encode("utf-8")
    )


def _secrets() -> tuple[str, ...]:
    listed = [k.strip() for k in settings.WARDEN_SECRETS_KEY or () if k and k.strip()]
    return (*listed, settings.SECRET_KEY)


@lru_cache(maxsize=8)
def _kek(secrets: tuple[str, ...]) -> MultiFernet:
    """The first secret wraps; every listed one unwraps (rotation, like common.crypto)."""
    return MultiFernet([Fernet(base64.urlsafe_b64encode(_derive(s, _KEK_INFO))) for s in secrets])


@lru_cache(maxsize=8)
def _subject_key(secret: str) -> bytes:
    return _derive(secret, _SUBJECT_INFO)


def new_data_key() -> tuple[bytes, str]:
    """(the plain data key, kept in memory only; its wrapped form, the one stored)."""
    plain = Fernet.generate_key()
    return plain, _kek(_secrets()).encrypt(plain).decode("ascii")


def unwrap(wrapped: str) -> bytes:
    if not wrapped:
        raise Erased("no data key")
    try:
        return _kek(_secrets()).decrypt(wrapped.encode("ascii"))
    except (InvalidToken, ValueError):
        raise Erased("the data key cannot be unwrapped") from None


@sensitive_variables("value")
def seal(data_key: bytes, value: Any) -> str:
    """A JSON value encrypted under a request's data key."""
    return Fernet(data_key).encrypt(_canonical(value)).decode("ascii")


def open_sealed(data_key: bytes, token: str) -> Any:
    try:
        return json.loads(Fernet(data_key).decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError):
        raise Erased("the value cannot be decrypted") from None


def digest(value: Any) -> str:
    """SHA-256 of a value's canonical JSON: what a chain entry holds instead of it (the
    same encoding as approvals.params.canonical_json, so params digests agree)."""
    return hashlib.sha256(_canonical(value)).hexdigest()


def subject_digest(workspace_id: Any, value: Any) -> str:
    """The keyed digest a data subject is found by ('' for no value)."""
    if value is None or value == "":
        return ""
    message = f"{workspace_id}|".encode() + _canonical(value)
    return hmac.new(_subject_key(settings.SECRET_KEY), message, hashlib.sha256).hexdigest()
