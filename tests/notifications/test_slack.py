"""Slack approvals (issue 23 item 1): a request posts a Block Kit message; Slack's
signed interaction requests drive the real endpoint; a linked Slack user's press goes
through the same approval services as the admin. Slack's Web API is a local fake HTTP
server that records calls (tests/notifications/slack_fake.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import time_machine
from django.test import Client, TestCase
from django.utils import timezone

from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from audit.models import AuditEntry
from common import crypto
from notifications.models import SlackIdentity, SlackMessage
from notifications.services import automation_settings_update
from notifications.slack import services as slack
from notifications.tasks import slack_post, slack_update
from tenants.models import Role
from tests.conftest import SYSTEM
from tests.entry_points import entry_point
from tests.notifications.slack_fake import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0WARDEN"
CHANNEL = "C0APPROVE"
TOKEN = "xoxb-test-token-1"
URL = "/integrations/slack/interactions"


@pytest.fixture
def fake_slack(settings):
    server = FakeSlack().start()
    settings.WARDEN_SLACK_API_URL = server.url
    settings.WARDEN_SLACK_SIGNING_SECRET = SECRET
    yield server
    server.stop()


def slack_on(workspace, **changes):
    with operator_seeding():  # set-up, as an operator; changing it is governed (below)
        return automation_settings_update(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            changes={
                "slack_enabled": True,
                "slack_team_id": TEAM,
                "slack_channel": CHANNEL,
                "slack_bot_token_encrypted": crypto.encrypt(TOKEN),
                **changes,
            },
            operator=True,
        )


@pytest.fixture
def slack_workspace(live_workspace, fake_slack):
    slack_on(live_workspace)
    return live_workspace


def signed(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict:
    """Headers exactly as Slack signs a request (v0, HMAC-SHA-256 over v0:ts:body)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": ts, "HTTP_X_SLACK_SIGNATURE": f"v0={digest}"}


_trigger = iter(range(10**6))


def press_payload(confirmation, slack_user, action="warden_approve", team=TEAM) -> dict:
    return {
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": slack_user, "team_id": team},
        "channel": {"id": CHANNEL},
        "trigger_id": f"trig.{next(_trigger)}",
        "actions": [{"action_id": action, "value": str(confirmation.pk), "type": "button"}],
    }


def submit_payload(confirmation, slack_user, reason) -> dict:
    return {
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": {"id": slack_user, "team_id": TEAM},
        "trigger_id": f"trig.{next(_trigger)}",
        "view": {
            "callback_id": "warden_deny_reason",
            "private_metadata": f"{confirmation.pk}|{CHANNEL}",
            "state": {"values": {"reason": {"reason_text": {"value": reason}}}},
        },
    }


def send(payload: dict, **sign):
    """POST a signed interaction, running its after-commit work as a real commit would."""
    body = urlencode({"payload": json.dumps(payload)})
    with TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(
            URL, body, content_type="application/x-www-form-urlencoded", **signed(body, **sign)
        )


def link(user, slack_user) -> SlackIdentity:
    return SlackIdentity.objects.create(user=user, team_id=TEAM, slack_user_id=slack_user)


def ephemerals(fake) -> list[str]:
    return [args["text"] for args in fake.called("chat.postEphemeral")]


def status(confirmation) -> str:
    confirmation.refresh_from_db()
    return confirmation.status


# --- the message ----------------------------------------------------------------------------


