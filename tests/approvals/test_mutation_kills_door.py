"""Tests written to kill surviving mutants of approvals/door.py (docs/mutation.md).

The door applies what loosens nothing, files every loosening for a human, and lets only
an operator at a shell apply one directly (break-glass), recorded as an override. Each
test goes through `governed_change` with a proposal from approvals.proposals, the
builders every front door uses.
"""

from datetime import UTC, datetime

import pytest

from approvals import proposals
from approvals.door import Proposal, governed_change, parse_when
from approvals.governance import BY_NAME, Target
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest, PolicyVersion
from audit.models import AuditEntry, ExceptionRecord
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Membership, Role, Workspace

pytestmark = pytest.mark.django_db

LOWER_FLOOR = "warden.workspace.lower_floor"
OPS = Actor.system("ops")


def lower_floor(workspace, actor, **kwargs):
    proposal = proposals.workspace_update(workspace, {"sensitivity_floor": False})
    return governed_change(workspace=workspace, actor=actor, proposal=proposal, **kwargs)


def floor(workspace) -> bool:
    return Workspace.objects.get(pk=workspace.pk).sensitivity_floor


def refused(call, code):
    with pytest.raises(WardenError) as raised:
        call()
    assert raised.value.code == code
    return raised.value


@pytest.fixture
def owner(workspace):
    return Membership.objects.get(workspace=workspace, role=Role.OWNER).user


# --- break-glass ----------------------------------------------------------------------


def test_break_glass_applies_and_records_the_override(workspace):
    result = lower_floor(workspace, OPS, break_glass="  incident 7  ")
    assert result.applied
    assert result.operations == (LOWER_FLOOR,)
    assert floor(workspace) is False

    version = PolicyVersion.objects.filter(workspace=workspace).latest("number")
    assert version.source == PolicyVersion.Source.BREAK_GLASS
    assert version.author == "system:ops"
    assert version.reason == "incident 7"  # no reason given: the break-glass why
    assert version.operations == [LOWER_FLOOR]

    record = ExceptionRecord.objects.get(workspace=workspace, kind="override")
    assert record.severity == ExceptionRecord.Severity.HIGH
    assert record.what == f"Break-glass: {BY_NAME[LOWER_FLOOR].title}"
    assert record.why == "incident 7"
    assert record.evidence == {
        "target": "workspace",
        "target_id": str(workspace.pk),
        "label": f"workspace {workspace.slug}",
        "operations": [LOWER_FLOOR],
        "changes": {"sensitivity_floor": {"before": True, "after": False}},
    }
    assert record.mitigation == ("Review the change; file it through the approval queue next time.")
    assert record.subject == "system:ops"
    assert AuditEntry.objects.filter(workspace=workspace, action="governance.break_glass").exists()

    assert AuditEntry.objects.filter(
        workspace=workspace, rationale__startswith="break-glass: incident 7"
    ).exists()


def test_break_glass_records_the_reason_given_over_the_why(workspace):
    lower_floor(workspace, OPS, break_glass="incident 8", reason="the floor blocks recovery")
    version = PolicyVersion.objects.filter(workspace=workspace).latest("number")
    assert version.reason == "the floor blocks recovery"


def test_break_glass_is_refused_to_a_person_and_to_a_key(workspace, owner, make_key):
    error = refused(
        lambda: lower_floor(workspace, Actor.for_user(owner), break_glass="x"), "humans_only"
    )
    assert str(error) == "Break-glass is for operators at a shell only."
    key, _ = make_key(workspace, scopes=("workspace:admin",))
    refused(lambda: lower_floor(workspace, Actor.for_key(key), break_glass="x"), "humans_only")
    assert floor(workspace) is True
    assert not ExceptionRecord.objects.filter(kind="override").exists()


def test_break_glass_needs_a_reason(workspace):
    error = refused(
        lambda: lower_floor(workspace, OPS, break_glass="   ", reason="x"), "validation_error"
    )
    assert str(error) == "Break-glass needs a reason."
    assert floor(workspace) is True


def test_a_failing_break_glass_change_leaves_no_override_or_version(workspace, monkeypatch):
    """The change, its override record and the policy version commit together."""
    import approvals.door as door

    def boom(**kwargs):
        raise WardenError("conflict", "the applier failed")

    before = PolicyVersion.objects.filter(workspace=workspace).count()
    monkeypatch.setitem(door._APPLIERS, ("workspace", "update"), boom)
    refused(lambda: lower_floor(workspace, OPS, break_glass="x"), "conflict")
    assert PolicyVersion.objects.filter(workspace=workspace).count() == before
    assert not ExceptionRecord.objects.filter(kind="override").exists()


# --- filing a loosening ----------------------------------------------------------------


def test_a_system_actor_without_break_glass_cannot_loosen(workspace):
    error = refused(lambda: lower_floor(workspace, OPS, reason="x"), "approval_required")
    assert error.detail == {"operations": [LOWER_FLOOR]}
    assert floor(workspace) is True


