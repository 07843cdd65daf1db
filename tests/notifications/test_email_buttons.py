"""Approve / Deny buttons in the approver e-mail (issue 23, item 2: the Teams stand-in).

Each button is a signed link (verdict signed in) to a confirmation page in the
approver's own session. GET only shows; the page's POST (CSRF) goes to the queue's
decide view, so login, `approve_actions`, four eyes, two approvers and expiry hold."""

import re
from datetime import timedelta
from urllib.parse import unquote, urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.utils.html import escape

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from approvals.review_link import decision_link_token, review_link_token
from audit.models import AuditEntry
from common.actor import Actor
from tenants.models import Role
from tests.entry_points import entry_point

SYSTEM = Actor.system("tests")

PUBLIC = "https://warden.example.com"


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.WARDEN_PUBLIC_URL = PUBLIC


def _button(message, verdict: str) -> str:
    match = re.search(
        rf"{re.escape(PUBLIC)}(/admin/approvals/confirmationrequest/[^/]+/email/{verdict}/\S+)",
        message.body,
    )
    assert match, message.body
    return match.group(1)


def _decide_path(confirmation) -> str:
    return f"/admin/approvals/confirmationrequest/{confirmation.pk}/decide/"


def _client(user, csrf=False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _status(confirmation) -> str:
    confirmation.refresh_from_db()
    return confirmation.status


def test_the_email_has_approve_and_deny_buttons_in_text_and_html(approver, ask_pending):
    confirmation = ask_pending()
    message = mail.outbox[0]
    html = message.alternatives[0][0].replace("&amp;", "&")
    for verdict in ("approve", "deny"):
        path = _button(message, verdict)
        assert str(confirmation.pk) in path
        assert f'href="{PUBLIC}{path}"' in html


def test_opening_a_button_never_decides(approver, ask_pending):
    confirmation = ask_pending()
    client = _client(approver)
    for verdict in ("approve", "deny"):
        page = client.get(_button(mail.outbox[0], verdict))
        assert page.status_code == 200
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING
    assert not AuditEntry.objects.filter(action="confirmation.approved").exists()


def test_the_approve_page_shows_the_request_and_one_approve_press(approver, ask_pending):
    confirmation = ask_pending(params={"deal": 4242, "stage": "won"})
    html = _client(approver).get(_button(mail.outbox[0], "approve")).content.decode()
    assert "Approve this request?" in html
    assert escape(confirmation.summary) in html and "4242" in html  # what is approved
    assert 'id="approval-effect"' in html
    assert 'name="verdict" value="approve"' in html
    assert 'name="verdict" value="deny"' not in html
    assert "csrfmiddlewaretoken" in html
    assert f'action="{_decide_path(confirmation)}"' in html


def test_pressing_approve_on_the_page_approves_through_the_decide_view(approver, ask_pending):
    confirmation = ask_pending()
    client = _client(approver, csrf=True)
    page = client.get(_button(mail.outbox[0], "approve"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    reason = re.search(r'id="decide-reason"[^>]*>([^<]+)<', page.content.decode())[1]
    response = client.post(
        _decide_path(confirmation),
        {"csrfmiddlewaretoken": token, "verdict": "approve", "reason": reason},
    )
    assert response.status_code == 302
    assert _status(confirmation) == ConfirmationRequest.Status.APPROVED
    entry = AuditEntry.objects.get(action="confirmation.approved")
    assert entry.actor == f"user:{approver.email}"


def test_the_press_without_csrf_is_refused(approver, ask_pending):
    confirmation = ask_pending()
    client = _client(approver, csrf=True)
    client.get(_button(mail.outbox[0], "approve"))
    response = client.post(_decide_path(confirmation), {"verdict": "approve", "reason": "x"})
    assert response.status_code == 403
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING


def test_the_deny_page_asks_for_a_reason_and_denies_with_it(approver, ask_pending):
    confirmation = ask_pending()
    client = _client(approver)
    html = client.get(_button(mail.outbox[0], "deny")).content.decode()
    assert "Deny this request?" in html
    assert re.search(r'<textarea name="reason" id="decide-reason" required[^>]*></textarea>', html)
    assert 'name="verdict" value="approve"' not in html
    client.post(_decide_path(confirmation), {"verdict": "deny", "reason": ""})
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING  # no reason, no denial
    client.post(_decide_path(confirmation), {"verdict": "deny", "reason": "wrong deal"})
    assert _status(confirmation) == ConfirmationRequest.Status.DENIED


def test_without_a_session_the_button_leads_to_login_and_back(approver, ask_pending):
    ask_pending()
    path = _button(mail.outbox[0], "approve")
    client = Client()
    response = client.get(path)
    assert response.status_code == 302
    login = response["Location"]
    assert login.startswith("/admin/login/") and "/email/approve/" in unquote(login)
    back = unquote(urlsplit(login).query.split("next=", 1)[1])
    assert back == path
    logged_in = client.post(
        login, {"username": approver.email, "password": "pw-for-tests-1", "next": back}
    )
    assert logged_in.status_code == 302 and logged_in["Location"] == path
    assert "Approve this request?" in client.get(path).content.decode()


def test_a_button_signed_for_deny_does_not_open_the_approve_page(approver, ask_pending):
    confirmation = ask_pending()
    deny_token = _button(mail.outbox[0], "deny").split("?link=")[1]
    response = _client(approver).get(
        f"/admin/approvals/confirmationrequest/{confirmation.pk}/email/approve/?link={deny_token}"
    )
    assert response.status_code == 400
    assert "not valid" in response.content.decode()


def test_a_review_link_is_not_a_button(approver, ask_pending):
    confirmation = ask_pending()
    review = review_link_token(
        confirmation_id=confirmation.pk,
        workspace_id=confirmation.workspace_id,
        expires_at=confirmation.expires_at,
    )
    path = f"/admin/approvals/confirmationrequest/{confirmation.pk}/email/approve/?link={review}"
    assert _client(approver).get(path).status_code == 400


def test_a_tampered_button_shows_nothing_of_the_request(approver, ask_pending):
    confirmation = ask_pending(params={"deal": 4242})
    path = _button(mail.outbox[0], "approve")
    response = _client(approver).get(path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "4242" not in html and escape(confirmation.summary) not in html


def test_an_unknown_verdict_is_not_found(approver, ask_pending):
    confirmation = ask_pending()
    token = decision_link_token(
        confirmation_id=confirmation.pk,
        workspace_id=confirmation.workspace_id,
        expires_at=confirmation.expires_at,
        verdict="approve",
    )
    path = f"/admin/approvals/confirmationrequest/{confirmation.pk}/email/delete/?link={token}"
    assert _client(approver).get(path).status_code == 404


def test_the_button_expires_with_the_request(approver, ask_pending, time_machine):
    confirmation = ask_pending()
    path = _button(mail.outbox[0], "approve")
    client = _client(approver)
    time_machine.move_to(confirmation.expires_at + timedelta(seconds=1))
    response = client.get(path)
    assert response.status_code == 410
    client.post(_decide_path(confirmation), {"verdict": "approve", "reason": "late"})
    assert _status(confirmation) != ConfirmationRequest.Status.APPROVED


def test_another_workspace_sees_no_such_request(approver, ask_pending, make_workspace, make_member):
    confirmation = ask_pending()
    stranger = make_member(make_workspace(), Role.ADMIN)
    client = _client(stranger)
    assert client.get(_button(mail.outbox[0], "approve")).status_code == 404
    client.post(_decide_path(confirmation), {"verdict": "approve", "reason": "mine now"})
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING


def test_a_member_without_approve_permission_is_refused(
    approver, live_workspace, ask_pending, make_member
):
    confirmation = ask_pending()
    auditor = make_member(live_workspace, Role.AUDITOR)
    assert _client(auditor).get(_button(mail.outbox[0], "approve")).status_code == 403
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING


def test_the_button_does_not_lift_four_eyes(agent, approver, ask_pending):
    key, _ = agent  # the key's owner may approve in general, never its own key's request
    confirmation = ask_pending()
    owner = _client(key.owner)
    html = owner.get(_button(mail.outbox[0], "approve")).content.decode()
    assert 'id="undecidable"' in html
    assert 'name="verdict" value="approve"' not in html
    owner.post(_decide_path(confirmation), {"verdict": "approve", "reason": "mine"})
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING


def test_two_approvals_across_the_button_and_the_admin(
    live_workspace, agent, make_member, django_capture_on_commit_callbacks
):
    type(live_workspace).objects.filter(pk=live_workspace.pk).update(
        require_two_approvals_for_irreversible=True
    )
    with operator_seeding():
        tool = tool_create(
            reason="test set-up",
            workspace=live_workspace,
            actor=SYSTEM,
            name="billing.wire",
            level="write",
            confirmation="always",
            irreversible=True,
        )
    first = make_member(live_workspace, Role.APPROVER)
    second = make_member(live_workspace, Role.APPROVER)
    _, api = agent
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/api/v1/actions", {"tool": tool.name, "params": {"n": 1}}, format="json")
    confirmation = ConfirmationRequest.objects.get(action_request_id=answer.json()["id"])
    assert confirmation.approvals_required == 2
    message = next(m for m in mail.outbox if first.email in m.to)
    client = _client(first)
    client.get(_button(message, "approve"))
    client.post(_decide_path(confirmation), {"verdict": "approve", "reason": "one"})
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING
    # the same approver again, from the same button: still one approval
    client.post(_decide_path(confirmation), {"verdict": "approve", "reason": "one again"})
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING
    # the second, in the admin's review page
    _client(second).post(_decide_path(confirmation), {"verdict": "approve", "reason": "two"})
    assert _status(confirmation) == ConfirmationRequest.Status.APPROVED


def test_a_decided_request_says_it_can_no_longer_be_decided(approver, ask_pending, make_member):
    confirmation = ask_pending()
    path = _button(mail.outbox[0], "approve")
    client = _client(approver)
    client.post(_decide_path(confirmation), {"verdict": "deny", "reason": "no"})
    html = client.get(path).content.decode()
    assert 'id="not-decidable"' in html and 'name="verdict"' not in html


@entry_point("adminview:approvals_confirmationrequest_email_decision")
def test_the_button_page_and_its_press_outside_any_test_transaction(agent, approver, gated_tool):
    _, api = agent
    answer = api.post(
        "/api/v1/actions", {"tool": gated_tool.name, "params": {"deal": 9}}, format="json"
    )
    confirmation = ConfirmationRequest.objects.get(action_request_id=answer.json()["id"])
    message = next(m for m in mail.outbox if approver.email in m.to)
    client = _client(approver)
    assert "Approve this request?" in client.get(_button(message, "approve")).content.decode()
    assert _status(confirmation) == ConfirmationRequest.Status.PENDING
    client.post(_decide_path(confirmation), {"verdict": "approve", "reason": "committed"})
    assert _status(confirmation) == ConfirmationRequest.Status.APPROVED
    assert AuditEntry.objects.filter(action="confirmation.approved").count() == 1
