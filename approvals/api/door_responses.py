"""How an endpoint answers a governed change: the applied object, or the 202 of a
request waiting for a human (approvals.door)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.response import Response

from approvals.api.presenter import outcome_body, outcome_status
from approvals.door import DoorResult


def door_response(result: DoorResult, render: Callable[[Any], Any], status: int = 200) -> Response:
    if not result.applied:
        body = outcome_body(result.outcome)
        if result.outcome.pending:
            body["governed_operations"] = list(result.operations)
        return Response(body, status=outcome_status(result.outcome))
    if status == 204:
        return Response(status=204)
    return Response(render(result.result), status=status)