def test_a_request_posts_one_block_kit_message_with_the_values_and_buttons(
    slack_workspace, fake_slack, ask_pending
):
    long_url = "https://files.example.com/" + "a" * 400
    confirmation = ask_pending(params={"deal": 7, "to": "ann\u200b@example.com", "url": long_url})
    [posted] = fake_slack.called("chat.postMessage")
    assert posted["channel"] == CHANNEL
    assert fake_slack.tokens[0] == f"Bearer {TOKEN}"
    text = json.dumps(posted["blocks"], ensure_ascii=False)
    assert "ann⟦U+200B⟧@example.com" in text  # the hidden character is marked
    fields = json.dumps([b.get("fields") for b in posted["blocks"]], ensure_ascii=False)
    assert re.search(r"\+1[3-9]\d characters; the whole value is in Warden", fields)
    assert "a" * 300 not in fields  # shortened, visibly
    assert "What approving does" in text and "Expires" in text and "Asked by agent key" in text
    buttons = next(b for b in posted["blocks"] if b["type"] == "actions")["elements"]
    assert [b["action_id"] for b in buttons[:2]] == ["warden_approve", "warden_deny"]
    assert all(b.get("value") == str(confirmation.pk) for b in buttons[:2])
    message = SlackMessage.objects.get(confirmation=confirmation)
    assert message.ts and message.conversation == CHANNEL
    # Posting is idempotent per request: planning and posting again posts nothing more.
    slack.slack_messages_plan(confirmation_id=confirmation.pk)
    assert slack_post(str(message.pk)) == "skipped"
    assert len(fake_slack.called("chat.postMessage")) == 1


def test_every_text_fits_slacks_limits_however_long_the_request(
    slack_workspace, fake_slack, ask_pending
):
    ask_pending(params={"x" * 500: "y" * 5000, "to": "z" * 3000}, reason="r" * 2000)
    [posted] = fake_slack.called("chat.postMessage")
    limits = {"header": 150, "section": 3000, "context": 3000}
    for block in posted["blocks"]:
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        if "text" in block:
            assert len(block["text"]["text"]) <= limits[block["type"]]
        for element in block.get("elements", []):
            if "confirm" in element:
                assert len(element["confirm"]["text"]["text"]) <= 300
            assert len(element["text"] if isinstance(element["text"], str) else "") <= 3000


def test_agent_text_is_plain_text_never_markup(slack_workspace, fake_slack, ask_pending):
    ask_pending(params={"note": "<!channel> *urgent* <https://evil.example|click>"})
    [posted] = fake_slack.called("chat.postMessage")
    for block in posted["blocks"]:
        for field in block.get("fields", []):
            assert field["type"] == "plain_text"
    summary = posted["blocks"][1]["text"]
    assert summary["type"] == "plain_text"


def test_slack_switched_off_posts_nothing(live_workspace, fake_slack, ask_pending):
    slack_on(live_workspace, slack_enabled=False)
    ask_pending()
    assert fake_slack.calls == []


def test_dm_approvers_reaches_linked_approvers_but_never_the_key_owner(
    live_workspace, fake_slack, agent, make_member, ask_pending
):
    key, _ = agent
    approver = make_member(live_workspace, Role.APPROVER)
    link(approver, "UAPPROVER")
    link(key.owner, "UOWNER")
    slack_on(live_workspace, slack_channel="", slack_dm_approvers=True)
    ask_pending()
    assert [c["channel"] for c in fake_slack.called("chat.postMessage")] == ["UAPPROVER"]


# --- the signature, the window, replay ---------------------------------------------------


def test_a_bad_signature_an_old_timestamp_or_a_replay_decides_nothing(
    slack_workspace, fake_slack, ask_pending, approver, api_error
):
    confirmation = ask_pending()
    link(approver, "UAPPROVER")
    payload = press_payload(confirmation, "UAPPROVER")
    api_error(send(payload, secret="another-secret"), 401, "invalid_signature")
    api_error(send(payload, timestamp=int(time.time()) - 6 * 60), 401, "invalid_signature")
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed(body)
    unsigned = Client().post(URL, body, content_type="application/x-www-form-urlencoded")
    api_error(unsigned, 401, "invalid_signature")
    assert status(confirmation) == "pending"
    first = Client().post(URL, body, content_type="application/x-www-form-urlencoded", **headers)
    assert first.status_code == 200
    again = Client().post(URL, body, content_type="application/x-www-form-urlencoded", **headers)
    api_error(again, 401, "replayed")
    assert AuditEntry.objects.filter(action="confirmation.approved").count() == 1


