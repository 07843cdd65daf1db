"""The signed review link in approver notifications: it leads to the request's review
page, is bound to that request and workspace, dies with the request, and never grants
anything by itself (login, `approve_actions` and four eyes still apply)."""

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client

from approvals.models import ConfirmationRequest
from approvals.review_link import review_link_token
from tenants.models import Role

PUBLIC = "https://warden.example.com"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def public_url(settings):
    settings.WARDEN_PUBLIC_URL = PUBLIC + "/"


def _link_in(message) -> str:
    match = re.search(rf"{re.escape(PUBLIC)}/admin/\S+", message.body)
    assert match, message.body
    return match.group(0)


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_email_and_webhook_carry_a_signed_link_to_the_review_page(
    public_url, live_workspace, approver, make_endpoint, receiver, ask_pending
):
    make_endpoint(live_workspace)
    confirmation = ask_pending()
    link = _link_in(mail.outbox[0])
    assert link.startswith(f"{PUBLIC}/admin/approvals/confirmationrequest/{confirmation.pk}/?link=")
    assert f'href="{link}"' in mail.outbox[0].alternatives[0][0].replace("&amp;", "&")
    assert json.loads(receiver.received[0].body)["data"]["review_url"] == link


def test_following_the_link_opens_the_review_page_for_an_approver(
    public_url, live_workspace, approver, ask_pending
):
    confirmation = ask_pending()
    response = _client(approver).get(_local(_link_in(mail.outbox[0])))
    assert response.status_code == 200
    assert confirmation.summary in response.content.decode()
    assert 'name="verdict" value="approve"' in response.content.decode()


def test_the_link_alone_grants_nothing_without_a_login(public_url, approver, ask_pending):
    ask_pending()
    path = _local(_link_in(mail.outbox[0]))
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "link%3D" in response["Location"]  # after login the approver lands on it


def test_the_link_does_not_open_the_request_to_another_workspace(
    public_url, approver, ask_pending, make_workspace, make_member
):
    ask_pending()
    stranger = make_member(make_workspace(), Role.APPROVER)
    assert _client(stranger).get(_local(_link_in(mail.outbox[0]))).status_code == 404


def test_the_link_does_not_open_the_review_to_a_member_without_approve_permission(
    public_url, live_workspace, approver, ask_pending, make_member
):
    ask_pending()
    auditor = make_member(live_workspace, Role.AUDITOR)
    assert _client(auditor).get(_local(_link_in(mail.outbox[0]))).status_code == 403


def test_the_link_does_not_lift_four_eyes(public_url, agent, approver, ask_pending):
    key, _ = agent  # its owner is an admin (approve_actions), but answers for the key
    confirmation = ask_pending()
    owner = _client(key.owner)
    path = _local(_link_in(mail.outbox[0]))
    page = owner.get(path).content.decode()
    assert "Four-eyes rule" in page
    assert 'name="verdict" value="approve"' not in page
    owner.post(
        f"/admin/approvals/confirmationrequest/{confirmation.pk}/decide/",
        {"verdict": "approve", "reason": "via the link"},
    )
    confirmation.refresh_from_db()
    assert confirmation.status == ConfirmationRequest.Status.PENDING


def _refusal_page(response) -> str:
    html = response.content.decode()
    assert 'id="content-main"' in html and "breadcrumbs" in html  # inside the admin frame
    assert 'href="/admin/approvals/confirmationrequest/"' in html  # the way to the queue
    return html


def test_a_tampered_link_says_so_and_shows_nothing_of_the_request(
    public_url, approver, ask_pending
):
    confirmation = ask_pending(params={"deal": 4242})
    path = _local(_link_in(mail.outbox[0]))
    response = _client(approver).get(path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"))
    assert response.status_code == 400
    html = _refusal_page(response)
    assert "This review link is not valid" in html
    assert "4242" not in html and confirmation.summary not in html


def test_a_genuine_link_for_another_request_is_not_valid_here(public_url, approver, ask_pending):
    first = ask_pending(params={"deal": 1})
    second = ask_pending(params={"deal": 2})
    first_token = _local(_link_in(mail.outbox[0])).split("?link=")[1]
    assert str(first.pk) in _local(_link_in(mail.outbox[0]))
    response = _client(approver).get(
        f"/admin/approvals/confirmationrequest/{second.pk}/?link={first_token}"
    )
    assert response.status_code == 400
    assert "This review link is not valid" in _refusal_page(response)


def test_a_link_signed_for_another_workspace_is_not_valid(public_url, approver, ask_pending):
    confirmation = ask_pending()
    forged = review_link_token(
        confirmation_id=confirmation.pk,
        workspace_id="00000000-0000-0000-0000-000000000000",
        expires_at=confirmation.expires_at,
    )
    response = _client(approver).get(
        f"/admin/approvals/confirmationrequest/{confirmation.pk}/?link={forged}"
    )
    assert response.status_code == 400


def test_the_link_expires_with_the_request(public_url, approver, ask_pending, time_machine):
    confirmation = ask_pending()
    path = _local(_link_in(mail.outbox[0]))
    client = _client(approver)
    time_machine.move_to(confirmation.expires_at + timedelta(seconds=1))
    response = client.get(path)
    assert response.status_code == 410
    html = _refusal_page(response)
    assert "This review link has expired" in html
    assert 'id="open-queue"' in html


def test_the_link_works_until_the_request_expires(public_url, approver, ask_pending, time_machine):
    confirmation = ask_pending()
    path = _local(_link_in(mail.outbox[0]))
    client = _client(approver)
    time_machine.move_to(confirmation.expires_at - timedelta(seconds=5))
    assert client.get(path).status_code == 200
    assert confirmation.expires_at - confirmation.created_at < timedelta(days=8)


def test_without_a_public_url_the_email_says_there_is_no_link(
    settings, make_endpoint, live_workspace, receiver, approver, ask_pending
):
    settings.WARDEN_PUBLIC_URL = ""
    make_endpoint(live_workspace)
    ask_pending()
    body = mail.outbox[0].body
    assert "http" not in body
    assert "No direct link" in body and "WARDEN_PUBLIC_URL" in body
    assert "No direct link" in mail.outbox[0].alternatives[0][0]
    assert json.loads(receiver.received[0].body)["data"]["review_url"] == ""


def _public_url_setting(debug: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "WARDEN_PUBLIC_URL"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG=debug, SECRET_KEY="x" * 50)
    result = subprocess.run(
        [sys.executable, "-c", "from config import settings; print(settings.WARDEN_PUBLIC_URL)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_make_run_gets_a_local_public_url_and_production_none():
    assert _public_url_setting("1") == "http://127.0.0.1:8000"
    assert _public_url_setting("0") == ""
