"""Tests written to kill surviving mutants of the expiry in approvals/confirmations.py
(docs/mutation.md): an expired confirmation is refused however it expired, the sweep
expires exactly the due pending or approved ones, and each expiry is recorded."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.confirmations import (
    confirmation_approve,
    confirmation_deny,
    confirmations_expire_due,
)
from approvals.models import ActionRequest, ConfirmationRequest
from audit.models import AuditEntry
from common.actor import Actor
from tests.notifications.conftest import ask_pending, gated_tool  # noqa: F401

pytestmark = pytest.mark.django_db


def recall(client, confirmation, params):
    from approvals import tokens

    return client.post(
        "/api/v1/actions",
        {
            "tool": "crm.update_stage",
            "params": params,
            "confirmed": True,
            "confirmation_token": tokens.confirmation_token(str(confirmation.pk)),
        },
        format="json",
    )


def test_an_approved_token_expired_by_the_sweep_is_refused(
    agent,
    approver,
    live_workspace,
    ask_pending,  # noqa: F811
):
    confirmation = ask_pending(params={"deal": 1})
    confirmation_approve(confirmation=confirmation, reason="ok", actor=Actor.for_user(approver))
    assert confirmations_expire_due(now=confirmation.expires_at + timedelta(seconds=1)) == 1
    _, client = agent
    used = recall(client, confirmation, {"deal": 1})
    assert used.status_code != 200
    assert used.json()["error"]["code"] == "confirmation_expired"
    confirmation.refresh_from_db()
    assert confirmation.status == "expired" and confirmation.used_at is None


def test_the_sweep_expires_exactly_the_due_pending_and_approved(
    approver,
    live_workspace,
    ask_pending,  # noqa: F811
):
    pending = ask_pending(params={"deal": 1})
    approved = ask_pending(params={"deal": 2})
    denied = ask_pending(params={"deal": 3})
    later = ask_pending(params={"deal": 4})
    human = Actor.for_user(approver)
    confirmation_approve(confirmation=approved, reason="ok", actor=human)
    confirmation_deny(confirmation=denied, reason="no", actor=human)
    approved.refresh_from_db()
    approved_at = approved.decided_at
    moment = pending.expires_at + timedelta(seconds=1)
    ConfirmationRequest.objects.filter(pk=later.pk).update(expires_at=moment + timedelta(hours=1))
    ConfirmationRequest.objects.filter(pk=denied.pk).update(expires_at=pending.expires_at)

    assert confirmations_expire_due(now=moment) == 2
    for c in (pending, approved, denied, later):
        c.refresh_from_db()
    assert (pending.status, approved.status) == ("expired", "expired")
    assert (denied.status, later.status) == ("denied", "pending")
    # The moment of expiry is the sweep's; an earlier decision's time is kept.
    assert pending.decided_at == moment
    assert approved.decided_at == approved_at
    assert ActionRequest.objects.get(pk=pending.action_request_id).status == "expired"

    entry = AuditEntry.objects.get(action="confirmation.expired", target_id=str(pending.pk))
    assert entry.actor == "system:expiry"
    assert entry.tool == "crm.update_stage"
    assert entry.decision == "expired" and entry.outcome == "expired"
    assert entry.rationale == "no usable human decision before the confirmation expired"
    assert entry.input["expires_at"] == pending.expires_at.isoformat()
    assert entry.input["params_digest"] == pending.params_digest
    assert entry.input["action_request"] == str(pending.action_request_id)
    assert entry.policy_version == pending.action_request.policy_version


def test_a_token_past_its_expiry_is_expired_at_use(agent, live_workspace, ask_pending):  # noqa: F811
    confirmation = ask_pending(params={"deal": 5})
    past = timezone.now() - timedelta(seconds=5)
    ConfirmationRequest.objects.filter(pk=confirmation.pk).update(expires_at=past)
    _, client = agent
    used = recall(client, confirmation, {"deal": 5})
    assert used.json()["error"]["code"] == "confirmation_expired"
    confirmation.refresh_from_db()
    assert confirmation.status == "expired"
    assert confirmation.decided_at is not None
    entry = AuditEntry.objects.get(action="confirmation.expired", target_id=str(confirmation.pk))
    assert entry.actor == "system:expiry"
