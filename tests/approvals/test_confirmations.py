"""Confirmation tokens and human approval, end to end through the API."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.confirmations import (
    confirmation_approve,
    confirmation_deny,
    confirmations_expire_due,
)
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest
from approvals.selectors import confirmation_get, pending_confirmations
from approvals.signals import confirmation_requested
from audit.models import AuditEntry
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Role

PARAMS = {"deal": 7, "stage": "won"}


def code(response):
    return response.json()["error"]["code"]


@pytest.fixture
def pending(live_workspace, agent, make_tool, ask):
    """(client, first answer body, ConfirmationRequest) for an always-confirm write tool."""
    _, client = agent
    make_tool(
        live_workspace,
        "crm.update_stage",
        level="write",
        confirmation="always",
        summary_template="Move deal {params.deal} to {params.stage}",
    )
    body = ask(client, "crm.update_stage", PARAMS).json()
    return client, body, ConfirmationRequest.objects.get(action_request_id=body["id"])


def recall(ask, client, body, params=PARAMS, tool="crm.update_stage"):
    return ask(client, tool, params, confirmed=True, confirmation_token=body["confirmation_token"])


def test_first_answer_has_the_contract_fields(pending):
    _, body, confirmation = pending
    assert set(body) == {
        "id",
        "decision",
        "requires_confirmation",
        "confirmation_token",
        "summary",
        "irreversible",
        "expires_at",
    }
    assert body["summary"] == "Move deal 7 to won"
    stored = str(list(ConfirmationRequest.objects.values())) + str(
        list(ActionRequest.objects.values())
    )
    assert body["confirmation_token"] not in stored  # only its digest is kept
    assert confirmation.expires_at - confirmation.created_at == timedelta(hours=24)


def test_pending_before_approval(pending, ask):
    client, body, _ = pending
    response = recall(ask, client, body)
    assert (response.status_code, code(response)) == (409, "confirmation_pending")


def test_allowed_exactly_once_after_approval(live_workspace, pending, approver, approve, ask):
    client, body, confirmation = pending
    assert approve(approver, live_workspace, confirmation.pk).status_code == 200
    first = recall(ask, client, body)
    assert first.status_code == 200
    assert first.json() == {"id": body["id"], "decision": "allowed", "dry_run": False}
    second = recall(ask, client, body)
    assert (second.status_code, code(second)) == (409, "confirmation_used")
    assert AuditEntry.objects.filter(action="confirmation.used").count() == 1


def test_an_approver_may_use_the_action_id_the_agent_was_answered_with(
    live_workspace, other_workspace, pending, approver, approve, make_member, ask
):
    """The README's walk hands the approver the agent's `id`: that approved nothing
    (404) because the endpoint took only the approval's own id."""
    client, body, confirmation = pending
    outsider = make_member(other_workspace, Role.OWNER)
    assert approve(outsider, other_workspace, body["id"]).status_code == 404
    response = approve(approver, live_workspace, body["id"])
    assert response.status_code == 200, response.json()
    assert response.json()["id"] == str(confirmation.pk)
    assert recall(ask, client, body).status_code == 200


def test_denied(live_workspace, pending, approver, approve, ask):
    client, body, confirmation = pending
    response = approve(approver, live_workspace, confirmation.pk, verdict="deny", reason="no")
    assert response.status_code == 200 and response.json()["status"] == "denied"
    answer = recall(ask, client, body)
    assert (answer.status_code, code(answer)) == (403, "confirmation_denied")
    assert ActionRequest.objects.get(pk=body["id"]).status == "denied"


def test_expired_token(live_workspace, pending, approver, approve, ask):
    client, body, confirmation = pending
    approve(approver, live_workspace, confirmation.pk)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        answer = recall(ask, client, body)
    assert (answer.status_code, code(answer)) == (410, "confirmation_expired")
    confirmation.refresh_from_db()
    assert confirmation.status == "expired"
    assert ActionRequest.objects.get(pk=body["id"]).status == "expired"


