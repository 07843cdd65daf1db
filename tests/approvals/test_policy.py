"""Policy as code (issue 24 items 1, 2, 5): the document, plan/apply through the door,
policy tests against the pure gate, versions and rollback."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ConfirmationRequest, PolicyVersion, Tool
from approvals.policy import document as policy_document
from approvals.policy.document import export_document, parse_document
from approvals.policy.planning import plan
from approvals.policy.services import policy_apply
from approvals.policy.testing import parse_cases, run_cases
from audit.models import AuditEntry
from common.errors import WardenError
from tenants.models import Role, Workspace
from tests.conftest import SYSTEM

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def owner(live_workspace):
    from tenants.models import Membership

    return Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user


@pytest.fixture
def catalog(live_workspace, make_tool):
    make_tool(live_workspace, "crm.lookup", level="read")
    make_tool(
        live_workspace,
        "billing.refund",
        level="write",
        confirmation="conditional",
        condition="params.amount > 1000",
    )
    make_tool(live_workspace, "email.send", level="external", confirmation="always")
    return live_workspace


def exported(workspace) -> dict:
    workspace.refresh_from_db()
    return export_document(workspace)


def with_tool(doc: dict, name: str, **fields) -> dict:
    doc = copy.deepcopy(doc)
    for entry in doc["tools"]:
        if entry["name"] == name:
            entry.update(fields)
    return doc


def session(user_client, user, workspace):
    return user_client(user, workspace)


# --- the document -------------------------------------------------------------------------


def test_export_holds_the_catalog_sorted_and_the_settings_by_field_name(catalog):
    doc = exported(catalog)
    assert doc["apiVersion"] == "warden.dev/policy/v1"
    assert doc["workspace"] == catalog.slug
    assert [t["name"] for t in doc["tools"]] == ["billing.refund", "crm.lookup", "email.send"]
    assert list(doc["tools"][0]) == list(Tool().snapshot())
    assert doc["settings"]["writes_enabled"] is True
    assert doc["settings"]["confirmation_ttl"] == 24 * 3600


def test_export_apply_export_is_byte_identical_and_a_no_op(catalog):
    text = policy_document.dump(exported(catalog))
    versions, entries = PolicyVersion.objects.count(), AuditEntry.objects.count()
    result = policy_apply(workspace=catalog, document=text, actor=SYSTEM, reason="same")
    assert result.plan.empty and not result.applied
    assert policy_document.dump(exported(catalog)) == text
    assert (PolicyVersion.objects.count(), AuditEntry.objects.count()) == (versions, entries)
    as_json = policy_document.dump(exported(catalog), "json")
    policy_apply(reason="test set-up", workspace=catalog, document=as_json, actor=SYSTEM)
    assert policy_document.dump(exported(catalog), "json") == as_json


def test_round_trip_after_a_change_restores_the_file_byte_for_byte(catalog):
    text = policy_document.dump(exported(catalog))
    narrowed = with_tool(exported(catalog), "crm.lookup", enabled=False)
    policy_apply(workspace=catalog, document=narrowed, actor=SYSTEM, reason="pause")
    assert policy_document.dump(exported(catalog)) != text
    # Re-enabling is governed: an operator applies it back as break-glass here.
    policy_apply(workspace=catalog, document=text, actor=SYSTEM, break_glass="restore")
    assert policy_document.dump(exported(catalog)) == text


def test_an_unknown_field_is_refused_with_its_path(catalog):
    doc = with_tool(exported(catalog), "email.send", levle="read")
    with pytest.raises(WardenError) as raised:
        parse_document(doc)
    assert raised.value.code == "policy_invalid"
    assert raised.value.detail["errors"][0] == {
        "path": "$.tools[2].levle",
        "code": "unknown_field",
        "message": "Unknown field 'levle'.",
    }


def test_a_wrong_value_and_a_duplicate_tool_are_refused_with_their_paths(catalog):
    doc = with_tool(exported(catalog), "crm.lookup", level="root")
    with pytest.raises(WardenError) as raised:
        parse_document(doc)
    assert raised.value.detail["errors"][0]["path"] == "$.tools[1].level"
    doc = exported(catalog)
    doc["tools"].append(dict(doc["tools"][0]))
    with pytest.raises(WardenError) as raised:
        parse_document(doc)
    assert raised.value.detail["errors"][0]["path"] == "$.tools[3].name"


def test_a_tool_the_catalog_would_refuse_is_refused_at_plan_with_its_path(catalog):
    doc = with_tool(
        exported(catalog), "email.send", condition="params.amount >", confirmation="conditional"
    )
    doc["tools"].insert(0, {"name": "warden.sneaky"})  # paths follow the file's order
    with pytest.raises(WardenError) as raised:
        plan(catalog, parse_document(doc))
    paths = [e["path"] for e in raised.value.detail["errors"]]
    assert paths == ["$.tools[3].condition", "$.tools[0].name"]


def test_a_document_for_another_workspace_is_refused(catalog, other_workspace):
    doc = exported(catalog)
    with pytest.raises(WardenError) as raised:
        plan(other_workspace, parse_document(doc))
    assert raised.value.code == "workspace_mismatch"


# --- the schema is generated from the classification ----------------------------------------


def test_the_published_schema_is_the_generated_one():
    assert policy_document.SCHEMA_PATH.read_text() == policy_document.schema_text()


@pytest.mark.parametrize("target", policy_document.COVERED)
def test_every_field_of_every_policy_bearing_model_is_in_the_schema_or_excluded_with_a_reason(
    target,
):
    schema = policy_document.generate_schema()["properties"]
    section = {"tool": "tools", "workspace": "settings", "automation_settings": "automation"}
    held = schema[section[target]]
    held = held["items"] if target == "tool" else held
    for name in policy_document.model_fields(target):
        assert (name in held["properties"]) != (name in policy_document.NOT_IN_DOCUMENT[target]), (
            f"{target}.{name}"
        )
        if name in policy_document.NOT_IN_DOCUMENT[target]:
            assert policy_document.NOT_IN_DOCUMENT[target][name].strip()  # a reason


def test_the_automation_settings_secret_is_never_in_the_document(live_workspace):
    assert "slack_bot_token_encrypted" in policy_document.NOT_IN_DOCUMENT["automation_settings"]
    assert "slack_bot_token_encrypted" not in json.dumps(export_document(live_workspace))


@pytest.mark.parametrize(
    "target, field",
    [("tool", "connector"), ("tool", "updated_at"), ("automation_settings", "updated_at")],
)
def test_a_field_left_out_of_the_document_fails_generation(monkeypatch, target, field):
    """What a new model field does until someone places it in the document or says why not."""
    monkeypatch.setitem(
        policy_document.NOT_IN_DOCUMENT,
        target,
        {k: v for k, v in policy_document.NOT_IN_DOCUMENT[target].items() if k != field},
    )
    with pytest.raises(LookupError, match=field):
        policy_document.generate_schema()


def test_the_schema_is_served_to_any_credential(workspace, make_key, key_client, client):
    assert client.get("/api/v1/policy/schema").status_code == 401
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    response = key_client(plaintext).get("/api/v1/policy/schema")
    assert response.status_code == 200
    assert response.json() == json.loads(policy_document.SCHEMA_PATH.read_text())


# --- plan: judged by approvals.effective, as every other door ------------------------------


def test_plan_marks_a_narrowing_change_as_applying_at_once(catalog):
    doc = with_tool(exported(catalog), "crm.lookup", confirmation="always")
    result = plan(catalog, parse_document(doc))
    (change,) = result.changes
    assert (change.verb, change.name, change.narrows) == ("update", "crm.lookup", True)
    assert change.immediate == ("confirmation",) and not change.governed


def test_plan_names_the_governed_operations_of_a_loosening(catalog):
    doc = with_tool(exported(catalog), "email.send", confirmation="never", level="write")
    result = plan(catalog, parse_document(doc))
    (change,) = result.changes
    assert change.operations == ("warden.tool.lower_confirmation", "warden.tool.lower_level")
    assert change.governed == ("confirmation", "level")


def test_plan_splits_one_tool_into_its_narrowing_and_governed_parts(catalog):
    doc = with_tool(
        exported(catalog), "billing.refund", condition="params.amount > 10", irreversible=True
    )
    (change,) = plan(catalog, parse_document(doc)).changes
    assert change.immediate == ("irreversible",)
    assert change.governed == ("condition",)


def test_plan_of_created_and_deleted_tools(catalog):
    doc = exported(catalog)
    doc["tools"] = [t for t in doc["tools"] if t["name"] != "crm.lookup"]
    doc["tools"].append({"name": "docs.search"})
    doc["tools"].append({"name": "docs.draft", "enabled": False})
    by_name = {c.name: c for c in plan(catalog, parse_document(doc)).changes}
    assert by_name["crm.lookup"].verb == "delete" and by_name["crm.lookup"].narrows
    assert by_name["docs.draft"].verb == "create" and by_name["docs.draft"].narrows
    assert "warden.tool.create" in by_name["docs.search"].operations


def test_plan_judges_settings(catalog):
    doc = exported(catalog)
    doc["settings"].update(writes_enabled=False, sensitivity_floor=False)
    (change,) = plan(catalog, parse_document(doc)).changes
    assert change.target == "workspace"
    assert change.immediate == ("writes_enabled",)
    assert change.operations == ("warden.workspace.lower_floor",)
    assert change.approvals == 2


# --- apply: narrowing at once, the rest as ONE request --------------------------------------


def test_narrowing_applies_at_once_with_audit_entries_and_a_version(catalog, owner, user_client):
    doc = with_tool(exported(catalog), "crm.lookup", confirmation="always", enabled=False)
    response = user_client(owner, catalog).post(
        "/api/v1/policy/apply", {"document": doc, "reason": "tighten"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["applied"] == ["tool crm.lookup"] and body["request"] is None
    tool = Tool.objects.get(workspace=catalog, name="crm.lookup")
    assert (tool.confirmation, tool.enabled) == ("always", False)
    entry = AuditEntry.objects.filter(workspace=catalog, action="tool.updated").last()
    assert "tighten" in entry.rationale
    version = PolicyVersion.objects.get(workspace=catalog, number=body["version"])
    assert version.author == f"user:{owner.email}" and version.approvers == []
    assert set(version.diff) == {"tool crm.lookup: confirmation", "tool crm.lookup: enabled"}
    assert version.document == exported(catalog)


def _loosen(catalog):
    doc = with_tool(exported(catalog), "email.send", confirmation="never")
    doc = with_tool(doc, "billing.refund", condition="params.amount > 5000")
    return with_tool(doc, "crm.lookup", enabled=False)


def test_loosening_is_filed_as_one_request_with_the_whole_diff(catalog, owner, user_client):
    response = user_client(owner, catalog).post(
        "/api/v1/policy/apply", {"document": _loosen(catalog), "reason": "q4"}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["applied"] == ["tool crm.lookup"]  # the narrowing part, at once
    assert body["pending"] == ["tool billing.refund", "tool email.send"]
    (request,) = ActionRequest.objects.filter(workspace=catalog, tool_name="warden.policy.apply")
    assert str(request.pk) == body["request"]["id"]
    assert request.params["changes"] == {
        "tool billing.refund: condition": {
            "before": "params.amount > 1000",
            "after": "params.amount > 5000",
        },
        "tool email.send: confirmation": {"before": "always", "after": "never"},
    }
    assert request.params["operations"] == ["warden.tool.lower_confirmation"]
    # Nothing of the governed part changed yet.
    assert Tool.objects.get(workspace=catalog, name="email.send").confirmation == "always"


def test_the_proposer_cannot_approve_it_another_admin_can(
    catalog, owner, user_client, make_member, approve
):
    user_client(owner, catalog).post(
        "/api/v1/policy/apply",
        {"reason": "test change", "document": _loosen(catalog)},
        format="json",
    )
    confirmation = ConfirmationRequest.objects.get(
        workspace=catalog, action_request__tool_name="warden.policy.apply"
    )
    refused = approve(owner, catalog, confirmation.pk)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "four_eyes"
    assert Tool.objects.get(workspace=catalog, name="email.send").confirmation == "always"
    admin = make_member(catalog, Role.ADMIN)
    assert approve(admin, catalog, confirmation.pk).status_code == 200
    assert Tool.objects.get(workspace=catalog, name="email.send").confirmation == "never"
    refund = Tool.objects.get(workspace=catalog, name="billing.refund")
    assert refund.condition == "params.amount > 5000"
    version = PolicyVersion.objects.filter(workspace=catalog).order_by("-number").first()
    assert version.source == "approved"
    assert version.author == f"user:{owner.email}"
    assert version.approvers == [f"user:{admin.email}"]
    assert version.request.pk == confirmation.action_request_id
    assert exported(catalog) == parse_document(_loosen(catalog)).as_dict() | {
        "settings": exported(catalog)["settings"]
    }


def test_approval_refuses_when_the_base_moved(
    catalog, owner, user_client, make_member, approve, make_tool
):
    user_client(owner, catalog).post(
        "/api/v1/policy/apply",
        {"reason": "test change", "document": _loosen(catalog)},
        format="json",
    )
    confirmation = ConfirmationRequest.objects.get(
        workspace=catalog, action_request__tool_name="warden.policy.apply"
    )
    email = Tool.objects.get(workspace=catalog, name="email.send")
    from approvals import catalog as catalog_services

    catalog_services.tool_update(
        reason="test set-up",
        tool=email,
        actor=SYSTEM,
        changes={"description": "x"} and {"irreversible": True},
    )
    admin = make_member(catalog, Role.ADMIN)
    response = approve(admin, catalog, confirmation.pk)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "policy_base_moved"
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"
    assert Tool.objects.get(workspace=catalog, name="email.send").confirmation == "always"


def test_a_system_actor_cannot_apply_a_governed_part_and_nothing_is_written(catalog):
    before = exported(catalog)
    with pytest.raises(WardenError) as raised:
        policy_apply(
            reason="test set-up", workspace=catalog, document=_loosen(catalog), actor=SYSTEM
        )
    assert raised.value.code == "approval_required"
    assert exported(catalog) == before


def test_a_machine_key_may_propose_but_a_human_approves(
    catalog, make_key, key_client, make_member, approve
):
    key, plaintext = make_key(catalog, scopes=["workspace:admin"])
    response = key_client(plaintext).post(
        "/api/v1/policy/apply",
        {"reason": "test change", "document": _loosen(catalog)},
        format="json",
    )
    assert response.status_code == 202
    confirmation = ConfirmationRequest.objects.get(
        workspace=catalog, action_request__tool_name="warden.policy.apply"
    )
    # The key's owner is in its custody: they cannot approve what their key proposed.
    assert approve(key.owner, catalog, confirmation.pk).json()["error"]["code"] == "four_eyes"


def test_a_workspace_admin_applies_a_catalog_only_document(catalog, make_member, user_client):
    """An admin (manage_tools, not manage_workspace) may apply the catalog: narrowing at
    once, loosening as one request for a second human with manage_tools."""
    admin = make_member(catalog, Role.ADMIN)
    doc = with_tool(exported(catalog), "crm.lookup", enabled=False)
    doc = with_tool(doc, "email.send", confirmation="never")
    response = user_client(admin, catalog).post(
        "/api/v1/policy/apply", {"document": doc}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["applied"] == ["tool crm.lookup"]
    assert response.json()["pending"] == ["tool email.send"]
    action = ActionRequest.objects.get(workspace=catalog, tool_name="warden.policy.apply")
    assert action.params["approve_permission"] == "manage_tools"
    assert Tool.objects.get(workspace=catalog, name="crm.lookup").enabled is False


def test_a_workspace_admin_cannot_change_the_settings_and_nothing_is_written(
    catalog, make_member, user_client, api_error
):
    admin = make_member(catalog, Role.ADMIN)
    before = exported(catalog)
    doc = with_tool(before, "crm.lookup", enabled=False)
    doc["settings"]["writes_enabled"] = not before["settings"]["writes_enabled"]
    error = api_error(
        user_client(admin, catalog).post("/api/v1/policy/apply", {"document": doc}, format="json"),
        403,
        "forbidden_by_scope",
    )
    assert error["error"]["detail"]["objects"] == [f"workspace {catalog.slug}"]
    assert exported(catalog) == before  # refused whole: not even the narrowing tool change


# --- versions and rollback --------------------------------------------------------------------


def test_rollback_proposes_the_old_document_through_the_same_door(
    catalog, owner, user_client, make_member, approve
):
    client = user_client(owner, catalog)
    first = exported(catalog)
    narrowed = with_tool(first, "email.send", enabled=False)
    v1 = client.post(
        "/api/v1/policy/apply", {"reason": "test change", "document": first}, format="json"
    ).json()
    assert v1["version"] is None  # nothing changed: no version
    v2 = client.post(
        "/api/v1/policy/apply", {"reason": "test change", "document": narrowed}, format="json"
    ).json()
    listed = client.get("/api/v1/policy/versions").json()["results"]
    # The newest first: the catalog fixture's three tool creations are versions too.
    assert [v["number"] for v in listed] == [v2["version"], 3, 2, 1]
    # Record the original as a version to roll back to: apply the original (governed).
    back = client.post(
        "/api/v1/policy/apply", {"reason": "test change", "document": first}, format="json"
    )
    assert back.status_code == 202
    admin = make_member(catalog, Role.ADMIN)
    confirmation = ConfirmationRequest.objects.get(
        workspace=catalog, action_request__tool_name="warden.policy.apply"
    )
    approve(admin, catalog, confirmation.pk)
    assert exported(catalog) == first
    detail = client.get(f"/api/v1/policy/versions/{v2['version']}").json()
    assert detail["diff_to_current"] == {
        "tool email.send: enabled": {"before": False, "after": True}
    }
    # Rolling back to the disabled version narrows: it applies at once.
    rolled = client.post(
        f"/api/v1/policy/versions/{v2['version']}/rollback", {"reason": "incident"}, format="json"
    )
    assert rolled.status_code == 200, rolled.json()
    assert Tool.objects.get(workspace=catalog, name="email.send").enabled is False
    assert PolicyVersion.objects.get(workspace=catalog, number=rolled.json()["version"]).reason == (
        "incident"
    )


# --- policy tests ----------------------------------------------------------------------------

CASES = """
workspace: {slug}
cases:
  - name: small refund
    given:
      key: {{scopes: [actions:write], allowlist: ["billing.*"]}}
      tool: billing.refund
      params: {{amount: 50}}
    expect: {{outcome: allowed}}
  - name: large refund needs a human
    given:
      key: {{scopes: [actions:write], allowlist: ["billing.*"]}}
      tool: billing.refund
      params: {{amount: 5000}}
    expect: {{outcome: requires_confirmation, approvals: 1}}
  - name: not on the allowlist
    given:
      key: {{scopes: [actions:write], allowlist: ["crm.*"]}}
      tool: billing.refund
      params: {{amount: 5}}
    expect: {{outcome: denied, code: tool_not_allowed}}
