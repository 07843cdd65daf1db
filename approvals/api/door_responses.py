"""How an endpoint answers a governed change: the applied object, or the 202 of a
request waiting for a human (approvals.door)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.response import Response

from approvals.door import DoorResult


def door_response(result: DoorResult, render: Callable[[Any], Any], status: int = 200) -> Response:
    if not result.applied:
        body = dict(result.answer.body)
        if result.answer.status == 202:
            body["governed_operations"] = list(result.operations)
        return Response(body, status=result.answer.status)
    if status == 204:
        return Response(status=204)
    return Response(render(result.result), status=status)
