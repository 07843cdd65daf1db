"""The audit browser names actors and says the time zone, without a query per row."""

import re

from django.db import transaction

from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from common.actor import Actor
from tenants.models import Role

LIST = "/admin/audit/auditentry/"


def _decided(workspace, key, tool="crm.read", request_id="req-1"):
    with transaction.atomic():
        event = EVENTS[AuditAction.ACTION_DECIDED].event(
            tool=tool, decision="allowed", outcome="allowed"
        )
        audit_record(event, workspace=workspace, actor=Actor.for_key(key, request_id=request_id))


def test_key_and_user_names_beside_actor_ids(workspace, make_key, role_users, admin_client_for):
    key, _ = make_key(workspace, name="invoice-bot")
    _decided(workspace, key)
    auditor = role_users[Role.AUDITOR]
    auditor.first_name, auditor.last_name = "Ada", "Auditor"
    auditor.save()
    with transaction.atomic():
        event = EVENTS[AuditAction.ACTION_DECIDED].event(tool="crm.read")
        audit_record(event, workspace=workspace, actor=Actor.for_user(auditor))
    html = admin_client_for(auditor).get(LIST).content.decode()
    assert re.search(rf'invoice-bot<div class="warden-quiet warden-id">key:{key.pk}</div>', html)
    assert f'Ada Auditor<div class="warden-quiet warden-id">user:{auditor.email}</div>' in html


def test_a_key_of_another_workspace_is_not_named(
    workspace, other_workspace, make_key, role_users, admin_client_for
):
    """An entry naming a foreign key id (forged or moved) shows the bare id."""
    foreign, _ = make_key(other_workspace, name="foreign-secret-name")
    _decided(workspace, foreign)
    html = admin_client_for(role_users[Role.AUDITOR]).get(LIST).content.decode()
    assert "foreign-secret-name" not in html
    assert f"key:{foreign.pk}" in html


def test_times_carry_their_time_zone(workspace, make_key, role_users, admin_client_for):
    key, _ = make_key(workspace)
    _decided(workspace, key)
    html = admin_client_for(role_users[Role.AUDITOR]).get(LIST).content.decode()
    assert re.search(r'class="field-when"><a href="[^"]+">\d{4}-\d\d-\d\d [\d:]{8} UTC</a>', html)


def test_actor_names_cost_the_same_for_one_or_many_keys(
    workspace, make_key, role_users, admin_client_for, django_assert_max_num_queries
):
    client = admin_client_for(role_users[Role.AUDITOR])
    first, _ = make_key(workspace)
    _decided(workspace, first)
    with django_assert_max_num_queries(50) as one:
        client.get(LIST)
    for n in range(12):
        key, _ = make_key(workspace)
        _decided(workspace, key, request_id=f"req-{n}")
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(LIST)
    assert response.content.decode().count("warden-id") >= 13


def test_hidden_characters_in_evidence_are_marked(
    workspace, make_key, role_users, admin_client_for
):
    key, _ = make_key(workspace)
    with transaction.atomic():
        event = EVENTS[AuditAction.ACTION_DECIDED].event(
            tool="crm\u202eread",
            rationale="ok\u200b<b>",
            input={"params": {"to": "ann@example.com\u2066"}},
        )
        entry = audit_record(event, workspace=workspace, actor=Actor.for_key(key))
    client = admin_client_for(role_users[Role.AUDITOR])
    listing = client.get(LIST).content.decode()
    detail = client.get(f"{LIST}{entry.pk}/change/").content.decode()
    for html in (listing, detail):
        assert "\u202e" not in html and "⟦U+202E⟧" in html
    for marker in ("⟦U+200B⟧</span>&lt;b&gt;", "⟦U+2066⟧"):
        assert marker in detail
    assert "\u200b" not in detail and "\u2066" not in detail


def test_an_approval_entry_says_what_was_approved_and_links_to_the_request(
    workspace, make_key, make_pending, role_users, admin_client_for
):
    """Issue 23: `confirmation.approved` showed only {"action_request": "f95e…",
    "approvals": 1}, an id that was not a link, under the title "<uuid>#132 …"."""
    from approvals import personal_data
    from approvals.confirmations import confirmation_approve

    key, _ = make_key(workspace)
    [confirmation] = make_pending(workspace, key)
    approver = role_users[Role.APPROVER]
    confirmation_approve(
        confirmation=confirmation, reason="checked", actor=Actor.for_user(approver)
    )
    entry = AuditEntry.objects.get(workspace=workspace, action="confirmation.approved")
    assert entry.tool == confirmation.action_request.tool_name
    # The summary quotes the params (personal data): the entry holds its digest; the
    # request it links to shows the summary while it is kept (approvals.personal_data).
    assert entry.input["summary_sha256"] == personal_data.digest(confirmation.summary)
    assert entry.input["params_digest"] == confirmation.params_digest
    assert str(entry) == f"#{entry.seq} confirmation.approved — {entry.tool}"

    detail = admin_client_for(role_users[Role.AUDITOR]).get(f"{LIST}{entry.pk}/change/")
    html = detail.content.decode()
    request_url = f"/admin/approvals/actionrequest/{confirmation.action_request_id}/change/"
    assert f'<a href="{request_url}">{confirmation.action_request_id}</a>' in html
    assert f"<title>#{entry.seq} confirmation.approved — {entry.tool}" in html
    assert str(workspace.pk) + "#" not in html
