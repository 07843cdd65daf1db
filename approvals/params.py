"""Parameters as Warden keeps them: canonical JSON, secret params replaced by their
HMAC digest (and credential-shaped values by theirs, approvals.credential_scan), and
the digest a confirmation is bound to. Pure functions; no database."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from approvals import credential_scan
from common.errors import WardenError
from keys import secrets as key_secrets

SECRET_PARAM_PREFIX = "hmac-sha256:"


def canonical_json(value: Any) -> bytes:
    """The one encoding digests and size limits are computed over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def storable_text(value: str) -> bool:
    """False for text PostgreSQL cannot store as sent (NUL, lone surrogates)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def require_storable(value: Any, field: str) -> None:
    """Refuse JSON that PostgreSQL cannot store as sent (NUL characters, lone
    surrogates), rather than storing something other than what was approved."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            ok = storable_text(item)
        elif isinstance(item, dict):
            ok = all(storable_text(str(k)) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            ok = True
            stack.extend(item)
        else:
            ok = True
        if not ok:
            raise WardenError(
                "validation_error",
                "Text may not contain NUL characters or unpaired surrogates.",
                {field: ["Contains NUL characters or unpaired surrogates."]},
            )


def store_params(params: dict, secret_params) -> dict:
    """The params as stored and audited: secret ones replaced by an HMAC digest, and
    credential-shaped values in the others too (approvals.credential_scan)."""
    secret = set(secret_params or ())
    return {
        name: (
            SECRET_PARAM_PREFIX + key_secrets.digest(canonical_json(value).decode("utf-8"))
            if name in secret
            else credential_scan.mask(value)
        )
        for name, value in params.items()
    }


def params_digest(stored: dict) -> str:
    """What a confirmation token is bound to: SHA-256 of the canonical stored params."""
    return hashlib.sha256(canonical_json(stored)).hexdigest()