"""


def test_policy_tests_pass_against_the_current_policy(catalog):
    cases = parse_cases(CASES.format(slug=catalog.slug))
    run = run_cases(catalog, parse_document(exported(catalog)), cases)
    assert run.passed, run.report()


def test_a_proposed_policy_changes_the_answers(catalog):
    cases = parse_cases(CASES.format(slug=catalog.slug))
    proposed = with_tool(exported(catalog), "billing.refund", condition="params.amount > 10000")
    run = run_cases(catalog, parse_document(proposed), cases)
    assert [r.name for r in run.failures] == ["large refund needs a human"]
    report = run.failures[0].report()
    assert 'outcome: expected "requires_confirmation", got "allowed"' in report
    assert "decided by rule 'confirmation': condition does not hold" in report


def test_policy_test_command_exit_code_and_readable_diff(catalog, tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES.format(slug=catalog.slug))
    out = io.StringIO()
    call_command("policy", "test", str(cases), stdout=out)
    assert "3 passed, 0 failed" in out.getvalue()
    wrong = yaml.safe_load(cases.read_text())
    wrong["cases"][0]["expect"] = {"outcome": "denied", "code": "writes_disabled"}
    cases.write_text(yaml.safe_dump(wrong))
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("policy", "test", str(cases), stdout=out)
    assert raised.value.returncode == 1
    assert "FAIL  small refund" in out.getvalue()
    assert '! outcome: expected "denied", got "allowed"' in out.getvalue()
    assert '! code: expected "writes_disabled", got null' in out.getvalue()


def test_policy_test_api_against_a_proposed_policy(catalog, owner, user_client):
    proposed = with_tool(exported(catalog), "billing.refund", confirmation="always")
    response = user_client(owner, catalog).post(
        "/api/v1/policy/test",
        {"cases": CASES.format(slug=catalog.slug), "proposed": proposed},
        format="json",
    )
    body = response.json()
    assert response.status_code == 200, body
    assert (body["total"], body["failed"], body["passed"]) == (3, 1, False)


def test_the_demo_policy_is_the_demo_workspace_and_its_tests_run_green(db):
    call_command("load_demo", stdout=io.StringIO())
    workspace = Workspace.objects.get(slug="demo")
    policy = parse_document((ROOT / "examples/policy/demo-policy.yaml").read_text())
    assert plan(workspace, policy).empty
    out = io.StringIO()
    call_command("policy", "test", str(ROOT / "examples/policy/demo-tests.yaml"), stdout=out)
    assert "11 passed, 0 failed" in out.getvalue()


def test_a_deliberately_wrong_demo_case_fails_with_a_readable_diff(db, tmp_path):
    call_command("load_demo", stdout=io.StringIO())
    cases = yaml.safe_load((ROOT / "examples/policy/demo-tests.yaml").read_text())
    cases["cases"][3]["expect"] = {"outcome": "allowed"}  # outbound email: needs a human
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(cases))
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("policy", "test", str(wrong), stdout=out)
    assert raised.value.returncode == 1
    assert out.getvalue().splitlines()[3:6] == [
        "FAIL  outbound email waits for one human (outbound is off)",
        '  ! outcome: expected "allowed", got "requires_confirmation"',
        "    decided by rule 'outbound': external effects need confirmation (outbound off)",
    ]


# --- the API's refusals -----------------------------------------------------------------------


def test_plan_api_answers_the_diff(catalog, owner, user_client):
    doc = with_tool(exported(catalog), "email.send", confirmation="never")
    body = (
        user_client(owner, catalog)
        .post("/api/v1/policy/plan", {"document": policy_document.dump(doc)}, format="json")
        .json()
    )
    assert body["narrows"] is False
    assert body["operations"] == ["warden.tool.lower_confirmation"]
    assert body["changes"][0]["changes"] == [
        {"field": "confirmation", "before": "always", "after": "never", "governed": True}
    ]


def test_bad_documents_answer_policy_invalid_and_write_nothing(
    catalog, owner, user_client, api_error
):
    client = user_client(owner, catalog)
    before = exported(catalog)
    versions = PolicyVersion.objects.filter(workspace=catalog).count()
    for document in ("tools: [", {"apiVersion": "x"}, 42, "- a\n- b"):
        response = client.post(
            "/api/v1/policy/apply", {"reason": "test change", "document": document}, format="json"
        )
        api_error(response, 400, "policy_invalid")
    api_error(
        client.post("/api/v1/policy/plan", {"document": 42}, format="json"), 400, "policy_invalid"
    )
    api_error(
        client.post("/api/v1/policy/test", {"cases": "cases: 3"}, format="json"),
        400,
        "policy_invalid",
    )
    api_error(
        client.post(
            "/api/v1/policy/apply",
            {"reason": "test change", "document": {}, "dry": 1},
            format="json",
        ),
        400,
        "validation_error",
    )
    api_error(
        client.post(
            "/api/v1/policy/versions/99/rollback", {"reason": "test change"}, format="json"
        ),
        404,
        "not_found",
    )
    assert exported(catalog) == before
    assert PolicyVersion.objects.filter(workspace=catalog).count() == versions


def test_wrong_scope_and_revoked_key_are_refused(catalog, make_key, key_client, api_error):
    from keys.services import key_revoke

    _, plaintext = make_key(catalog, scopes=["actions:read"])
    client = key_client(plaintext)
    api_error(client.get("/api/v1/policy"), 403, "forbidden_by_scope")
    doc = exported(catalog)
    api_error(
        client.post(
            "/api/v1/policy/apply", {"reason": "test change", "document": doc}, format="json"
        ),
        403,
        "forbidden_by_scope",
    )
    writer, secret = make_key(catalog, scopes=["tools:write"])
    assert key_client(secret).get("/api/v1/policy").status_code == 200
    # tools:write may apply the catalog; the workspace's settings need workspace:admin.
    settings_changed = copy.deepcopy(doc)
    settings_changed["settings"]["outbound_allowed"] = False
    settings_changed["settings"]["writes_enabled"] = False
    error = api_error(
        key_client(secret).post(
            "/api/v1/policy/apply",
            {"reason": "test change", "document": settings_changed},
            format="json",
        ),
        403,
        "forbidden_by_scope",
    )
    assert error["error"]["detail"]["required_scope"] == "workspace:admin"
    assert exported(catalog) == doc
    with operator_seeding():
        key_revoke(reason="test set-up", key=writer, actor=SYSTEM)
    api_error(key_client(secret).get("/api/v1/policy"), 401, "key_revoked")


def test_another_workspace_sees_nothing_of_this_one(
    catalog, owner, user_client, other_workspace, make_key, key_client, api_error
):
    narrowed = with_tool(exported(catalog), "crm.lookup", enabled=False)
    number = (
        user_client(owner, catalog)
        .post(
            "/api/v1/policy/apply", {"reason": "test change", "document": narrowed}, format="json"
        )
        .json()["version"]
    )
    _, plaintext = make_key(other_workspace, scopes=["workspace:admin"])
    intruder = key_client(plaintext)
    api_error(intruder.get(f"/api/v1/policy/versions/{number}"), 404, "not_found")
    api_error(
        intruder.post(
            f"/api/v1/policy/versions/{number}/rollback", {"reason": "test change"}, format="json"
        ),
        404,
        "not_found",
    )
    assert intruder.get("/api/v1/policy/versions").json() == {"results": []}
    exported_b = intruder.get("/api/v1/policy").json()
    assert exported_b["workspace"] == other_workspace.slug and exported_b["tools"] == []
    api_error(
        intruder.post(
            "/api/v1/policy/apply", {"reason": "test change", "document": narrowed}, format="json"
        ),
        403,
        "workspace_mismatch",
    )
    assert Tool.objects.filter(workspace=other_workspace).count() == 0


# --- the admin: the review page, the version page, the audit entry's link ----------------------


def test_the_review_page_shows_the_whole_governed_diff(catalog, owner, user_client, make_member):
    from django.test import Client

    user_client(owner, catalog).post(
        "/api/v1/policy/apply",
        {"reason": "test change", "document": _loosen(catalog)},
        format="json",
    )
    confirmation = ConfirmationRequest.objects.get(
        workspace=catalog, action_request__tool_name="warden.policy.apply"
    )
    admin = make_member(catalog, Role.ADMIN)
    client = Client()
    client.force_login(admin)
    html = client.get(f"/admin/approvals/confirmationrequest/{confirmation.pk}/").content.decode()
    table = re.search(r'<table id="governed-changes">(.*?)</table>', html, flags=re.S).group(1)
    assert "tool billing.refund: condition" in table
    assert "params.amount &gt; 5000" in table
    assert "tool email.send: confirmation" in table
    assert "crm.lookup" not in table  # applied at once: not part of the request


def test_an_audit_entry_links_to_the_policy_version_it_was_recorded_under(
    catalog, owner, user_client
):
    from django.test import Client

    doc = with_tool(exported(catalog), "crm.lookup", enabled=False)
    number = (
        user_client(owner, catalog)
        .post("/api/v1/policy/apply", {"reason": "test change", "document": doc}, format="json")
        .json()["version"]
    )
    version = PolicyVersion.objects.get(workspace=catalog, number=number)
    entry = AuditEntry.objects.filter(workspace=catalog, action="tool.updated").latest("seq")
    client = Client()
    client.force_login(owner)
    html = client.get(f"/admin/audit/auditentry/{entry.pk}/change/").content.decode()
    link = f'<a href="/admin/approvals/policyversion/{version.pk}/change/">version {number}</a>'
    assert link in html
    page = client.get(f"/admin/approvals/policyversion/{version.pk}/change/")
    assert page.status_code == 200
    assert "tool crm.lookup: enabled" in page.content.decode()
