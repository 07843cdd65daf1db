"""Issue 24, proof: a plan/apply test for each kind of change, through the API. Each
change is applied at once when it narrows, or filed as ONE pending request (nothing of it
applied) that its proposer cannot approve."""

from __future__ import annotations

import copy

import pytest

from approvals.models import ActionRequest, ConfirmationRequest
from approvals.policy.document import export_document
from tenants.models import Membership, Role

APPLY = "/api/v1/policy/apply"


@pytest.fixture
def owner(live_workspace):
    return Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user


@pytest.fixture
def catalog(live_workspace, make_tool):
    make_tool(live_workspace, "crm.lookup", level="read")
    make_tool(
        live_workspace,
        "crm.update",
        level="write",
        confirmation="always",
        deny_condition="params.stage == 'deleted'",
        dry_run=True,
    )
    return live_workspace


def _tool(doc, name):
    return next(t for t in doc["tools"] if t["name"] == name)


def _set(name, **fields):
    def change(doc):
        _tool(doc, name).update(fields)

    return change


def _settings(section, **values):
    def change(doc):
        doc[section].update(values)

    return change


def _create(entry):
    def change(doc):
        doc["tools"].append(entry)

    return change


def _delete(name):
    def change(doc):
        doc["tools"] = [t for t in doc["tools"] if t["name"] != name]

    return change


NARROWING = {
    "tool disabled": _set("crm.lookup", enabled=False),
    "confirmation raised": _set("crm.lookup", confirmation="always"),
    "level raised": _set("crm.lookup", level="write"),
    "made irreversible": _set("crm.lookup", irreversible=True),
    "data class added": _set("crm.lookup", data_classes=["pii"]),
    "deny rule added": _set("crm.lookup", deny_condition="true", deny_reason="no"),
    "into dry run": _set("crm.lookup", dry_run=True),
    "shadow confirmation rule": _set("crm.lookup", shadow_confirmation="always"),
    "shadow deny rule": _set("crm.lookup", shadow_deny_condition="params.n > 1"),
    "tool created disabled": _create({"name": "docs.draft", "enabled": False}),
    "tool deleted": _delete("crm.lookup"),
    "writes switched off": _settings("settings", writes_enabled=False),
    "anomaly auto-suspend on": _settings("automation", anomaly_auto_suspend=True),
    "reminders sooner": _settings("automation", approval_remind_after_minutes=10),
}
LOOSENING = {
    "confirmation lowered": (_set("crm.update", confirmation="never"), False),
    "deny rule removed": (_set("crm.update", deny_condition=""), False),
    "out of dry run": (_set("crm.update", dry_run=False), False),
    "what approvers read": (_set("crm.lookup", summary_template="Look up {params.id}"), False),
    "tool created enabled": (_create({"name": "docs.search"}), False),
    "sensitivity floor off": (_settings("settings", sensitivity_floor=False), True),
    "approver e-mail off": (_settings("automation", email_notifications=False), True),
    "outbound host added": (_settings("automation", webhook_host_allowlist=["x.example"]), True),
}


def _apply(client, doc):
    return client.post(APPLY, {"document": doc, "reason": "test"}, format="json")


@pytest.mark.parametrize("kind", sorted(NARROWING))
def test_a_narrowing_change_applies_at_once(kind, catalog, owner, user_client):
    doc = copy.deepcopy(export_document(catalog))
    NARROWING[kind](doc)
    response = _apply(user_client(owner, catalog), doc)
    assert response.status_code == 200, response.json()
    assert response.json()["request"] is None and response.json()["applied"]
    catalog.refresh_from_db()
    now = export_document(catalog)
    wanted = {t["name"]: t for t in doc["tools"]}
    for tool in now["tools"]:
        assert {k: v for k, v in tool.items() if k in wanted[tool["name"]]} == wanted[tool["name"]]
    assert (now["settings"], now["automation"]) == (doc["settings"], doc["automation"])
    assert {t["name"] for t in now["tools"]} == {t["name"] for t in doc["tools"]}


@pytest.mark.parametrize("kind", sorted(LOOSENING))
def test_a_loosening_is_one_pending_request_its_proposer_cannot_approve(
    kind, catalog, owner, user_client, approve
):
    change, settings = LOOSENING[kind]
    before = export_document(catalog)
    doc = copy.deepcopy(before)
    change(doc)
    response = _apply(user_client(owner, catalog), doc)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["applied"] == [] and len(body["pending"]) == 1
    (action,) = ActionRequest.objects.filter(workspace=catalog, tool_name="warden.policy.apply")
    assert action.params["changes"]  # the whole governed diff, for the review page
    expected = "manage_workspace" if settings else "manage_tools"
    assert action.params["approve_permission"] == expected
    catalog.refresh_from_db()
    assert export_document(catalog) == before  # nothing of it applied yet
    confirmation = ConfirmationRequest.objects.get(action_request=action)
    refused = approve(owner, catalog, confirmation.pk)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "four_eyes"
