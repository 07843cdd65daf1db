"""ActionRequest keeps the gate's outcome instead of the HTTP answer it was rendered
as (approvals.outcome): `response` + `response_status` become `outcome`. Existing rows
are converted both ways, so an idempotent retry of a request recorded before this
migration still replays its first answer. The body's `confirmation_token` was never
stored (it is derived from the confirmation id), so nothing secret moves."""

from django.db import migrations, models

from common.errors import ERROR_STATUS

BATCH = 1000


def _outcome(body, confirmation_id):
    if not isinstance(body, dict) or not body:
        return {}
    if "error" in body:
        error = body["error"]
        return {
            "kind": "denied",
            "code": error.get("code", ""),
            "message": error.get("message", ""),
            "detail": error.get("detail") or {},
        }
    if body.get("decision") == "allowed":
        return {"kind": "allowed", "dry_run": bool(body.get("dry_run"))}
    if body.get("decision") == "requires_confirmation" and confirmation_id is not None:
        expires_at = body.get("expires_at")
        if isinstance(expires_at, str) and expires_at.endswith("Z"):
            expires_at = expires_at[:-1] + "+00:00"
        return {
            "kind": "pending",
            "confirmation_id": str(confirmation_id),
            "summary": body.get("summary", ""),
            "irreversible": bool(body.get("irreversible")),
            "expires_at": expires_at,
        }
    return {}


def _answer(action_id, outcome):
    kind = (outcome or {}).get("kind")
    if kind == "allowed":
        return 200, {"id": str(action_id), "decision": "allowed", "dry_run": outcome["dry_run"]}
    if kind == "denied":
        error = {
            "code": outcome["code"],
            "message": outcome.get("message", ""),
            "detail": outcome.get("detail") or {},
        }
        return ERROR_STATUS.get(outcome["code"], 403), {"error": error}
    if kind == "pending":
        expires_at = outcome.get("expires_at") or ""
        return 202, {
            "id": str(action_id),
            "decision": "requires_confirmation",
            "requires_confirmation": True,
            "confirmation_token": None,
            "summary": outcome.get("summary", ""),
            "irreversible": bool(outcome.get("irreversible")),
            "expires_at": expires_at.replace("+00:00", "Z"),
        }
    return 200, {}


def _batches(queryset):
    batch = []
    for row in queryset.iterator(chunk_size=BATCH):
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def responses_to_outcomes(apps, schema_editor):
    ActionRequest = apps.get_model("approvals", "ActionRequest")
    ConfirmationRequest = apps.get_model("approvals", "ConfirmationRequest")
    rows = ActionRequest.objects.only("pk", "response").order_by("pk")
    for batch in _batches(rows):
        confirmations = dict(
            ConfirmationRequest.objects.filter(
                action_request_id__in=[row.pk for row in batch]
            ).values_list("action_request_id", "pk")
        )
        for row in batch:
            row.outcome = _outcome(row.response, confirmations.get(row.pk))
        ActionRequest.objects.bulk_update(batch, ["outcome"])


def outcomes_to_responses(apps, schema_editor):
    ActionRequest = apps.get_model("approvals", "ActionRequest")
    rows = ActionRequest.objects.only("pk", "outcome").order_by("pk")
    for batch in _batches(rows):
        for row in batch:
            row.response_status, row.response = _answer(row.pk, row.outcome)
        ActionRequest.objects.bulk_update(batch, ["response_status", "response"])


class Migration(migrations.Migration):

    dependencies = [
        ("approvals", "0005_plain_copy_retention"),
    ]

    operations = [
        migrations.AddField(
            model_name="actionrequest",
            name="outcome",
            field=models.JSONField(default=dict),
        ),
        migrations.RunPython(responses_to_outcomes, outcomes_to_responses),
        migrations.RemoveField(model_name="actionrequest", name="response"),
        migrations.RemoveField(model_name="actionrequest", name="response_status"),
    ]
