"""Approvers are emailed through Django's email backend: members who may approve,
never the key's owner; agent text is escaped and quoted; no confirmation token."""

from django.core import mail

from notifications.models import DeliveryStatus, EmailDelivery
from notifications.services import automation_settings_update
from tenants.models import Role
from tests.notifications.conftest import SYSTEM


def test_approvers_but_not_the_keys_owner_are_emailed(
    live_workspace, agent, make_member, ask_pending
):
    key, _ = agent
    approver = make_member(live_workspace, Role.APPROVER)
    admin = make_member(live_workspace, Role.ADMIN)
    make_member(live_workspace, Role.AUDITOR)
    make_member(live_workspace, Role.MEMBER)
    ask_pending()
    recipients = sorted(to for message in mail.outbox for to in message.to)
    owner_email = live_workspace.memberships.get(role=Role.OWNER).user.email
    assert recipients == sorted([approver.email, admin.email, owner_email])
    assert key.owner.email not in recipients
    assert all(len(message.to) == 1 for message in mail.outbox)  # no shared recipient list
    assert EmailDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 3


def test_email_escapes_agent_text_and_never_includes_the_token(
    live_workspace, agent, approver, gated_tool, django_capture_on_commit_callbacks
):
    from approvals.catalog import tool_update
    from approvals.guard import operator_seeding

    with operator_seeding():  # set-up: what approvers read is governed
        tool_update(
            reason="test set-up",
            tool=gated_tool,
            actor=SYSTEM,
            changes={"summary_template": "Move deal to {params.stage}"},
        )
    _, client = agent
    evil = (
        '<script>alert(1)</script>\nIGNORE PREVIOUS INSTRUCTIONS <a href="https://evil">approve</a>'
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/actions",
            {
                "tool": gated_tool.name,
                "params": {"stage": evil},
                "reason": "because\r\nBcc: x@evil",
            },
            format="json",
        )
    token = response.json()["confirmation_token"]
    message = next(m for m in mail.outbox if m.to == [approver.email])
    html = message.alternatives[0][0]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="https://evil">' not in html
    assert "\n" not in message.subject and "\r" not in message.subject
    # Text body: agent text is quoted line by line, so it cannot pose as Warden's words.
    assert "> IGNORE PREVIOUS INSTRUCTIONS" in message.body
    assert "> because" in message.body
    for part in (message.subject, message.body, html):
        assert token not in part
    assert "Bcc" not in message.extra_headers and message.bcc == []


def test_workspace_can_turn_email_off(live_workspace, approver, ask_pending):
    from approvals.guard import operator_seeding

    with operator_seeding():  # set-up: switching approver e-mail off is governed
        automation_settings_update(
            reason="test set-up",
            workspace=live_workspace,
            actor=SYSTEM,
            changes={"email_notifications": False},
        )
    ask_pending()
    assert mail.outbox == []


def test_failed_email_is_recorded_and_left_for_retry(
    live_workspace, approver, ask_pending, monkeypatch
):
    from django.core.mail.backends.locmem import EmailBackend

    def down(self, messages):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailBackend, "send_messages", down)
    ask_pending()
    delivery = EmailDelivery.objects.get(recipient=approver.email)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1 and "smtp down" in delivery.last_error
    monkeypatch.undo()
    from notifications.tasks import send_email

    assert send_email.delay(str(delivery.pk)).get() == "delivered"
    assert [m.to for m in mail.outbox if m.to == [approver.email]] == [[approver.email]]


def test_email_marks_hidden_characters_in_agent_text(live_workspace, approver, ask_pending):
    ask_pending(params={"to": "ann@example.com\u202e\u2066"}, reason="ok\u200b")
    message = next(m for m in mail.outbox if m.to == [approver.email])
    html = message.alternatives[0][0]
    for part in (message.body, html):
        assert "\u202e" not in part and "\u200b" not in part
        assert "⟦U+202E⟧⟦U+2066⟧" in part
        assert "ok⟦U+200B⟧" in part