def test_the_same_press_delivered_twice_with_a_fresh_signature_is_refused(
    slack_workspace, fake_slack, ask_pending, approver, api_error
):
    confirmation = ask_pending()
    link(approver, "UAPPROVER")
    payload = press_payload(confirmation, "UAPPROVER")
    assert send(payload).status_code == 200
    api_error(send(payload, timestamp=int(time.time()) - 1), 401, "replayed")


def test_without_a_signing_secret_the_endpoint_does_not_exist(settings, api_error):
    settings.WARDEN_SLACK_SIGNING_SECRET = ""
    api_error(send({"type": "block_actions"}), 404, "not_found")


def test_garbage_is_a_clear_error_never_a_500(slack_workspace, fake_slack, api_error):
    body = "payload=not-json"
    response = Client().post(
        URL, body, content_type="application/x-www-form-urlencoded", **signed(body)
    )
    api_error(response, 400, "validation_error")


# --- linking -------------------------------------------------------------------------------


def test_an_unlinked_user_is_told_to_link_and_then_approves_as_themselves(
    slack_workspace, fake_slack, ask_pending, approver, user_client
):
    confirmation = ask_pending()
    assert send(press_payload(confirmation, "UNEW")).status_code == 200
    assert status(confirmation) == "pending"
    [prompt] = ephemerals(fake_slack)
    assert "Link your Slack account" in prompt and "Nothing was decided" in prompt
    link_path = prompt.split("open ", 1)[1].split(" ", 1)[0]
    code = parse_qs(urlparse(link_path).query)["code"][0]
    # The link works only in the user's own logged-in admin session.
    assert Client().get("/admin/slack/link/", {"code": code}).status_code == 302
    session = user_client(approver)
    page = session.get("/admin/slack/link/", {"code": code})
    assert page.status_code == 200 and b"UNEW" in page.content
    assert not SlackIdentity.objects.exists()  # looking is not linking
    session.post("/admin/slack/link/", {"code": code})
    assert SlackIdentity.objects.get(slack_user_id="UNEW").user == approver
    # Now the same Slack user's press approves, as the approver, via Slack.
    assert send(press_payload(confirmation, "UNEW")).status_code == 200
    assert status(confirmation) == "approved"
    entry = AuditEntry.objects.get(action="confirmation.approved")
    assert entry.actor == f"user:{approver.email}" and entry.input["via"] == "slack"
    updated = fake_slack.called("chat.update")
    assert updated and f"Approved by {approver.email}" in json.dumps(updated[-1]["blocks"])
    assert not [b for b in updated[-1]["blocks"] if b.get("block_id") == "decide"]


def test_a_forged_or_stale_link_code_links_nothing(approver, user_client):
    session = user_client(approver)
    forged = slack.link_code(team_id=TEAM, slack_user_id="UX")[:-2] + "xx"
    session.post("/admin/slack/link/", {"code": forged})
    assert not SlackIdentity.objects.exists()
    with time_machine.travel(timezone.now() - timedelta(minutes=16), tick=False):
        stale = slack.link_code(team_id=TEAM, slack_user_id="UX")
    session.post("/admin/slack/link/", {"code": stale})
    assert not SlackIdentity.objects.exists()


def test_a_link_code_links_once(approver, make_member, user_client):
    code = slack.link_code(team_id=TEAM, slack_user_id="UONCE")
    session = user_client(approver)
    session.post("/admin/slack/link/", {"code": code})
    session.post("/admin/slack/link/", {"reason": "test change", "unlink": "1"})
    assert not SlackIdentity.objects.exists()
    someone = make_member(approver.memberships.first().workspace, Role.APPROVER)
    user_client(someone).post("/admin/slack/link/", {"code": code})
    assert not SlackIdentity.objects.exists()


