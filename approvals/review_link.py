"""Signed review links: the URL an approver notification carries to the review page.

The signature (django.core.signing, its own salt) binds the link to one confirmation
request and its workspace, and the link stops working when the request expires. It is
a convenience, never a credential: the review page still needs a logged-in admin
session holding `approve_actions` in that workspace, and approving still goes through
the approval services (four eyes, two approvers, expiry). A link that was tampered
with, or has expired, opens an admin page that says so and points to the queue."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from django.core import signing
from django.utils import timezone

SALT = "warden.approvals.review-link"
QUERY_PARAMETER = "link"


class LinkState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


def review_link_token(*, confirmation_id: Any, workspace_id: Any, expires_at: datetime) -> str:
    """Signed payload: request id, workspace id and the request's expiry (Unix seconds)."""
    payload = {
        "c": str(confirmation_id),
        "w": str(workspace_id),
        "e": int(expires_at.timestamp()),
    }
    return signing.dumps(payload, salt=SALT, compress=False)


def review_link_state(
    token: str, *, confirmation_id: Any, workspace_id: Any, now: datetime | None = None
) -> LinkState:
    """Whether `token` is a genuine, unexpired link to this request in this workspace.

    A bad signature, or a good one naming another request or workspace, is INVALID;
    a genuine link past the request's expiry is EXPIRED."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return LinkState.INVALID
    if not isinstance(payload, dict):
        return LinkState.INVALID
    if payload.get("c") != str(confirmation_id) or payload.get("w") != str(workspace_id):
        return LinkState.INVALID
    expires = payload.get("e")
    if not isinstance(expires, int):
        return LinkState.INVALID
    now = now or timezone.now()
    return LinkState.VALID if now.timestamp() < expires else LinkState.EXPIRED