def test_a_loosening_is_filed_with_its_summary_and_custody(workspace, owner):
    result = lower_floor(workspace, Actor.for_user(owner), reason="testing")
    assert not result.applied
    assert result.operations == (LOWER_FLOOR,)
    assert floor(workspace) is True
    op = BY_NAME[LOWER_FLOOR]
    action = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert action.confirmation.summary == (
        f"{op.title} (workspace {workspace.slug}): sensitivity_floor: true -> false. "
        f"Effect: {op.effect}."
    )
    assert action.params["changes"] == {"sensitivity_floor": {"before": True, "after": False}}
    assert action.params["effect"] == op.effect
    assert action.params["approve_permission"] == op.permission
    assert action.params["approvals_required"] == op.approvals == 2
    assert owner.pk in action.custody_user_ids
    confirmation = ConfirmationRequest.objects.get(action_request=action)
    assert confirmation.approvals_required == 2


def test_the_summary_hides_the_registrys_counters(workspace, owner):
    """`other_approvers` and `other_active` never appear in the summary."""
    proposal = Proposal(
        Target.WORKSPACE,
        "update",
        "workspace w",
        {"sensitivity_floor": True, "other_approvers": 2, "other_active": 1, "_secret": 1},
        {
            "sensitivity_floor": False,
            "other_approvers": 1,
            "other_active": 0,
            "_secret": 2,
        },
        str(workspace.pk),
        {"sensitivity_floor": False},
    )
    governed_change(
        reason="test change", workspace=workspace, actor=Actor.for_user(owner), proposal=proposal
    )
    action = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert "sensitivity_floor: true -> false. Effect:" in (action.confirmation.summary)
    summary = action.confirmation.summary
    assert "other_" not in summary and "_secret" not in summary
    # the request's own record keeps them; only `_` fields are never stored
    assert set(action.params["changes"]) == {"sensitivity_floor", "other_active", "other_approvers"}


def test_a_field_only_before_or_only_after_is_a_change(workspace, owner):
    proposal = Proposal(
        Target.WORKSPACE,
        "update",
        "workspace w",
        {"sensitivity_floor": True, "gone": 1},
        {"sensitivity_floor": False, "new": 2},
        str(workspace.pk),
        {"sensitivity_floor": False},
    )
    governed_change(
        reason="test change", workspace=workspace, actor=Actor.for_user(owner), proposal=proposal
    )
    action = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert action.params["changes"] == {
        "gone": {"before": 1, "after": None},
        "new": {"before": None, "after": 2},
        "sensitivity_floor": {"before": True, "after": False},
    }


def test_a_change_without_an_applier_is_a_validation_error(workspace, owner):
    proposal = Proposal(Target.WORKSPACE, "frobnicate", "w", {"a": 1}, {"a": 1}, None, {})
    error = refused(
        lambda: governed_change(
            reason="test change",
            workspace=workspace,
            actor=Actor.for_user(owner),
            proposal=proposal,
        ),
        "validation_error",
    )
    assert str(error) == "No way to frobnicate a workspace."


def test_the_doors_grant_covers_only_the_row_it_names(workspace, other_workspace, monkeypatch):
    """An applier that also loosens another row of the same kind is refused by the
    guard: the door grants the proposal's row, not every row."""
    import approvals.door as door

    applier = door._APPLIERS[("workspace", "update")]

    def greedy(**kwargs):
        result = applier(**kwargs)
        Workspace.objects.filter(pk=other_workspace.pk).update(sensitivity_floor=False)
        return result

    monkeypatch.setitem(door._APPLIERS, ("workspace", "update"), greedy)
    refused(lambda: lower_floor(workspace, OPS, break_glass="x"), "approval_required")
    assert floor(other_workspace) is True


# --- parse_when -----------------------------------------------------------------------


def test_parse_when():
    assert parse_when(None) is None
    assert parse_when("") is None
    moment = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    assert parse_when(moment) is moment
    assert parse_when("2030-01-02T03:04:00+00:00") == moment
    with pytest.raises(WardenError) as raised:
        parse_when("soon")
    assert raised.value.code == "validation_error"
    assert str(raised.value) == "Invalid date."
    assert raised.value.detail == {"date": ["soon"]}


# --- apply_approved: the approval applies the proposal ---------------------------------


def approve_all(action, *approvers):
    from approvals.confirmations import confirmation_approve

    for user in approvers:
        confirmation = ConfirmationRequest.objects.get(action_request=action)
        confirmation_approve(confirmation=confirmation, reason="ok", actor=Actor.for_user(user))


