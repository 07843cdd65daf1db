"""Slack's side of approvals: post a request, update it after a decision, link a Slack
user to a Warden user, and turn a verified button press into a call to the approval
services (approvals.confirmations) -- the same ones the admin queue and the API call,
so permissions, four eyes, two approvals, custody, expiry and dry run hold alike.

The HTTP checks (signature, timestamp window, replay) are the view's
(notifications.slack.views); nothing here trusts a payload the view did not verify."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from enum import Enum

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from approvals.confirmations import (
    answerable_user_ids,
    confirmation_approve,
    confirmation_deny,
)
from approvals.models import ConfirmationRequest
from common import crypto
from common.actor import Actor
from common.errors import WardenError
from notifications import services as notifications
from notifications.content import admin_url
from notifications.models import SlackIdentity, SlackMessage, WorkspaceAutomationSettings
from notifications.selectors import users_with_workspace_perm
from notifications.slack import blocks

logger = logging.getLogger("warden.notifications.slack")

POST_TASK = "notifications.slack_post"
UPDATE_TASK = "notifications.slack_update"
LINK_SALT = "warden.notifications.slack-link"
LINK_MAX_AGE_SECONDS = 15 * 60
APPROVE_REASON = "Approved in Slack."


class Outcome(Enum):
    POSTED = "posted"
    SKIPPED = "skipped"  # already posted, switched off, or no longer pending
    RETRY = "retry"


# --- settings and client --------------------------------------------------------------


def active_settings(workspace_id) -> WorkspaceAutomationSettings | None:
    """The workspace's Slack settings when Slack is switched on and has a bot token."""
    row = WorkspaceAutomationSettings.objects.filter(workspace_id=workspace_id).first()
    if row is None or not row.slack_enabled or not row.slack_bot_token_encrypted:
        return None
    return row


def web_client(row: WorkspaceAutomationSettings) -> WebClient:
    """slack_sdk's client with the workspace's bot token (decrypted only here) against
    WARDEN_SLACK_API_URL (Slack's Web API; the tests' local fake)."""
    return WebClient(
        token=crypto.decrypt(row.slack_bot_token_encrypted),
        base_url=settings.WARDEN_SLACK_API_URL,
        timeout=settings.WARDEN_SLACK_TIMEOUT_SECONDS,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )


def bot_tokens_reencrypt() -> int:
    """After a new key went first in WARDEN_SECRETS_KEY: move every Slack bot token to
    it (the token, and so its fingerprint and the governed snapshot, stay the same)."""
    done = 0
    rows = WorkspaceAutomationSettings.objects.exclude(slack_bot_token_encrypted="")
    for pk in rows.values_list("pk", flat=True):
        with transaction.atomic():
            row = WorkspaceAutomationSettings.objects.select_for_update().get(pk=pk)
            row.slack_bot_token_encrypted = crypto.reencrypt(row.slack_bot_token_encrypted)
            row.save(update_fields=["slack_bot_token_encrypted"])
            done += 1
    return done


def seal_bot_token(token: str) -> str:
    """What a settings change carries: the token encrypted, never the token."""
    token = (token or "").strip()
    if not token.startswith(("xoxb-", "xoxe.xoxb-")):
        raise WardenError(
            "validation_error",
            "A Slack bot token starts with xoxb-.",
            {"slack_bot_token": ["Not a Slack bot token."]},
        )
    return crypto.encrypt(token)


def review_url(confirmation: ConfirmationRequest) -> str:
    return admin_url(notifications._signed_review_path(confirmation))


# --- posting ----------------------------------------------------------------------------


def _linked_approvers(confirmation: ConfirmationRequest, team_id: str) -> list[str]:
    """Slack user ids of linked members who may decide this request (never its requester
    or the key's custody: four eyes)."""
    approvers = users_with_workspace_perm(
        workspace=confirmation.workspace,
        perm="approve_actions",
        exclude=list(answerable_user_ids(confirmation.action_request)),
    )
    return list(
        SlackIdentity.objects.filter(
            team_id=team_id, user__in=[u.pk for u in approvers]
        ).values_list("slack_user_id", flat=True)
    )


