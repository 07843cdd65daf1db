"""Webhook signatures (docs: "Verifying a webhook").

signature = "v1=" + hex(HMAC-SHA-256(secret, f"{timestamp}.".encode() + body))

Headers: X-Warden-Timestamp (Unix seconds), X-Warden-Signature, X-Warden-Delivery
(stable across retries: dedupe on it). Receivers must compare in constant time and
reject timestamps more than five minutes away from their clock (replay window).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

TIMESTAMP_HEADER = "X-Warden-Timestamp"
SIGNATURE_HEADER = "X-Warden-Signature"
DELIVERY_HEADER = "X-Warden-Delivery"
EVENT_HEADER = "X-Warden-Event"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def compute_signature(*, secret: str, timestamp: int | str, body: str | bytes) -> str:
    message = f"{timestamp}.".encode("ascii") + _as_bytes(body)
    digest = hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(
    *, secret: str, body: bytes, delivery_id: str, now: float | None = None
) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: compute_signature(secret=secret, timestamp=timestamp, body=body),
        DELIVERY_HEADER: delivery_id,
    }


def verify_signature(
    *,
    secret: str,
    timestamp: str | int | None,
    body: str | bytes,
    signature: str | None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does. False on a missing, malformed, stale or wrong signature.

    `signature` may hold several comma-separated `v1=<hex>` values (secret rotation)."""
    if not secret or timestamp is None or not signature:
        return False
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    expected = compute_signature(secret=secret, timestamp=ts, body=body)
    candidates = [part.strip() for part in signature.split(",")]
    # Compare against every candidate so timing does not reveal which one matched.
    matched = False
    for candidate in candidates:
        if candidate.startswith(f"{SCHEME}=") and hmac.compare_digest(
            candidate.encode("ascii", "replace"), expected.encode("ascii")
        ):
            matched = True
    return matched
