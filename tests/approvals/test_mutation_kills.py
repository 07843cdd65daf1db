"""Tests written to kill surviving mutants (docs/mutation.md): each one pins a rule of
the guard or the token binding that no other test held. They go through the public
paths: a model save, bulk update or delete (the guard's own interface, which every
screen, command and task reaches) and POST /api/v1/actions."""

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from approvals.guard import Grant, granted
from approvals.models import ConfirmationRequest
from common.errors import WardenError
from tenants.models import Membership, Role, Workspace

pytestmark = pytest.mark.django_db

LOWER_FLOOR = "warden.workspace.lower_floor"


def refused(call):
    with pytest.raises(WardenError) as raised:
        call()
    assert raised.value.code == "approval_required"
    return raised.value


# --- the guard ------------------------------------------------------------------------


def test_a_loosening_save_without_a_grant_is_refused(workspace):
    workspace.sensitivity_floor = False
    error = refused(workspace.save)
    assert error.detail == {"operations": [LOWER_FLOOR]}
    assert Workspace.objects.get(pk=workspace.pk).sensitivity_floor is True


def test_a_grant_for_the_row_and_operation_lets_the_change_through(workspace):
    """The control for the two tests below: the door's exact grant does pass."""
    workspace.sensitivity_floor = False
    with granted(Grant("workspace", str(workspace.pk), frozenset({LOWER_FLOOR}))):
        workspace.save()
    assert Workspace.objects.get(pk=workspace.pk).sensitivity_floor is False


def test_a_grant_for_one_row_does_not_cover_another(workspace, other_workspace):
    workspace.sensitivity_floor = False
    with granted(Grant("workspace", str(other_workspace.pk), frozenset({LOWER_FLOOR}))):
        refused(workspace.save)
    assert Workspace.objects.get(pk=workspace.pk).sensitivity_floor is True


def test_a_grant_for_one_operation_does_not_cover_another(workspace):
    workspace.sensitivity_floor = False
    grant = Grant("workspace", str(workspace.pk), frozenset({"warden.workspace.go_live"}))
    with granted(grant):
        refused(workspace.save)
    assert Workspace.objects.get(pk=workspace.pk).sensitivity_floor is True


def test_a_loosening_bulk_update_is_refused(workspace):
    rows = Workspace.objects.filter(pk=workspace.pk)
    refused(lambda: rows.update(sensitivity_floor=False))
    assert Workspace.objects.get(pk=workspace.pk).sensitivity_floor is True


def test_a_field_outside_the_models_own_snapshot_is_still_compared(workspace, make_tool):
    """The reviewed upstream definition (`output_schema`, set at import) is not in
    Tool.snapshot(); the guard compares every classified column of the row too."""
    from approvals.models import Tool

    tool = make_tool(workspace, "crm.lookup")
    tool.output_schema = {"type": "object", "properties": {"ssn": {"type": "string"}}}
    error = refused(tool.save)
    assert error.detail["operations"]
    assert Tool.objects.get(pk=tool.pk).output_schema == {}


def test_the_door_grant_for_a_row_lets_its_bulk_update_through(workspace):
    """The control for the bulk refusal: QuerySet.update is checked row by row against
    that row's own grant (guard._on_update passes the row's pk, not None)."""
    rows = Workspace.objects.filter(pk=workspace.pk)
    with granted(Grant("workspace", str(workspace.pk), frozenset({LOWER_FLOOR}))):
        assert rows.update(sensitivity_floor=False) == 1
    assert Workspace.objects.get(pk=workspace.pk).sensitivity_floor is False


def test_deleting_a_protected_row_without_a_grant_is_refused(workspace):
    """The owner is the only member who may approve: removing them is governed."""
    owner = Membership.objects.get(workspace=workspace)

    def remove():
        with transaction.atomic():  # Django deletes without a savepoint of its own
            owner.delete()

    error = refused(remove)
    assert error.detail == {"operations": ["warden.member.remove_last_approver"]}
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_the_door_grant_for_a_row_lets_its_governed_delete_through(workspace):
    """The control for the refusal above: the guard checks a delete against the row's
    own grant, so the door can apply an approved removal."""
    owner = Membership.objects.get(workspace=workspace)
    grant = Grant("membership", str(owner.pk), frozenset({"warden.member.remove_last_approver"}))
    with granted(grant), transaction.atomic():
        owner.delete()
    assert not Membership.objects.filter(pk=owner.pk).exists()


# --- token binding ---------------------------------------------------------------------


