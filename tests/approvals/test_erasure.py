"""Erasable personal data (issue 27 item 2): agent requests' values are sealed under a
per-request data key, the chain holds digests, and erasing destroys the key while the
chain still verifies; screens, the API and replay say "erased" afterwards."""

import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, transaction

from approvals import personal_data
from approvals.models import ActionRequest, ConfirmationRequest
from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from audit.verify import verify_chain
from oversight.replay import render_side_by_side, replay_action
from tenants.models import Role
from tests.approvals.conftest import SYSTEM
from tests.entry_points import entry_point

VALUE = "alice.erasure@example.test"
PHONE = "+44 20 7946 0001"


def tables_holding(value: str) -> list[str]:
    """Every table.column whose text (JSON included) contains `value`: PostgreSQL's
    information schema, or SQLite's table list, so no table is forgotten."""
    found = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type IN "
                "('text', 'character varying', 'json', 'jsonb', 'character')"
            )
            columns = cursor.fetchall()
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            columns = []
            for (table,) in cursor.fetchall():
                cursor.execute(f'PRAGMA table_info("{table}")')
                columns += [(table, row[1]) for row in cursor.fetchall()]
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS TEXT) LIKE %s',
                [f"%{value}%"],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


@pytest.fixture
def contact_tools(live_workspace, make_tool):
    make_tool(
        live_workspace,
        "crm.contact",
        level="write",
        confirmation="always",
        subject_param="email",
        summary_template="Write to {params.email}",
    )
    make_tool(live_workspace, "crm.lookup", subject_param="email")
    return live_workspace


@pytest.fixture
def subject_requests(contact_tools, agent, approver, ask, approve):
    """One denied request (with a summary quoting the value) and one allowed request
    whose output quoted it, both about the same data subject."""
    _, client = agent
    pending = ask(client, "crm.contact", {"email": VALUE, "body": "hello"}).json()
    confirmation = ConfirmationRequest.objects.get(action_request_id=pending["id"])
    assert approve(approver, contact_tools, confirmation.pk, "deny").status_code == 200
    allowed = ask(client, "crm.lookup", {"email": VALUE}).json()
    reported = client.post(
        f"/api/v1/actions/{allowed['id']}/result",
        {"status": "succeeded", "output": {"email": VALUE, "phone": PHONE}},
        format="json",
    )
    assert reported.status_code in (200, 201, 204), reported.content
    return pending["id"], allowed["id"]


def _owner_client(workspace, user_client):
    owner = workspace.memberships.get(role=Role.OWNER).user
    return user_client(owner, workspace)


def _erase(client, **body):
    return client.post("/api/v1/personal-data/erase", body, format="json")


def test_values_are_sealed_and_the_chain_holds_digests(subject_requests, agent):
    pending_id, allowed_id = subject_requests
    action = ActionRequest.objects.get(pk=allowed_id)
    assert action.params == {"email": VALUE}  # readable while the key exists
    assert action.plain_params == {} and VALUE not in action.sealed_params
    assert action.reported_output == {"email": VALUE, "phone": PHONE}
    assert action.subject_digest == personal_data.subject_digest(action.workspace_id, VALUE)
    confirmation = ConfirmationRequest.objects.get(action_request_id=pending_id)
    assert confirmation.summary == f"Write to {VALUE}" and confirmation.plain_summary == ""
    decided = AuditEntry.objects.get(action="action.decided", target_id=allowed_id)
    assert decided.input["params_sha256"] == action.params_digest
    assert not any(
        VALUE in str(entry.input) for entry in AuditEntry.objects.filter(workspace=action.workspace)
    )
    _, client = agent
    assert client.get(f"/api/v1/actions/{allowed_id}").json()["personal_data"] == "kept"