def test_a_slack_user_linked_to_someone_else_stays_theirs(approver, make_member, user_client):
    other = make_member(approver.memberships.first().workspace, Role.APPROVER)
    link(other, "UTAKEN")
    code = slack.link_code(team_id=TEAM, slack_user_id="UTAKEN")
    user_client(approver).post("/admin/slack/link/", {"code": code})
    assert SlackIdentity.objects.get(slack_user_id="UTAKEN").user == other


# --- the same decision service as the admin ---------------------------------------------------


def test_deny_opens_a_modal_and_the_reason_is_recorded(
    slack_workspace, fake_slack, ask_pending, approver
):
    confirmation = ask_pending()
    link(approver, "UAPPROVER")
    assert send(press_payload(confirmation, "UAPPROVER", "warden_deny")).status_code == 200
    [opened] = fake_slack.called("views.open")
    assert opened["view"]["callback_id"] == "warden_deny_reason"
    assert status(confirmation) == "pending"  # opening the modal decides nothing
    blank = send(submit_payload(confirmation, "UAPPROVER", "  "))
    assert blank.json()["response_action"] == "errors" and status(confirmation) == "pending"
    done = send(submit_payload(confirmation, "UAPPROVER", "wrong customer"))
    assert done.status_code == 200 and status(confirmation) == "denied"
    entry = AuditEntry.objects.get(action="confirmation.denied")
    assert entry.rationale == "wrong customer" and entry.input["via"] == "slack"
    assert "Denied by" in json.dumps(fake_slack.called("chat.update")[-1]["blocks"])


def test_four_eyes_holds_in_slack(slack_workspace, fake_slack, ask_pending, agent):
    key, _ = agent
    confirmation = ask_pending()
    link(key.owner, "UOWNER")
    send(press_payload(confirmation, "UOWNER"))
    assert status(confirmation) == "pending"
    assert "four_eyes" in ephemerals(fake_slack)[-1]
    assert not AuditEntry.objects.filter(action="confirmation.approved").exists()


def test_a_member_without_approve_permission_decides_nothing(
    slack_workspace, fake_slack, ask_pending, make_member
):
    confirmation = ask_pending()
    link(make_member(slack_workspace, Role.MEMBER), "UMEMBER")
    send(press_payload(confirmation, "UMEMBER"))
    assert status(confirmation) == "pending"
    assert "forbidden_by_scope" in ephemerals(fake_slack)[-1]


def test_two_approvals_across_slack_and_the_admin(
    slack_workspace, fake_slack, ask_pending, make_member, approve
):
    confirmation = ask_pending()
    ConfirmationRequest.objects.filter(pk=confirmation.pk).update(approvals_required=2)
    first = make_member(slack_workspace, Role.APPROVER)
    second = make_member(slack_workspace, Role.APPROVER)
    link(first, "UFIRST")
    send(press_payload(confirmation, "UFIRST"))
    assert status(confirmation) == "pending"
    assert "another approver is still needed" in ephemerals(fake_slack)[-1]
    assert "1 more needed" in json.dumps(fake_slack.called("chat.update")[-1]["blocks"])
    send(press_payload(confirmation, "UFIRST"))  # the same person twice is not two
    assert status(confirmation) == "pending" and "four_eyes" in ephemerals(fake_slack)[-1]
    assert approve(second, slack_workspace, confirmation.pk).status_code == 200
    assert status(confirmation) == "approved"


def test_an_expired_request_cannot_be_approved_from_slack(
    slack_workspace, fake_slack, ask_pending, approver
):
    confirmation = ask_pending()
    link(approver, "UAPPROVER")
    with time_machine.travel(confirmation.expires_at + timedelta(seconds=1)):
        send(press_payload(confirmation, "UAPPROVER"))
    assert status(confirmation) == "expired"
    assert "confirmation_expired" in ephemerals(fake_slack)[-1]
    assert "Expired" in json.dumps(fake_slack.called("chat.update")[-1]["blocks"])