def test_expired_cannot_be_approved(live_workspace, pending, approver, approve):
    _, _, confirmation = pending
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        response = approve(approver, live_workspace, confirmation.pk)
    assert (response.status_code, code(response)) == (410, "confirmation_expired")


def test_tampered_params_are_a_mismatch(live_workspace, pending, approver, approve, ask):
    client, body, confirmation = pending
    approve(approver, live_workspace, confirmation.pk)
    answer = recall(ask, client, body, params={"deal": 8, "stage": "won"})
    assert (answer.status_code, code(answer)) == (403, "confirmation_mismatch")
    assert recall(ask, client, body).status_code == 200  # the real one still works


def test_other_tool_is_a_mismatch(live_workspace, pending, approver, approve, make_tool, ask):
    client, body, confirmation = pending
    make_tool(live_workspace, "crm.other", level="write", confirmation="always")
    approve(approver, live_workspace, confirmation.pk)
    answer = recall(ask, client, body, tool="crm.other")
    assert code(answer) == "confirmation_mismatch"


def test_unknown_token_is_a_mismatch(pending, ask):
    client, _, _ = pending
    answer = recall(ask, client, {"confirmation_token": "ct_" + "A" * 43})
    assert (answer.status_code, code(answer)) == (403, "confirmation_mismatch")


def test_token_of_another_key_behaves_as_invalid(
    live_workspace, pending, approver, approve, make_key, key_client, ask
):
    _, body, confirmation = pending
    approve(approver, live_workspace, confirmation.pk)
    _, other = make_key(live_workspace, scopes=["actions:write"])
    answer = recall(ask, key_client(other), body)
    unknown = recall(ask, key_client(other), {"confirmation_token": "ct_" + "B" * 43})
    assert (answer.status_code, answer.json()) == (unknown.status_code, unknown.json())


def test_token_from_another_workspace_behaves_as_invalid(
    pending, live_workspace, approver, approve, make_workspace, make_key, key_client, make_tool, ask
):
    _, body, confirmation = pending
    approve(approver, live_workspace, confirmation.pk)
    elsewhere = make_workspace(writes_enabled=True, mode="live")
    make_tool(elsewhere, "crm.update_stage", level="write", confirmation="always")
    _, plaintext = make_key(elsewhere, scopes=["actions:write"])
    answer = recall(ask, key_client(plaintext), body)
    assert (answer.status_code, code(answer)) == (403, "confirmation_mismatch")
    assert ConfirmationRequest.objects.get(pk=confirmation.pk).status == "approved"


def test_regate_on_recall_denies_if_scope_or_tool_changed(
    live_workspace, pending, approver, approve, ask
):
    from approvals.catalog import tool_update
    from approvals.models import Tool
    from tests.approvals.conftest import SYSTEM

    client, body, confirmation = pending
    approve(approver, live_workspace, confirmation.pk)
    tool_update(
        reason="test set-up",
        tool=Tool.objects.get(name="crm.update_stage"),
        actor=SYSTEM,
        changes={"enabled": False},
    )
    answer = recall(ask, client, body)
    assert code(answer) == "tool_not_allowed"


# --- approving ------------------------------------------------------------------------


def test_machine_keys_get_humans_only(live_workspace, pending, agent):
    _, client = agent
    _, _, confirmation = pending
    response = client.post(
        f"/api/v1/approvals/{confirmation.pk}/approve", {"reason": "ok"}, format="json"
    )
    assert (response.status_code, code(response)) == (403, "humans_only")
    assert code(client.get("/api/v1/approvals")) == "humans_only"


def test_key_owner_cannot_approve(live_workspace, pending, agent, approve):
    key, _ = agent
    _, _, confirmation = pending
    response = approve(key.owner, live_workspace, confirmation.pk)
    assert (response.status_code, code(response)) == (403, "four_eyes")