def slack_messages_plan(*, confirmation_id) -> list[int]:
    """One SlackMessage row per conversation the request goes to (idempotent: a second
    call for the same request adds nothing), queued for posting after the commit."""
    confirmation = (
        ConfirmationRequest.objects.select_related("workspace", "action_request__key")
        .filter(pk=confirmation_id, status=ConfirmationRequest.Status.PENDING)
        .first()
    )
    if confirmation is None:
        return []
    row = active_settings(confirmation.workspace_id)
    if row is None:
        return []
    channels = [row.slack_channel] if row.slack_channel else []
    if row.slack_dm_approvers and row.slack_team_id:
        channels += _linked_approvers(confirmation, row.slack_team_id)
    ids = []
    with transaction.atomic():
        for channel in dict.fromkeys(channels):
            message, _ = SlackMessage.objects.get_or_create(
                confirmation=confirmation,
                channel=channel,
                defaults={"workspace_id": confirmation.workspace_id},
            )
            if not message.ts:
                ids.append(message.pk)
        transaction.on_commit(lambda: notifications._enqueue(POST_TASK, ids))
    return ids


def slack_message_post(*, message_id) -> Outcome:
    """Post one message, at most once per row: the row is locked while posting and the
    returned `ts` saved in the same transaction. A crash between Slack's answer and the
    commit can post a duplicate (at-least-once), never lose one."""
    with transaction.atomic():
        message = (
            SlackMessage.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("confirmation__action_request__key", "confirmation__workspace")
            .filter(pk=message_id)
            .first()
        )
        if message is None or message.ts:
            return Outcome.SKIPPED
        confirmation = message.confirmation
        row = active_settings(message.workspace_id)
        if row is None or confirmation.status != ConfirmationRequest.Status.PENDING:
            return Outcome.SKIPPED
        message.attempts += 1
        try:
            answer = web_client(row).chat_postMessage(
                channel=message.channel,
                text=blocks.fallback_text(confirmation),
                blocks=blocks.request_blocks(confirmation, review_url=review_url(confirmation)),
                unfurl_links=False,
                unfurl_media=False,
            )
        except (SlackApiError, SlackRequestError, OSError) as exc:
            message.last_error = _error_text(exc)
            message.save(update_fields=["attempts", "last_error"])
            return Outcome.RETRY
        message.ts = str(answer.get("ts") or "")
        message.conversation = str(answer.get("channel") or message.channel)
        message.posted_at = timezone.now()
        message.last_error = ""
        message.save(update_fields=["ts", "conversation", "attempts", "last_error", "posted_at"])
    return Outcome.POSTED


