"""What happened after an allowed action: the agent (or the gateway, which executed it)
reports the result once. The audit chain keeps the output's size and SHA-256, not the
output itself."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.models import ActionRequest
from approvals.params import canonical_json, require_storable
from approvals.signals import announce_action_decided
from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import audit_record
from common.actor import Actor
from common.errors import WardenError

MAX_RESULT_OUTPUT_BYTES = 64 * 1024


def action_report_result(
    *, action_request, key, status: str, output: Any, actor: Actor
) -> ActionRequest:
    """The agent reports what happened, once, for an allowed request of its own key.
    Success in dry-run is recorded as `simulated`: nothing was performed for real."""
    if status not in ("succeeded", "failed"):
        raise WardenError(
            "validation_error", "status must be succeeded or failed.", {"status": ["Invalid."]}
        )
    require_storable(output, "output")
    encoded = canonical_json(output)
    if len(encoded) > MAX_RESULT_OUTPUT_BYTES:
        raise WardenError(
            "validation_error",
            f"output is larger than {MAX_RESULT_OUTPUT_BYTES} bytes.",
            {"output": [f"At most {MAX_RESULT_OUTPUT_BYTES} bytes of JSON."]},
        )
    with transaction.atomic():
        action = (
            ActionRequest.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .filter(pk=action_request.pk, key=key)
            .first()
        )
        if action is None:
            raise WardenError("not_found", "Not found.")
        if action.result_reported_at is not None:
            raise WardenError("conflict", "The result of this action was already reported.")
        if action.status != ActionRequest.Status.ALLOWED:
            raise WardenError(
                "conflict",
                f"This action is {action.status}; only an allowed action has a result.",
                {"status": action.status},
            )
        action.result_status = status
        # Personal data: sealed under the request's data key (approvals.personal_data),
        # erased with it; its fingerprint stays on the row and in the chain.
        action.sealed_output = "" if output is None else action.seal_value(output)
        action.result_output = None
        action.result_output_sha256 = hashlib.sha256(encoded).hexdigest()
        action.result_output_bytes = len(encoded)
        action.result_reported_at = timezone.now()
        if status == "failed":
            action.status = ActionRequest.Status.FAILED
        elif action.dry_run:
            action.status = ActionRequest.Status.SIMULATED
        else:
            action.status = ActionRequest.Status.EXECUTED
        action.save(
            update_fields=[
                "result_status",
                "result_output",
                "sealed_output",
                "result_output_sha256",
                "result_output_bytes",
                "data_key",
                "result_reported_at",
                "status",
            ]
        )
        audit_record(
            EVENTS[AuditAction.ACTION_RESULT_REPORTED].event(
                target_id=action.pk,
                tool=action.tool_name,
                # The output itself may hold personal data: the chain keeps its fingerprint.
                input={
                    "status": status,
                    "output_bytes": len(encoded),
                    "output_sha256": hashlib.sha256(encoded).hexdigest(),
                },
                decision=action.decision,
                policy_version=action.policy_version,
                outcome=status,
            ),
            workspace=action.workspace,
            actor=actor,
        )
        if action.status == ActionRequest.Status.EXECUTED:
            announce_action_decided(action, "action.executed")
    return action