def test_member_without_approve_permission_is_refused(
    live_workspace, pending, make_member, approve
):
    auditor = make_member(live_workspace, Role.AUDITOR)
    _, _, confirmation = pending
    response = approve(auditor, live_workspace, confirmation.pk)
    assert (response.status_code, code(response)) == (403, "forbidden_by_scope")


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reason_is_required(live_workspace, pending, approver, user_client, reason):
    _, _, confirmation = pending
    body = {} if reason is None else {"reason": reason}
    response = user_client(approver, live_workspace).post(
        f"/api/v1/approvals/{confirmation.pk}/approve", body, format="json"
    )
    assert (response.status_code, code(response)) == (400, "validation_error")
    assert "reason" in response.json()["error"]["detail"]  # names the field to fix


def test_a_reason_of_exactly_the_maximum_length_is_accepted(
    live_workspace, pending, approver, approve
):
    """The limit is 2000 characters inclusive (confirmations.MAX_REASON_CHARS)."""
    _, _, confirmation = pending
    response = approve(approver, live_workspace, confirmation.pk, reason="x" * 2000)
    assert response.status_code == 200, response.json()
    assert ConfirmationRequest.objects.get(pk=confirmation.pk).status == "approved"


def test_already_decided(live_workspace, pending, approver, make_member, approve):
    _, _, confirmation = pending
    approve(approver, live_workspace, confirmation.pk)
    other = make_member(live_workspace, Role.APPROVER)
    response = approve(other, live_workspace, confirmation.pk, verdict="deny")
    assert (response.status_code, code(response)) == (409, "already_decided")


def test_approval_of_another_workspace_is_not_found(pending, make_workspace, make_member, approve):
    _, _, confirmation = pending
    elsewhere = make_workspace()
    outsider = make_member(elsewhere, Role.APPROVER)
    assert approve(outsider, elsewhere, confirmation.pk).status_code == 404


def test_one_approval_record_per_verdict(live_workspace, pending, approver, approve):
    _, _, confirmation = pending
    approve(approver, live_workspace, confirmation.pk, reason="checked the deal")
    record = ApprovalRecord.objects.get()
    assert (record.verdict, record.reason, record.threshold) == ("approve", "checked the deal", 1)
    assert record.approver == f"user:{approver.email}"
    entry = AuditEntry.objects.get(action="confirmation.approved")
    assert entry.rationale == "checked the deal"


def test_two_approvals_for_irreversible(
    make_workspace, make_key, key_client, make_tool, make_member, approve, ask
):
    workspace = make_workspace(
        writes_enabled=True, mode="live", require_two_approvals_for_irreversible=True
    )
    _, plaintext = make_key(workspace, scopes=["actions:write"])
    client = key_client(plaintext)
    make_tool(workspace, "billing.close", level="write", confirmation="always", irreversible=True)
    body = ask(client, "billing.close").json()
    assert body["irreversible"] is True
    confirmation = ConfirmationRequest.objects.get()
    assert confirmation.approvals_required == 2
    first, second = make_member(workspace, Role.APPROVER), make_member(workspace, Role.APPROVER)
    assert approve(first, workspace, confirmation.pk).json()["status"] == "pending"
    assert (
        code(recall(ask, client, body, params={}, tool="billing.close")) == "confirmation_pending"
    )
    again = approve(first, workspace, confirmation.pk)
    assert (again.status_code, code(again)) == (403, "four_eyes")
    assert approve(second, workspace, confirmation.pk).json()["status"] == "approved"
    assert recall(ask, client, body, params={}, tool="billing.close").status_code == 200


def test_list_pending_oldest_first_scoped_to_workspace(
    live_workspace, agent, approver, make_tool, ask, user_client, make_workspace
):
    _, client = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    ids = [ask(client, "crm.update_stage", {"n": n}).json()["id"] for n in range(3)]
    response = user_client(approver, live_workspace).get("/api/v1/approvals")
    assert response.status_code == 200
    listed = [row["action_request"] for row in response.json()["results"]]
    assert listed == ids
    assert response.json()["results"][0]["params"] == {"n": 0}


# --- services contract -----------------------------------------------------------------


