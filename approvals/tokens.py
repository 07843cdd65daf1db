"""Confirmation tokens (`ct_...`): derived from the confirmation id with the server
pepper, never stored. Only their digest is kept, so a leaked table grants nothing, and
re-deriving lets an idempotent retry answer the very token of the first answer."""

from __future__ import annotations

import base64
import hashlib
import hmac

from keys import secrets as key_secrets

TOKEN_PREFIX = "ct_"


def confirmation_token(confirmation_id) -> str:
    """The token for a confirmation: HMAC-SHA-256 of its id under the server pepper."""
    mac = hmac.new(
        key_secrets.pepper(),
        f"warden-confirmation-token:{confirmation_id}".encode(),
        hashlib.sha256,
    ).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def token_digest(token: str) -> str:
    """What is stored and looked up: the peppered digest of a token."""
    return key_secrets.digest(token)
