"""Custody includes the subject (issue 21 item 5): a governed change to a key (lifting
its suspension, widening it) is decided by someone outside that key's own custody. Its
owner, and whoever rotated or created it, are answerable for it as much as the proposer:
refused with `four_eyes` in the API and the admin queue; a person outside is accepted."""

import pytest
from django.test import Client
from django.utils import timezone

from approvals.models import ActionRequest
from audit.models import AuditEntry
from keys.models import MachineKey
from tenants.models import Membership, Role

QUEUE = "/admin/approvals/confirmationrequest/"


@pytest.fixture
def proposer(workspace):
    """The workspace owner files the request; they are not the key's owner."""
    return Membership.objects.get(workspace=workspace, role=Role.OWNER).user


@pytest.fixture
def key_owner(workspace, make_member):
    return make_member(workspace, Role.ADMIN)


@pytest.fixture
def outsider(workspace, make_member):
    return make_member(workspace, Role.ADMIN)


@pytest.fixture
def suspended_key(workspace, make_key, key_owner):
    key, _ = make_key(workspace, name="suspended-agent", owner=key_owner)
    MachineKey.objects.filter(pk=key.pk).update(suspended_at=timezone.now())
    key.refresh_from_db()
    return key


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def lift_request(workspace, suspended_key, proposer):
    """The proposer asks in the admin to lift the suspension: a pending request."""
    browser(proposer).post(
        f"/admin/keys/machinekey/{suspended_key.pk}/unsuspend/", {"reason": "false alarm"}
    )
    return ActionRequest.objects.get(workspace=workspace, tool_name="warden.key.unsuspend")


@pytest.fixture
def rotator(workspace, make_member, suspended_key, user_client):
    """An admin who rotated the key: in its chain of custody."""
    rotator = make_member(workspace, Role.ADMIN)
    response = user_client(rotator, workspace).post(
        f"/api/v1/keys/{suspended_key.pk}/rotate", {}, format="json"
    )
    assert response.status_code == 200, response.content
    suspended_key.refresh_from_db()
    assert rotator.pk in suspended_key.custody_user_ids
    return rotator


def still_suspended(key) -> bool:
    key.refresh_from_db()
    return key.suspended_at is not None


def admin_decide(user, confirmation, verdict="approve"):
    return browser(user).post(
        f"{QUEUE}{confirmation.pk}/decide/",
        {"verdict": verdict, "reason": "checked it"},
        follow=True,
    )


# --- through the API -------------------------------------------------------------------


def test_the_keys_owner_may_not_approve_lifting_its_suspension_in_the_api(
    workspace, lift_request, key_owner, suspended_key, approve, api_error
):
    response = approve(key_owner, workspace, lift_request.confirmation.pk)
    api_error(response, 403, "four_eyes")
    assert still_suspended(suspended_key)


def test_someone_in_the_keys_custody_may_not_approve_it_in_the_api(
    workspace, rotator, lift_request, suspended_key, approve, api_error
):
    response = approve(rotator, workspace, lift_request.confirmation.pk)
    api_error(response, 403, "four_eyes")
    assert still_suspended(suspended_key)


def test_custody_gained_after_filing_counts_too(
    workspace, lift_request, rotator, suspended_key, approve, api_error
):
    """The rotator joined the key's custody after the request was filed."""
    api_error(approve(rotator, workspace, lift_request.confirmation.pk), 403, "four_eyes")
    assert still_suspended(suspended_key)


def test_a_person_outside_the_keys_custody_lifts_it_in_the_api(
    workspace, lift_request, outsider, suspended_key, approve
):
    assert approve(outsider, workspace, lift_request.confirmation.pk).status_code == 200
    assert not still_suspended(suspended_key)
    assert AuditEntry.objects.filter(
        workspace=workspace, action="key.unsuspended", target_id=str(suspended_key.pk)
    ).exists()


# --- through the admin queue -------------------------------------------------------------


def test_the_keys_owner_may_not_approve_it_in_the_admin(lift_request, key_owner, suspended_key):
    response = admin_decide(key_owner, lift_request.confirmation)
    messages = [str(m) for m in response.context["messages"]]
    assert any("(four_eyes)" in m for m in messages), messages
    assert still_suspended(suspended_key)


def test_the_queue_marks_the_request_answerable_for_the_keys_owner(lift_request, key_owner):
    html = browser(key_owner).get(f"{QUEUE}{lift_request.confirmation.pk}/").content.decode()
    assert 'id="undecidable"' in html
    assert 'id="decide-form"' not in html


def test_someone_in_the_keys_custody_may_not_approve_it_in_the_admin(
    rotator, lift_request, suspended_key
):
    response = admin_decide(rotator, lift_request.confirmation)
    messages = [str(m) for m in response.context["messages"]]
    assert any("(four_eyes)" in m for m in messages), messages
    assert still_suspended(suspended_key)


def test_a_person_outside_the_keys_custody_lifts_it_in_the_admin(
    lift_request, outsider, suspended_key
):
    response = admin_decide(outsider, lift_request.confirmation)
    assert response.status_code == 200
    assert not still_suspended(suspended_key)


# --- who is asked ------------------------------------------------------------------------


def test_the_keys_owner_is_not_emailed_to_approve_lifting_its_suspension(
    workspace, suspended_key, proposer, key_owner, outsider, django_capture_on_commit_callbacks
):
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):
        browser(proposer).post(
            f"/admin/keys/machinekey/{suspended_key.pk}/unsuspend/", {"reason": "false alarm"}
        )
    recipients = {to for message in mail.outbox for to in message.to}
    assert outsider.email in recipients
    assert key_owner.email not in recipients
    assert proposer.email not in recipients


def test_the_request_keeps_the_keys_custody_as_it_was_when_filed(
    lift_request, proposer, key_owner, suspended_key
):
    """The README's promise: each request keeps the set of who answers for it."""
    assert {proposer.pk, key_owner.pk} <= set(lift_request.custody_user_ids)
    assert set(suspended_key.custody_user_ids) <= set(lift_request.custody_user_ids)


def test_widening_a_key_counts_its_custody_whatever_the_verb(
    workspace, make_key, key_owner, proposer, approve, api_error
):
    """No endpoint widens a key yet (keys are rotated or revoked, never edited); when a
    front door files one, the door counts the target's custody for any verb."""
    from approvals import door
    from approvals.governance import Target
    from common.actor import Actor

    key, _ = make_key(workspace, owner=key_owner, scopes=["actions:read"])
    before = key.snapshot()
    result = door.governed_change(
        reason="test set-up",
        workspace=workspace,
        actor=Actor.for_user(proposer),
        proposal=door.Proposal(
            Target.KEY,
            "update",
            f"key {key.name}",
            before,
            {**before, "unattended_mode": True},
            str(key.pk),
            {"unattended_mode": True},
        ),
    )
    assert not result.applied
    request = ActionRequest.objects.get(workspace=workspace, tool_name__startswith="warden.key")
    api_error(approve(key_owner, workspace, request.confirmation.pk), 403, "four_eyes")
