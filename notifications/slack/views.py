"""POST /integrations/slack/interactions: Slack's interactivity request URL.

Not under the key-authenticated API: Slack authenticates itself with its request
signature (slack_sdk's SignatureVerifier: HMAC-SHA-256 of `v0:<timestamp>:<body>` with
the app's signing secret, the timestamp within five minutes). A signature already seen
within that window is a replay and refused, whatever it carries. Only then is the
payload read, and only a linked Slack user's press decides anything (services)."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from slack_sdk.signature import SignatureVerifier

from common.shared_cache import SharedOrLocal
from notifications.slack import services

logger = logging.getLogger("warden.notifications.slack")

REPLAY_WINDOW_SECONDS = 5 * 60
MAX_BODY_BYTES = 64 * 1024
_seen = SharedOrLocal(
    "warden-slack-replay", logger, "shared cache unreachable (%s): Slack replay memory is local"
)


def _refused(code: str, message: str, status: int = 401) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "detail": {}}}, status=status)


def _first_time(signature: str, trigger: str) -> bool:
    """Remember what was seen for the timestamp window: the signature (the same request
    sent again) and the trigger id (one press delivered twice)."""
    keys = [f"slack:seen:sig:{signature}"] + ([f"slack:seen:trigger:{trigger}"] if trigger else [])
    fresh = True
    for key in keys:
        fresh = (
            _seen.run(lambda store, key=key: store.add(key, 1, timeout=REPLAY_WINDOW_SECONDS))
            and fresh
        )
    return fresh


@csrf_exempt
@require_POST
def interactions(request):
    secret = settings.WARDEN_SLACK_SIGNING_SECRET
    if not secret:
        return _refused("not_found", "Slack is not set up on this Warden.", status=404)
    if len(request.body) > MAX_BODY_BYTES:
        return _refused("validation_error", "Request too large.", status=400)
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if (
        not timestamp.isdigit()
        or not signature
        or not SignatureVerifier(secret).is_valid(request.body, timestamp, signature)
    ):
        return _refused("invalid_signature", "The Slack request signature is not valid or too old.")
    try:
        payload = json.loads(request.POST.get("payload", ""))
    except ValueError:
        return _refused("validation_error", "No interaction payload.", status=400)
    if not isinstance(payload, dict):
        return _refused("validation_error", "No interaction payload.", status=400)
    if not _first_time(signature, str(payload.get("trigger_id") or "")):
        return _refused("replayed", "This Slack request was already received.")
    reply = services.interaction_handle(payload)
    if reply.field_errors:
        return JsonResponse({"response_action": "errors", "errors": reply.field_errors})
    if reply.modal is not None:
        services.modal_open(payload=payload, view=reply.modal)
    if reply.ephemeral:
        services.ephemeral_send(payload=payload, text=reply.ephemeral)
    return HttpResponse(status=200)