def test_an_approved_loosening_is_applied_and_recorded(workspace, owner, make_member):
    first, second = make_member(workspace, Role.OWNER), make_member(workspace, Role.OWNER)
    lower_floor(workspace, Actor.for_user(owner), reason="testing the floor")
    action = ActionRequest.objects.get(workspace=workspace, status="pending")
    approve_all(action, first, second)
    assert floor(workspace) is False

    version = PolicyVersion.objects.filter(workspace=workspace).latest("number")
    assert version.source == PolicyVersion.Source.APPROVED
    assert version.author == action.requested_by
    assert version.reason == "testing the floor"
    recorded = ApprovalRecord.objects.filter(confirmation__action_request=action).order_by(
        "created_at"
    )
    assert version.approvers == [r.approver for r in recorded]
    assert len(version.approvers) == 2
    assert version.operations == [LOWER_FLOOR]
    assert version.request_id == action.pk

    action.refresh_from_db()
    assert action.status == ActionRequest.Status.EXECUTED
    assert action.result_status == "succeeded"
    assert action.result_output == {"target_id": str(workspace.pk)}
    assert action.result_reported_at is not None
    assert AuditEntry.objects.filter(
        workspace=workspace,
        rationale=f"testing the floor (request {action.pk} by {action.requested_by}, approved)",
    ).exists()
    assert not ExceptionRecord.objects.filter(workspace=workspace, kind="override").exists()


def test_an_approved_creation_records_the_created_rows_id(workspace, owner, make_user, make_member):
    first, second = make_member(workspace, Role.OWNER), make_member(workspace, Role.OWNER)
    newcomer = make_user()
    proposal = proposals.membership_add(workspace, newcomer, Role.ADMIN)
    result = governed_change(
        reason="test change", workspace=workspace, actor=Actor.for_user(owner), proposal=proposal
    )
    assert not result.applied
    action = ActionRequest.objects.get(workspace=workspace, status="pending")
    approve_all(action, *[u for u in (first, second)][: action.confirmation.approvals_required])
    membership = Membership.objects.get(workspace=workspace, user=newcomer)
    action.refresh_from_db()
    assert action.result_output == {"target_id": str(membership.pk)}


def test_an_approved_key_records_the_new_keys_id(workspace, owner, make_member):
    from keys.models import MachineKey

    first, second = make_member(workspace, Role.OWNER), make_member(workspace, Role.OWNER)
    proposal = proposals.key_create(
        workspace, owner, {"name": "root", "scopes": ["workspace:admin"], "tool_allowlist": ["*"]}
    )
    governed_change(
        reason="test change", workspace=workspace, actor=Actor.for_user(owner), proposal=proposal
    )
    action = ActionRequest.objects.get(workspace=workspace, status="pending")
    approve_all(action, *[u for u in (first, second)][: action.confirmation.approvals_required])
    key = MachineKey.objects.get(workspace=workspace, name="root")
    action.refresh_from_db()
    assert action.result_output == {"target_id": str(key.pk)}


def test_going_live_early_is_recorded_as_an_override(workspace, owner, make_member):
    from datetime import timedelta

    from django.utils import timezone

    from approvals.guard import operator_seeding

    with operator_seeding():
        Workspace.objects.filter(pk=workspace.pk).update(
            mode="dry_run", live_after=timezone.now() + timedelta(days=3)
        )
    workspace.refresh_from_db()
    first, second = make_member(workspace, Role.OWNER), make_member(workspace, Role.OWNER)
    proposal = proposals.workspace_update(workspace, {"mode": "live"})
    governed_change(
        reason="test change", workspace=workspace, actor=Actor.for_user(owner), proposal=proposal
    )
    action = ActionRequest.objects.get(workspace=workspace, status="pending")
    assert "warden.workspace.go_live_early" in action.params["operations"]
    approve_all(action, *[u for u in (first, second)][: action.confirmation.approvals_required])
    record = ExceptionRecord.objects.get(workspace=workspace, kind="override")
    assert record.severity == ExceptionRecord.Severity.MEDIUM
    assert record.what == "Went live before the end of the dry run (live_after)"
    assert record.why == f"request {action.pk} by {action.requested_by}, approved"
    assert record.evidence == {"changes": action.params["changes"], "early": True}
    assert record.evidence["changes"]
    assert record.mitigation == "Watch the first live actions closely."
    assert record.subject == action.requested_by
    assert AuditEntry.objects.filter(workspace=workspace, action="governance.override").exists()


def test_an_agent_action_whose_params_name_a_target_is_not_a_proposal(
    agent, approver, live_workspace, make_tool, ask, approve
):
    """Only platform requests carry a proposal; an agent's own `target` parameter is
    just a parameter."""
    make_tool(live_workspace, "crm.update", level="write", confirmation="always")
    _key, client = agent
    first = ask(client, "crm.update", {"target": "workspace", "verb": "delete"})
    assert first.status_code == 202, first.content
    confirmation_id = str(ConfirmationRequest.objects.get(action_request_id=first.json()["id"]).pk)
    assert approve(approver, live_workspace, confirmation_id).status_code == 200
    assert Workspace.objects.get(pk=live_workspace.pk).deleted_at is None
    action = ActionRequest.objects.get(pk=first.json()["id"])
    assert action.status == ActionRequest.Status.APPROVED
