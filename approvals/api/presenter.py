"""The one presenter of asking: an `Outcome` (approvals.outcome) becomes the HTTP status
and JSON body of `POST /api/v1/actions`, of a governed change's 202 and of the gateway's
answers. The first answer and every idempotent replay pass through here, so a replay is
the first answer byte for byte (the token is derived again, never stored)."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response

from approvals.outcome import Outcome, OutcomeKind
from common.errors import ERROR_STATUS, error_payload


def outcome_status(outcome: Outcome) -> int:
    if outcome.kind == OutcomeKind.ALLOWED:
        return 200
    if outcome.kind == OutcomeKind.PENDING:
        return 202
    return ERROR_STATUS[outcome.code]


def outcome_body(outcome: Outcome) -> dict[str, Any]:
    if outcome.kind == OutcomeKind.ALLOWED:
        return {"id": outcome.action_id, "decision": "allowed", "dry_run": outcome.dry_run}
    if outcome.kind == OutcomeKind.DENIED:
        return error_payload(outcome.code, outcome.message, outcome.detail)
    expires_at = outcome.expires_at.isoformat().replace("+00:00", "Z")
    return {
        "id": outcome.action_id,
        "decision": "requires_confirmation",
        "requires_confirmation": True,
        "confirmation_token": outcome.confirmation_token,
        "summary": outcome.summary,
        "irreversible": outcome.irreversible,
        "expires_at": expires_at,
    }


def outcome_response(outcome: Outcome) -> Response:
    return Response(outcome_body(outcome), status=outcome_status(outcome))