def test_another_slack_team_or_workspace_sees_no_request(
    slack_workspace, fake_slack, ask_pending, approver, make_workspace
):
    confirmation = ask_pending()
    link(approver, "UAPPROVER")
    send(press_payload(confirmation, "UAPPROVER", team="T0OTHER"))
    assert status(confirmation) == "pending"
    # A user of another Warden workspace, linked in the same Slack team, is refused too.
    stranger = make_workspace().memberships.get(role=Role.OWNER).user
    link(stranger, "USTRANGER")
    send(press_payload(confirmation, "USTRANGER"))
    assert status(confirmation) == "pending"
    assert "forbidden_by_scope" in ephemerals(fake_slack)[-1]


# --- governance: turning Slack on or re-pointing it is governed ---------------------------------


def test_switching_slack_on_or_changing_its_channel_is_governed(live_workspace):
    from approvals import effective

    before = {"slack_enabled": False, "slack_channel": "C1"}
    assert effective.widening("automation_settings", before, {**before, "slack_enabled": True})
    assert effective.widening("automation_settings", before, {**before, "slack_channel": "C2"})
    on = {**before, "slack_enabled": True}
    assert effective.widening("automation_settings", on, before) == ()


# --- the preview page ------------------------------------------------------------------------


def test_the_preview_renders_the_message_for_approvers_only(
    slack_workspace, fake_slack, ask_pending, approver, make_workspace, user_client
):
    confirmation = ask_pending(params={"to": "ann@example.com"})
    page = user_client(approver).get(f"/admin/slack/preview/{confirmation.pk}/")
    assert page.status_code == 200
    assert b"warden_approve" in page.content and b"ann@example.com" in page.content
    stranger = make_workspace().memberships.get(role=Role.OWNER).user
    assert user_client(stranger).get(f"/admin/slack/preview/{confirmation.pk}/").status_code == 404


# --- entry points, as they run ------------------------------------------------------------------


@entry_point("task:notifications.slack_post", "task:notifications.slack_update")
def test_the_slack_tasks_post_retry_and_update_outside_a_transaction(
    live_workspace, fake_slack, ask_pending
):
    slack_on(live_workspace, slack_enabled=False)
    confirmation = ask_pending()
    slack_on(live_workspace)
    fake_slack.fail_next = ["internal_error", "internal_error"]
    [message_id] = slack.slack_messages_plan(confirmation_id=confirmation.pk)
    # Slack said no (twice): the task asks Celery to retry, and the row says why.
    with pytest.raises(Exception, match="retrying"):
        slack_post.apply(args=[str(message_id)], throw=True)
    failed = SlackMessage.objects.get(pk=message_id)
    assert failed.last_error == "slack: internal_error" and failed.attempts == 2 and not failed.ts
    assert slack_post(str(message_id)) == "posted"
    assert slack_post(str(message_id)) == "skipped"
    assert len(fake_slack.called("chat.postMessage")) == 3
    assert slack_update(str(confirmation.pk)) == 1


@entry_point("view:slack_interactions")
def test_a_press_commits_the_decision_and_its_audit_entry_together(
    slack_workspace, fake_slack, ask_pending, approver
):
    confirmation = ask_pending()
    link(approver, "UAPPROVER")
    assert send(press_payload(confirmation, "UAPPROVER")).status_code == 200
    assert status(confirmation) == "approved"
    assert AuditEntry.objects.filter(action="confirmation.approved").count() == 1


# --- the admin form: write-only token, governed changes -----------------------------------------


def _settings_page(workspace) -> str:
    return f"/admin/notifications/workspaceautomationsettings/{workspace.pk}/change/"


