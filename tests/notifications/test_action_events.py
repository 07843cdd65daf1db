"""Decisions delivered, not polled: webhook events when an agent's request is
approved, denied, expired or executed."""

from datetime import timedelta

from django.utils import timezone

from approvals.confirmations import (
    confirmation_approve,
    confirmation_deny,
    confirmations_expire_due,
)
from approvals.models import ConfirmationRequest
from approvals.tokens import confirmation_token
from common.actor import Actor
from notifications.models import NotificationEvent, WebhookDelivery
from notifications.services import notify_action_decided

EVENTS = ("action.approved", "action.denied", "action.expired", "action.executed")


def events():
    return list(
        NotificationEvent.objects.filter(event__startswith="action.")
        .order_by("created_at")
        .values_list("event", flat=True)
    )


def test_approval_and_execution_are_announced(
    live_workspace, make_endpoint, ask_pending, approver, agent, django_capture_on_commit_callbacks
):
    endpoint = make_endpoint(live_workspace, events=EVENTS)
    confirmation = ask_pending()
    with django_capture_on_commit_callbacks(execute=True):
        confirmation_approve(
            confirmation=confirmation, reason="fine", actor=Actor.for_user(approver)
        )
    _, client = agent
    action = confirmation.action_request
    token_body = {
        "tool": action.tool_name,
        "params": action.params,
        "confirmed": True,
        "confirmation_token": confirmation_token(confirmation.pk),
    }
    assert client.post("/api/v1/actions", token_body, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        reported = client.post(
            f"/api/v1/actions/{action.pk}/result", {"status": "succeeded"}, format="json"
        )
    assert reported.status_code == 200
    assert events() == ["action.approved", "action.executed"]
    approved = NotificationEvent.objects.get(event="action.approved")
    assert approved.payload["data"]["action_id"] == str(action.pk)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 2


def test_denial_and_expiry_are_announced(
    live_workspace, make_endpoint, ask_pending, approver, django_capture_on_commit_callbacks
):
    make_endpoint(live_workspace, events=EVENTS)
    denied, expiring = ask_pending(params={"deal": 1}), ask_pending(params={"deal": 2})
    with django_capture_on_commit_callbacks(execute=True):
        confirmation_deny(confirmation=denied, reason="no", actor=Actor.for_user(approver))
    ConfirmationRequest.objects.filter(pk=expiring.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert confirmations_expire_due() == 1
    assert events() == ["action.denied", "action.expired"]


def test_endpoints_not_subscribed_hear_nothing(
    live_workspace, make_endpoint, ask_pending, approver, django_capture_on_commit_callbacks
):
    make_endpoint(live_workspace, events=("confirmation.requested",))
    confirmation = ask_pending()
    with django_capture_on_commit_callbacks(execute=True):
        confirmation_approve(
            confirmation=confirmation, reason="fine", actor=Actor.for_user(approver)
        )
    assert not WebhookDelivery.objects.filter(event__event="action.approved").exists()
    assert events() == []  # no one to tell: nothing recorded


def test_an_event_nobody_subscribed_to_costs_one_lookup(
    live_workspace, make_endpoint, ask_pending, django_assert_max_num_queries
):
    """Executed calls announce themselves after commit; with no subscriber that must not
    add a transaction to every call (it was 8 statements and a commit)."""
    make_endpoint(live_workspace, events=("confirmation.requested",))
    action = ask_pending().action_request
    with django_assert_max_num_queries(1):
        assert (
            notify_action_decided(
                action_id=action.pk, workspace_id=live_workspace.pk, event="action.executed"
            )
            is None
        )
    assert events() == []