def test_services_refuse_machine_actors(pending, agent):
    key, _ = agent
    _, _, confirmation = pending
    with pytest.raises(WardenError) as caught:
        confirmation_approve(confirmation=confirmation, reason="x", actor=Actor.for_key(key))
    assert caught.value.code == "humans_only"


def test_service_deny_records_and_decides(pending, approver):
    _, _, confirmation = pending
    result = confirmation_deny(
        confirmation=confirmation, reason="too risky", actor=Actor.for_user(approver)
    )
    assert result.status == "denied"
    assert AuditEntry.objects.filter(action="confirmation.denied").count() == 1


def test_expire_due_marks_expired_and_audits(pending):
    _, body, confirmation = pending
    assert confirmations_expire_due() == 0
    assert confirmations_expire_due(now=timezone.now() + timedelta(days=2)) == 1
    confirmation.refresh_from_db()
    assert confirmation.status == "expired"
    assert ActionRequest.objects.get(pk=body["id"]).status == "expired"
    assert AuditEntry.objects.filter(action="confirmation.expired").count() == 1


def test_selectors_are_workspace_scoped(pending, live_workspace, other_workspace):
    _, _, confirmation = pending
    assert list(pending_confirmations(workspace=live_workspace)) == [confirmation]
    assert list(pending_confirmations(workspace=other_workspace)) == []
    assert confirmation_get(workspace=other_workspace, pk=confirmation.pk) is None
    assert confirmation_get(workspace=live_workspace, pk=confirmation.pk) == confirmation


def test_signal_sent_on_commit(
    live_workspace, agent, make_tool, ask, django_capture_on_commit_callbacks
):
    _, client = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    received = []

    def receiver(sender, confirmation_id, **kwargs):
        received.append(confirmation_id)

    confirmation_requested.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ask(client, "crm.update_stage")
    finally:
        confirmation_requested.disconnect(receiver)
    assert received == [ConfirmationRequest.objects.get().pk]


def test_confirmed_dry_run_answer_reflects_current_mode(
    make_workspace, make_key, key_client, make_tool, make_member, approve, ask
):
    workspace = make_workspace(writes_enabled=True)
    _, plaintext = make_key(workspace, scopes=["actions:write"])
    client = key_client(plaintext)
    make_tool(workspace, "crm.update_stage", level="write", confirmation="always")
    body = ask(client, "crm.update_stage").json()
    approve(make_member(workspace, Role.APPROVER), workspace, ConfirmationRequest.objects.get().pk)
    assert recall(ask, client, body, params={}).json()["dry_run"] is True


json_leaf = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
tampered_params = st.dictionaries(
    st.sampled_from(["deal", "stage", "extra"]), json_leaf, max_size=3
).filter(lambda p: p != PARAMS)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(params=tampered_params)
def test_property_tampered_params_never_allowed(
    live_workspace, pending, approver, approve, ask, params
):
    client, body, confirmation = pending
    if confirmation.status == "pending":
        approve(approver, live_workspace, confirmation.pk)
        confirmation.refresh_from_db()
    answer = recall(ask, client, body, params=params)
    # Parameters that are not valid input at all (a NUL, say) are refused before the
    # token is compared; either way the tampered call is never allowed.
    assert (answer.status_code, code(answer)) in {
        (403, "confirmation_mismatch"),
        (400, "validation_error"),
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(token=st.text(min_size=1, max_size=120).filter(lambda t: t.strip()))
def test_property_forged_tokens_never_allowed(
    live_workspace, pending, approver, approve, ask, token
):
    client, _, confirmation = pending
    if confirmation.status == "pending":
        approve(approver, live_workspace, confirmation.pk)
        confirmation.refresh_from_db()
    answer = recall(ask, client, {"confirmation_token": token})
    assert answer.status_code != 200
    assert code(answer) in {"confirmation_mismatch", "validation_error"}


def test_reason_with_nul_is_refused(live_workspace, pending, approver, approve):
    _, _, confirmation = pending
    response = approve(approver, live_workspace, confirmation.pk, reason="ok\u0000")
    assert (response.status_code, code(response)) == (400, "validation_error")