def test_turning_slack_on_in_the_admin_waits_for_a_second_person_and_hides_the_token(
    live_workspace, make_member, approve
):
    from approvals.models import ActionRequest
    from notifications.models import WorkspaceAutomationSettings

    slack_on(live_workspace, slack_enabled=False, slack_channel="", slack_bot_token_encrypted="")
    owner = live_workspace.memberships.get(role=Role.OWNER).user
    session = Client()
    session.force_login(owner)
    form = {
        "reason": "test change",
        "email_notifications": "on",
        "slack_enabled": "on",
        "slack_team_id": TEAM,
        "slack_channel": CHANNEL,
        "slack_bot_token": TOKEN,
    }
    assert session.post(_settings_page(live_workspace), form).status_code == 302
    saved = WorkspaceAutomationSettings.objects.get(workspace=live_workspace)
    assert not saved.slack_enabled and not saved.slack_bot_token_encrypted  # not yet
    proposal = ActionRequest.objects.get(workspace=live_workspace, status="pending")
    assert TOKEN not in json.dumps(proposal.params)
    assert TOKEN not in json.dumps(list(AuditEntry.objects.values("input")), default=str)
    second = make_member(live_workspace, Role.OWNER)
    assert approve(second, live_workspace, proposal.confirmation.pk).status_code == 200
    saved.refresh_from_db()
    assert saved.slack_enabled and saved.slack_channel == CHANNEL
    assert crypto.decrypt(saved.slack_bot_token_encrypted) == TOKEN
    page = session.get(_settings_page(live_workspace)).content.decode()
    assert TOKEN not in page and saved.slack_bot_token_encrypted not in page
    # Switching it off narrows: it applies at once.
    session.post(
        _settings_page(live_workspace),
        {"reason": "test change", **form, "slack_enabled": "", "slack_bot_token": ""},
    )
    saved.refresh_from_db()
    assert not saved.slack_enabled and saved.slack_channel == CHANNEL


# --- the Block Kit JSON, kept as a fixture (paste it into Slack's Block Kit Builder) -------------

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "slack_request_message.json"


def test_the_message_matches_the_block_kit_fixture(
    slack_workspace, fake_slack, ask_pending, settings
):
    settings.WARDEN_PUBLIC_URL = "https://warden.example.com"
    confirmation = ask_pending(
        params={
            "deal": 7,
            "to": "ann\u200b@example.com",
            "stage": "closed-won",
            "url": "https://files.example.com/presigned/" + "x" * 340,
            "note": "<!channel> *please* approve",
        },
        reason="The customer signed yesterday.",
    )
    [posted] = fake_slack.called("chat.postMessage")
    action = confirmation.action_request
    text = json.dumps({"blocks": posted["blocks"]}, indent=2, ensure_ascii=False)
    text = re.sub(
        r"https://warden\.example\.com/[^\"]*", "https://warden.example.com/<review link>", text
    )
    for real, shown in (
        (str(confirmation.pk), "<request id>"),
        (str(action.pk)[:8], "<id8>"),
        (action.key.name, "<key name>"),
        (action.key.prefix, "<prefix>"),
        (action.key.owner.email, "<owner>"),
        (confirmation.expires_at.strftime("%Y-%m-%d %H:%M"), "<expiry>"),
    ):
        text = text.replace(real, shown)
    if os.environ.get("WARDEN_UPDATE_FIXTURES"):
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(text + "\n")
    assert text + "\n" == FIXTURE.read_text()


def test_rotating_the_secrets_key_moves_the_bot_token_and_changes_nothing_governed(
    live_workspace, settings
):
    from cryptography.fernet import Fernet

    from gateway.services import reencrypt_all
    from notifications.models import WorkspaceAutomationSettings

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WARDEN_SECRETS_KEY = [old]
    slack_on(live_workspace)
    before = WorkspaceAutomationSettings.objects.get(workspace=live_workspace).snapshot()
    settings.WARDEN_SECRETS_KEY = [new, old]
    assert reencrypt_all() == 1
    settings.WARDEN_SECRETS_KEY = [new]
    after = WorkspaceAutomationSettings.objects.get(workspace=live_workspace)
    assert crypto.decrypt(after.slack_bot_token_encrypted) == TOKEN
    assert after.snapshot() == before
