"""`POST /api/v1/actions` with `"execute": true`: the same gate, then Warden executes
connector-backed tools itself and answers with the upstream's result."""

from rest_framework.response import Response

from approvals.api.presenter import outcome_body, outcome_status
from common.errors import WardenError
from gateway.api.serializers import ExecutionSerializer
from gateway.execution import action_execute


def execute_response(request, values: dict) -> Response:
    if bool(values["confirmed"]) != bool(values["confirmation_token"]):
        raise WardenError(
            "validation_error",
            "Send confirmed: true together with the confirmation_token.",
            {"confirmation_token": ["Required with confirmed: true (and only then)."]},
        )
    found = action_execute(
        key=request.auth,
        actor=request.actor,
        tool_name=values["tool"],
        params=values["params"],
        reason=values["reason"],
        idempotency_key=values["idempotency_key"],
        confirmation_token=values["confirmation_token"],
    )
    body = outcome_body(found.outcome)
    if found.outcome.allowed:
        body["execution"] = (
            ExecutionSerializer(found.execution).data if found.execution is not None else None
        )
        body["result"] = found.result
    return Response(body, status=outcome_status(found.outcome))
