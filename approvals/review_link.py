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
# E-mail Approve / Deny buttons: the same signing under their own salt, with the verdict
# signed in, so a review link never works as a button and an Approve link never as Deny.
DECISION_SALT = "warden.approvals.decision-link"
QUERY_PARAMETER = "link"
VERDICTS = ("approve", "deny")


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


def decision_link_token(
    *, confirmation_id: Any, workspace_id: Any, expires_at: datetime, verdict: str
) -> str:
    """An e-mail button: a review link's payload plus the verdict it proposes. It opens
    a confirmation page in the approver's own session; it never decides by itself."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}")
    payload = {
        "c": str(confirmation_id),
        "w": str(workspace_id),
        "e": int(expires_at.timestamp()),
        "v": verdict,
    }
    return signing.dumps(payload, salt=DECISION_SALT, compress=False)


def decision_link_state(
    token: str, *, confirmation_id: Any, workspace_id: Any, verdict: str, now=None
) -> LinkState:
    """As review_link_state, for a button link; a link signed for the other verdict is
    INVALID."""
    return _state(
        token,
        salt=DECISION_SALT,
        expected={"c": str(confirmation_id), "w": str(workspace_id), "v": verdict},
        now=now,
    )


def review_link_state(
    token: str, *, confirmation_id: Any, workspace_id: Any, now: datetime | None = None
) -> LinkState:
    """Whether `token` is a genuine, unexpired link to this request in this workspace.

    A bad signature, or a good one naming another request or workspace, is INVALID;
    a genuine link past the request's expiry is EXPIRED."""
    return _state(
        token, salt=SALT, expected={"c": str(confirmation_id), "w": str(workspace_id)}, now=now
    )


def _state(token: str, *, salt: str, expected: dict, now: datetime | None) -> LinkState:
    try:
        payload = signing.loads(token, salt=salt)
    except signing.BadSignature:
        return LinkState.INVALID
    if not isinstance(payload, dict):
        return LinkState.INVALID
    if any(payload.get(name) != value for name, value in expected.items()):
        return LinkState.INVALID
    expires = payload.get("e")
    if not isinstance(expires, int):
        return LinkState.INVALID
    now = now or timezone.now()
    return LinkState.VALID if now.timestamp() < expires else LinkState.EXPIRED