def _error_text(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return f"slack: {exc.response.get('error', 'error')}"[:300]
    return f"{type(exc).__name__}"[:300]


def slack_messages_update(*, confirmation_id) -> int:
    """Show the request as it is now (who approved, who denied and why, expired) in
    every message posted for it. Returns how many were updated."""
    confirmation = (
        ConfirmationRequest.objects.select_related("workspace", "action_request__key")
        .filter(pk=confirmation_id)
        .first()
    )
    if confirmation is None:
        return 0
    row = active_settings(confirmation.workspace_id)
    if row is None:
        return 0
    client = web_client(row)
    content = blocks.request_blocks(confirmation, review_url=review_url(confirmation))
    updated = 0
    for message in SlackMessage.objects.filter(confirmation=confirmation).exclude(ts=""):
        try:
            answer = client.chat_update(
                channel=message.conversation or message.channel,
                ts=message.ts,
                text=blocks.fallback_text(confirmation),
                blocks=content,
            )
        except (SlackApiError, SlackRequestError, OSError) as exc:
            logger.warning("slack chat.update of %s failed: %s", message.pk, _error_text(exc))
            continue
        SlackMessage.objects.filter(pk=message.pk, ts=answer.get("ts") or message.ts).update(
            updated_at=timezone.now()
        )
        updated += 1
    return updated


def queue_update(confirmation_id) -> None:
    transaction.on_commit(lambda: notifications._enqueue(UPDATE_TASK, [confirmation_id]))


# --- linking a Slack user to a Warden user ---------------------------------------------


def link_code(*, team_id: str, slack_user_id: str) -> str:
    """A signed, short-lived code naming one Slack user; only the Slack user sees it
    (an ephemeral message), and it links only in a logged-in Warden session."""
    return signing.dumps({"t": team_id, "u": slack_user_id}, salt=LINK_SALT, compress=False)


def link_code_read(code: str) -> tuple[str, str] | None:
    try:
        data = signing.loads(code, salt=LINK_SALT, max_age=LINK_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        return None
    if not isinstance(data.get("u"), str):
        return None
    return data["t"], data["u"]


def slack_identity_link(*, user, code: str) -> SlackIdentity:
    """Link the Slack user a code names to `user` (the one logged in). A Slack user
    already linked to someone else stays theirs; relinking yourself replaces your link."""
    read = link_code_read(code)
    if read is None:
        raise WardenError(
            "validation_error",
            "This link is not valid or has expired: press a button in Slack again.",
        )
    team_id, slack_user_id = read
    with transaction.atomic():
        taken = SlackIdentity.objects.filter(team_id=team_id, slack_user_id=slack_user_id).first()
        if taken is not None and taken.user_id != user.pk:
            raise WardenError(
                "conflict", "This Slack user is already linked to another Warden user."
            )
        if taken is not None:
            return taken
        # One use: a code that linked once links nothing again (cache, for its lifetime).
        used = "slack:link-used:" + hashlib.sha256(code.encode()).hexdigest()
        if not cache.add(used, 1, timeout=LINK_MAX_AGE_SECONDS):
            raise WardenError(
                "validation_error", "This link was used already: press a button in Slack again."
            )
        SlackIdentity.objects.filter(team_id=team_id, user=user).delete()
        try:
            return SlackIdentity.objects.create(
                user=user, team_id=team_id, slack_user_id=slack_user_id
            )
        except IntegrityError:
            raise WardenError("conflict", "This Slack user was linked meanwhile.") from None


def slack_identity_unlink(*, user) -> int:
    return SlackIdentity.objects.filter(user=user).delete()[0]


# --- a verified press --------------------------------------------------------------------


@dataclasses.dataclass
class Reply:
    """What the view answers: an ephemeral text to the presser, a modal to open, or
    errors for a modal's fields."""

    ephemeral: str = ""
    modal: dict | None = None
    field_errors: dict | None = None


def _target(confirmation_id: str, team_id: str):
    """The request a press names, only when its workspace posts to this Slack team."""
    try:
        confirmation = (
            ConfirmationRequest.objects.select_related("workspace", "action_request__key")
            .filter(pk=confirmation_id)
            .first()
        )
    except (ValueError, ValidationError):  # not a UUID
        return None, None
    if confirmation is None:
        return None, None
    row = active_settings(confirmation.workspace_id)
    if row is None or not row.slack_team_id or row.slack_team_id != team_id:
        return None, None
    return confirmation, row


def _actor(identity: SlackIdentity, trigger: str) -> Actor:
    return Actor.for_linked_user(identity.user, via="slack", request_id=f"slack:{trigger[:40]}")


def _link_prompt(team_id: str, slack_user_id: str) -> str:
    path = "/admin/slack/link/?code=" + link_code(team_id=team_id, slack_user_id=slack_user_id)
    url = admin_url(path) or path
    return (
        "Link your Slack account to your Warden user first (once): open "
        f"{url} while logged in to Warden, then press the button again. Nothing was decided."
    )


NOT_FOUND = "This request does not exist in Warden (or not for this Slack workspace)."


def _identity(team_id: str, slack_user_id: str) -> SlackIdentity | None:
    identity = (
        SlackIdentity.objects.select_related("user")
        .filter(team_id=team_id, slack_user_id=slack_user_id)
        .first()
    )
    if identity is None or not identity.user.is_active:
        return None
    return identity


def _decide(verdict: str, confirmation, reason: str, actor: Actor) -> str:
    decide = confirmation_approve if verdict == "approve" else confirmation_deny
    verb = "approved" if verdict == "approve" else "denied"
    try:
        decided = decide(confirmation=confirmation, reason=reason, actor=actor)
    except WardenError as exc:
        return f"Not {verb}: {exc.message} ({exc.code})"
    finally:
        queue_update(confirmation.pk)  # an expiry found on the way shows as well
    if decided.status == ConfirmationRequest.Status.PENDING:
        return "Your approval is recorded; another approver is still needed."
    return f"You {verb} this request."


def interaction_handle(payload: dict) -> Reply:
    """One verified interaction: a button press (block_actions) or the deny modal's
    submission (view_submission)."""
    kind = payload.get("type")
    team_id = str(
        (payload.get("team") or {}).get("id") or (payload.get("user") or {}).get("team_id") or ""
    )
    slack_user_id = str((payload.get("user") or {}).get("id") or "")
    trigger = str(payload.get("trigger_id") or "")
    if kind == "block_actions":
        action = next(iter(payload.get("actions") or []), {}) or {}
        action_id = action.get("action_id")
        if action_id not in (blocks.APPROVE, blocks.DENY):
            return Reply()  # "Open in Warden" is a link: nothing to do
        confirmation, _ = _target(str(action.get("value") or ""), team_id)
        if confirmation is None:
            return Reply(ephemeral=NOT_FOUND)
        identity = _identity(team_id, slack_user_id)
        if identity is None:
            return Reply(ephemeral=_link_prompt(team_id, slack_user_id))
        if action_id == blocks.APPROVE:
            return Reply(
                ephemeral=_decide(
                    "approve", confirmation, APPROVE_REASON, _actor(identity, trigger)
                )
            )
        channel = str((payload.get("channel") or {}).get("id") or "")
        return Reply(modal=blocks.deny_modal(confirmation, channel=channel))
    if kind == "view_submission":
        view = payload.get("view") or {}
        if view.get("callback_id") != blocks.DENY_MODAL:
            return Reply()
        confirmation_id, _, channel = str(view.get("private_metadata") or "").partition("|")
        confirmation, _ = _target(confirmation_id, team_id)
        if confirmation is None:
            return Reply(field_errors={blocks.REASON_BLOCK: NOT_FOUND})
        identity = _identity(team_id, slack_user_id)
        if identity is None:
            return Reply(
                field_errors={blocks.REASON_BLOCK: "Link your Slack account to Warden first."}
            )
        values = ((view.get("state") or {}).get("values") or {}).get(blocks.REASON_BLOCK) or {}
        reason = str((values.get(blocks.REASON_INPUT) or {}).get("value") or "")
        said = _decide("deny", confirmation, reason, _actor(identity, trigger))
        if said.startswith("Not denied"):
            return Reply(field_errors={blocks.REASON_BLOCK: said[:150]})
        return Reply(ephemeral=said)
    return Reply()


def ephemeral_send(*, payload: dict, text: str) -> None:
    """An answer only the presser sees (chat.postEphemeral in the message's conversation)."""
    team_id = str((payload.get("team") or {}).get("id") or "")
    channel = str((payload.get("channel") or {}).get("id") or "")
    user = str((payload.get("user") or {}).get("id") or "")
    if not channel:
        view = payload.get("view") or {}
        channel = str(view.get("private_metadata") or "").partition("|")[2]
    rows = WorkspaceAutomationSettings.objects.filter(
        slack_enabled=True, slack_team_id=team_id
    ).exclude(slack_bot_token_encrypted="")
    row = rows.first()
    if row is None or not channel or not user:
        return
    try:
        web_client(row).chat_postEphemeral(channel=channel, user=user, text=text)
    except (SlackApiError, SlackRequestError, OSError) as exc:
        logger.warning("slack chat.postEphemeral failed: %s", _error_text(exc))


def modal_open(*, payload: dict, view: dict) -> None:
    team_id = str((payload.get("team") or {}).get("id") or "")
    row = (
        WorkspaceAutomationSettings.objects.filter(slack_enabled=True, slack_team_id=team_id)
        .exclude(slack_bot_token_encrypted="")
        .first()
    )
    if row is None:
        return
    try:
        web_client(row).views_open(trigger_id=str(payload.get("trigger_id") or ""), view=view)
    except (SlackApiError, SlackRequestError, OSError) as exc:
        logger.warning("slack views.open failed: %s", _error_text(exc))