def test_erasing_a_subject_keeps_the_chain_and_leaves_no_plain_value(
    subject_requests, contact_tools, user_client
):
    """The proof: erase one data subject; audit_verify passes; replay says erased; no
    table holds the value any more (every text column searched)."""
    pending_id, allowed_id = subject_requests
    assert replay_action(allowed_id).params == "sealed copy"
    # The search does find plain text where there is some (the search itself works).
    requested_by = ActionRequest.objects.get(pk=allowed_id).requested_by
    assert "approvals_actionrequest.requested_by" in tables_holding(requested_by)

    response = _erase(
        _owner_client(contact_tools, user_client), subject=VALUE, reason="GDPR art. 17, ticket 12"
    )

    assert response.status_code == 200, response.content
    assert sorted(response.json()["action_requests"]) == sorted([pending_id, allowed_id])
    assert verify_chain(contact_tools).ok
    out = io.StringIO()
    call_command("audit_verify", contact_tools.slug, stdout=out)  # raises if broken
    report = replay_action(allowed_id)
    assert report.params == "erased" and "params: erased" in render_side_by_side(report)
    assert tables_holding(VALUE) == []
    assert tables_holding(PHONE) == []
    entry = AuditEntry.objects.get(action=AuditAction.PERSONAL_DATA_ERASED)
    assert entry.actor.startswith("user:") and entry.input["reason"] == "GDPR art. 17, ticket 12"
    assert entry.input["by"] == "subject" and VALUE not in str(entry.input)


def test_after_erasure_the_api_and_the_summary_say_erased(
    subject_requests, contact_tools, agent, user_client
):
    pending_id, allowed_id = subject_requests
    _erase(_owner_client(contact_tools, user_client), action_ids=[pending_id], reason="asked")
    _, client = agent
    detail = client.get(f"/api/v1/actions/{pending_id}").json()
    assert detail["personal_data"] == "erased"
    assert detail["confirmation"]["summary"] == personal_data.ERASED
    assert ActionRequest.objects.get(pk=pending_id).shown_params == personal_data.ERASED
    assert client.get(f"/api/v1/actions/{allowed_id}").json()["personal_data"] == "kept"


def test_a_machine_key_cannot_erase(subject_requests, agent):
    _, client = agent
    response = _erase(client, subject=VALUE, reason="cover my tracks")
    assert response.status_code in (401, 403)
    assert not ActionRequest.objects.filter(erased_at__isnull=False).exists()


def test_an_approver_without_the_compliance_permission_cannot_erase(
    subject_requests, contact_tools, approver, user_client
):
    response = _erase(user_client(approver, contact_tools), subject=VALUE, reason="x")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_by_scope"


def test_erasure_needs_a_reason_and_one_target(subject_requests, contact_tools, user_client):
    client = _owner_client(contact_tools, user_client)
    blank = _erase(client, subject=VALUE, reason=" ")
    assert blank.status_code == 400 and blank.json()["error"]["code"] == "validation_error"
    neither = _erase(client, reason="why")
    assert neither.status_code == 400


def test_another_workspaces_request_answers_like_a_missing_one(
    subject_requests, make_workspace, user_client
):
    other = make_workspace()
    _, allowed_id = subject_requests
    response = _erase(_owner_client(other, user_client), action_ids=[allowed_id], reason="x")
    assert response.status_code == 404
    assert not ActionRequest.objects.get(pk=allowed_id).is_erased


def test_a_request_still_waiting_for_a_human_is_not_erased(contact_tools, agent, ask, user_client):
    _, client = agent
    pending = ask(client, "crm.contact", {"email": VALUE}).json()
    response = _erase(
        _owner_client(contact_tools, user_client), action_ids=[pending["id"]], reason="x"
    )
    assert response.status_code == 409
    assert ConfirmationRequest.objects.get().summary == f"Write to {VALUE}"


@entry_point("command:erase")
def test_erase_command_by_request_is_audited(contact_tools, agent, ask):
    _, client = agent
    allowed = ask(client, "crm.lookup", {"email": VALUE}).json()
    out = io.StringIO()
    call_command(
        "erase",
        contact_tools.slug,
        request=[allowed["id"]],
        reason="data subject request 7",
        stdout=out,
    )
    assert "erased 1 request(s)" in out.getvalue()
    action = ActionRequest.objects.get(pk=allowed["id"])
    assert action.is_erased and action.params == {} and action.data_key == ""
    entry = AuditEntry.objects.get(action=AuditAction.PERSONAL_DATA_ERASED)
    assert entry.actor == "system:erase" and entry.input["action_requests"] == [allowed["id"]]
    assert verify_chain(contact_tools).ok