def test_a_confirmation_token_depends_on_the_server_pepper(
    live_workspace, agent, make_tool, make_member, approve, ask
):
    """The confirmation id is shown to approvers and in the approvals API; a token
    anyone could derive from it alone (no server secret) must not be accepted."""
    _, client = agent
    make_tool(live_workspace, "crm.update", level="write", confirmation="always")
    first = ask(client, "crm.update", {"id": 1}).json()
    confirmation = ConfirmationRequest.objects.get()
    approve(make_member(live_workspace, Role.APPROVER), live_workspace, confirmation.pk)
    mac = hmac.new(
        b"", f"warden-confirmation-token:{confirmation.pk}".encode(), hashlib.sha256
    ).digest()
    forged = "ct_" + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
    assert forged != first["confirmation_token"]
    answer = ask(client, "crm.update", {"id": 1}, confirmed=True, confirmation_token=forged)
    assert answer.status_code == 403, answer.json()
    assert answer.json()["error"]["code"] == "confirmation_mismatch"
    real = ask(
        client,
        "crm.update",
        {"id": 1},
        confirmed=True,
        confirmation_token=first["confirmation_token"],
    )
    assert real.status_code == 200


# --- four eyes over the key's custody as it is now ------------------------------------


def test_who_rotated_the_key_after_the_ask_cannot_approve_its_request(
    live_workspace, agent, make_tool, make_member, user_client, approve, ask
):
    """Custody is read at decision time too, not only as recorded when the agent asked:
    an admin who rotated the key since (and so could hold its secret) is answerable."""
    key, client = agent
    make_tool(live_workspace, "crm.update", level="write", confirmation="always")
    assert ask(client, "crm.update", {"id": 1}).status_code == 202
    confirmation = ConfirmationRequest.objects.get()
    rotator = make_member(live_workspace, Role.ADMIN)
    rotated = user_client(rotator, live_workspace).post(
        f"/api/v1/keys/{key.pk}/rotate", {}, format="json"
    )
    assert rotated.status_code in (200, 201), rotated.json()
    answer = approve(rotator, live_workspace, confirmation.pk)
    assert answer.status_code == 403, answer.json()
    assert answer.json()["error"]["code"] == "four_eyes"
    other = make_member(live_workspace, Role.APPROVER)
    assert approve(other, live_workspace, confirmation.pk).status_code == 200


# --- what GET /tools tells a key (gate.tool_confirmation) --------------------------------


def _tools_as(client) -> dict:
    response = client.get("/api/v1/tools")
    assert response.status_code == 200, response.json()
    return {
        row["name"]: (row["confirmation"], row["confirmation_reason"])
        for row in response.json()["results"]
    }


EVERY_ACTION = ["actions:read", "actions:write", "actions:external"]


def test_the_tools_list_names_each_tools_effective_rule_and_why(
    live_workspace, make_key, key_client, make_tool
):
    """The one answer for every screen: the tool's own rule, then the outbound switch,
    then the floor; an unattended key sees the rule it is decided under (it skips the
    tool's own rule, never the outbound gate or the floor)."""
    make_tool(live_workspace, "crm.never")
    make_tool(live_workspace, "crm.always", confirmation="always")
    make_tool(
        live_workspace, "crm.cond", confirmation="conditional", condition="params.amount > 10"
    )
    make_tool(live_workspace, "crm.mail", level="external")
    make_tool(live_workspace, "crm.send", level="external", confirmation="always")
    make_tool(live_workspace, "crm.vault", data_classes=["secrets"])
    make_tool(live_workspace, "crm.payroll", level="write", data_classes=["pii", "financial"])
    make_tool(live_workspace, "crm.wipe", level="write", irreversible=True, confirmation="always")
    attended = key_client(make_key(live_workspace, scopes=EVERY_ACTION)[1])
    _, secret = make_key(
        live_workspace,
        scopes=EVERY_ACTION,
        unattended_mode=True,
        expires_at=timezone.now() + timedelta(days=30),
    )
    unattended = key_client(secret)
    needs_none = ("never", "the tool needs no confirmation")
    always = ("always", "the tool always needs confirmation")
    outbound = ("always", "external effects need a human (unattended outbound is off)")
    secrets = ("always", "sensitivity floor: reading secrets reaches a human")
    payroll = ("always", "sensitivity floor: write touching financial, pii reaches a human")
    skipped = ("never", "unattended key skips the tool's confirmation rule")
    assert _tools_as(attended) == {
        "crm.never": needs_none,
        "crm.always": always,
        "crm.cond": ("conditional", "when the tool's condition holds: params.amount > 10"),
        "crm.mail": outbound,
        "crm.send": always,
        "crm.vault": secrets,
        "crm.payroll": payroll,
        "crm.wipe": always,
    }
    assert _tools_as(unattended) == {
        "crm.never": needs_none,
        "crm.always": skipped,
        "crm.cond": skipped,
        "crm.mail": outbound,
        "crm.send": outbound,
        "crm.vault": secrets,
        "crm.payroll": payroll,
        "crm.wipe": ("always", "sensitivity floor: irreversible actions always reach a human"),
    }
