"""The same call asked again (same key, tool and params) while a human is involved is
one request: it joins the waiting one (no second e-mail or webhook), and after a denial
it is answered with the denial and its reason for the workspace's confirmation TTL."""

from datetime import timedelta

import time_machine
from django.core import mail
from django.utils import timezone

from approvals.models import ActionRequest, ConfirmationRequest
from notifications.models import NotificationEvent


def _ask(agent, tool, params):
    _, client = agent
    body = {"tool": tool.name, "params": params}
    return client.post("/api/v1/actions", body, format="json")


def test_same_call_while_pending_joins_it_without_a_second_email_or_webhook(
    live_workspace, agent, approver, gated_tool, make_endpoint, django_capture_on_commit_callbacks
):
    make_endpoint(live_workspace)
    with django_capture_on_commit_callbacks(execute=True):
        first = _ask(agent, gated_tool, {"deal": 7})
    emails = len(mail.outbox)
    assert emails >= 1
    with django_capture_on_commit_callbacks(execute=True):
        again = _ask(agent, gated_tool, {"deal": 7})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["confirmation_token"] == first.json()["confirmation_token"]
    assert ConfirmationRequest.objects.count() == ActionRequest.objects.count() == 1
    assert len(mail.outbox) == emails
    assert NotificationEvent.objects.filter(event="confirmation.requested").count() == 1


def test_other_params_are_another_request(agent, gated_tool):
    first = _ask(agent, gated_tool, {"deal": 7})
    other = _ask(agent, gated_tool, {"deal": 8})
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]


def test_same_call_from_another_key_is_another_request(
    live_workspace, agent, gated_tool, make_key, key_client
):
    first = _ask(agent, gated_tool, {"deal": 7})
    key, plaintext = make_key(live_workspace, scopes=["actions:read", "actions:write"])
    other = _ask((key, key_client(plaintext)), gated_tool, {"deal": 7})
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]


def test_after_a_denial_the_same_call_answers_the_denial_and_its_reason(
    live_workspace, agent, approver, approve, gated_tool, api_error
):
    first = _ask(agent, gated_tool, {"deal": 7})
    confirmation = ConfirmationRequest.objects.get()
    assert (
        approve(approver, live_workspace, confirmation.pk, "deny", "wrong deal").status_code == 200
    )
    emails = len(mail.outbox)
    again = _ask(agent, gated_tool, {"deal": 7})
    api_error(again, 403, "confirmation_denied")
    detail = again.json()["error"]["detail"]
    assert detail["reason"] == "wrong deal"
    assert detail["action_id"] == first.json()["id"]
    assert "wrong deal" in again.json()["error"]["message"]
    assert ActionRequest.objects.count() == 1
    assert len(mail.outbox) == emails


def test_a_denial_is_answered_only_for_the_confirmation_ttl(
    live_workspace, agent, approver, approve, gated_tool
):
    first = _ask(agent, gated_tool, {"deal": 7})
    confirmation = ConfirmationRequest.objects.get()
    approve(approver, live_workspace, confirmation.pk, "deny", "wrong deal")
    later = timezone.now() + live_workspace.confirmation_ttl + timedelta(seconds=5)
    with time_machine.travel(later, tick=False):
        again = _ask(agent, gated_tool, {"deal": 7})
    assert again.status_code == 202 and again.json()["id"] != first.json()["id"]


def test_after_an_approval_the_same_call_answers_the_same_confirmation(
    live_workspace, agent, approver, approve, gated_tool
):
    first = _ask(agent, gated_tool, {"deal": 7}).json()
    confirmation = ConfirmationRequest.objects.get()
    approve(approver, live_workspace, confirmation.pk)
    again = _ask(agent, gated_tool, {"deal": 7})
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    _, client = agent
    body = {
        "tool": gated_tool.name,
        "params": {"deal": 7},
        "confirmed": True,
        "confirmation_token": again.json()["confirmation_token"],
    }
    assert client.post("/api/v1/actions", body, format="json").status_code == 200
    used = _ask(agent, gated_tool, {"deal": 7})  # spent: a new call is a new request
    assert used.status_code == 202 and used.json()["id"] != first["id"]


def test_a_request_asked_in_dry_run_is_not_joined_once_live(
    workspace, make_key, key_client, make_tool
):
    """An approval given while "nothing will be done for real" is void once live, so a
    call made after going live files its own request instead of joining that one."""
    from approvals.guard import operator_seeding

    workspace.writes_enabled = True
    with operator_seeding():
        workspace.save()
    tool = make_tool(workspace, "crm.update", level="write", confirmation="always")
    key, plaintext = make_key(workspace, scopes=["actions:write"])
    agent = (key, key_client(plaintext))
    first = _ask(agent, tool, {"id": 1})
    assert _ask(agent, tool, {"id": 1}).json()["id"] == first.json()["id"]  # still dry run
    workspace.mode = "live"
    with operator_seeding():
        workspace.save()
    live = _ask(agent, tool, {"id": 1})
    assert live.status_code == 202 and live.json()["id"] != first.json()["id"]