@entry_point("command:erase")
def test_sealing_rows_from_before_keeps_the_chain_verifiable(contact_tools, agent, ask):
    """Rows written before sealing (plain params on the row, params quoted in the
    chain) are moved into the sealed store; the old entries stay as they are and the
    chain verifies before and after."""
    _, client = agent
    allowed = ask(client, "crm.lookup", {"email": VALUE}).json()
    # As a request was stored before this change: plain params, no data key ...
    ActionRequest.objects.filter(pk=allowed["id"]).update(
        plain_params={"email": VALUE}, sealed_params="", data_key="", subject_digest=""
    )
    # ... and an entry quoting them, as action.decided did.
    with transaction.atomic():
        audit_record(
            EVENTS[AuditAction.ACTION_DECIDED].event(
                target_id=allowed["id"],
                tool="crm.lookup",
                input={"params": {"email": VALUE}, "reason": "", "dry_run": False},
                decision="allowed",
            ),
            workspace=contact_tools,
            actor=SYSTEM,
        )
    assert verify_chain(contact_tools).ok
    out = io.StringIO()
    call_command("erase", contact_tools.slug, seal_existing=True, stdout=out)
    assert "sealed 1 request(s)" in out.getvalue()
    assert "1 audit entr(ies) from before still quote values" in out.getvalue()
    action = ActionRequest.objects.get(pk=allowed["id"])
    assert action.plain_params == {} and action.params == {"email": VALUE}
    assert verify_chain(contact_tools).ok
    sealed = AuditEntry.objects.get(action=AuditAction.PERSONAL_DATA_SEALED)
    assert sealed.input["action_requests"] == [allowed["id"]]
    call_command("erase", contact_tools.slug, seal_existing=True, stdout=io.StringIO())
    assert AuditEntry.objects.filter(action=AuditAction.PERSONAL_DATA_SEALED).count() == 1


def test_every_model_with_params_is_covered():
    """The places params live, checked by name so a new copy is noticed: each is sealed,
    digest-only, or erased by a registered eraser (docs/compliance/erasure.md)."""
    from approvals.erasure import ERASERS

    assert {"executions", "notifications"} <= set(ERASERS)
    assert apps.get_model("approvals", "ActionRequest")._meta.get_field("sealed_params")
    assert apps.get_model("gateway", "Execution")._meta.get_field("sealed_output")


def test_the_review_page_and_the_request_page_show_values_then_say_erased(
    subject_requests, contact_tools, user_client
):
    from django.test import Client

    pending_id, _ = subject_requests
    owner = contact_tools.memberships.get(role=Role.OWNER).user
    browser = Client()
    browser.force_login(owner)
    confirmation = ConfirmationRequest.objects.get(action_request_id=pending_id)
    review = f"/admin/approvals/confirmationrequest/{confirmation.pk}/"
    request_page = f"/admin/approvals/actionrequest/{pending_id}/change/"
    before = browser.get(review)
    assert before.status_code == 200 and VALUE in before.content.decode()
    assert VALUE in browser.get(request_page).content.decode()

    _erase(_owner_client(contact_tools, user_client), action_ids=[pending_id], reason="DSR")

    after = browser.get(review).content.decode()
    assert VALUE not in after and personal_data.ERASED in after
    page = browser.get(request_page).content.decode()
    assert VALUE not in page and personal_data.ERASED in page


def test_the_copies_notifications_quote_are_overwritten(
    contact_tools, agent, approver, ask, approve, user_client
):
    from notifications.erasure import ERASED_BODY
    from notifications.models import EmailDelivery, NotificationEvent
    from notifications.services import notify_confirmation_requested

    _, client = agent
    pending = ask(client, "crm.contact", {"email": VALUE}, reason="write to the customer").json()
    confirmation = ConfirmationRequest.objects.get(action_request_id=pending["id"])
    event = notify_confirmation_requested(confirmation_id=confirmation.pk)
    assert VALUE in event.payload["data"]["summary"]
    assert EmailDelivery.objects.filter(event=event).exists()
    assert approve(approver, contact_tools, confirmation.pk, "deny").status_code == 200

    response = _erase(_owner_client(contact_tools, user_client), subject=VALUE, reason="DSR")

    assert response.json()["copies"]["notifications"] >= 2
    event = NotificationEvent.objects.get(pk=event.pk)
    assert event.payload["data"]["summary"] == personal_data.ERASED
    assert event.payload["data"]["reason"] == personal_data.ERASED
    assert {e.body_text for e in EmailDelivery.objects.filter(event=event)} == {ERASED_BODY}
    assert tables_holding(VALUE) == []
