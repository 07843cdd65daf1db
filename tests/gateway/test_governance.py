"""Connectors are governed: adding one, pointing it at another URL and adding or
replacing its credentials wait for a second human (approvals.door); narrowing changes
apply at once; the proposal carries the new values only encrypted."""

import json

import pytest
from django.apps import apps
from django.core import mail
from django.test import Client
from django.urls import reverse

from approvals.models import ActionRequest, Tool
from audit.models import AuditEntry
from gateway.models import Connector
from gateway.services import connector_sync, stored_headers
from tenants.models import Role
from tests.gateway.conftest import SECRET, SYSTEM

pytestmark = pytest.mark.django_db
NEW_SECRET = "Bearer sk-live-ROTATED-NEVER-LEAK-9876543210"
BODY = {"name": "crm", "kind": "mcp", "headers": {"Authorization": SECRET}}


@pytest.fixture
def proposer(gw_workspace, gw_admin, user_client):
    return user_client(gw_admin, gw_workspace)


@pytest.fixture
def approver(gw_workspace, make_member):
    return make_member(gw_workspace, Role.ADMIN)


@pytest.fixture
def agent_key(gw_workspace, make_key, key_client, make_member):
    key, plaintext = make_key(
        gw_workspace,
        scopes=["connectors:write", "connectors:read"],
        owner=make_member(gw_workspace, Role.ADMIN),
    )
    return key, key_client(plaintext)


def _confirmation(response):
    assert response.status_code == 202, response.json()
    return ActionRequest.objects.get(pk=response.json()["id"]).confirmation


def _everything_stored() -> str:
    """Every row of every table, as text: the plaintext must be in none of them."""
    return "\n".join(
        str(list(model._base_manager.values()))
        for model in apps.get_models(include_auto_created=True)
    )


def test_an_agent_key_proposes_and_another_human_applies_exactly_once(
    gw_workspace, upstream, agent_key, approver, approve, api_error
):
    key, client = agent_key
    response = client.post(
        "/api/v1/connectors", {"reason": "test change", **BODY, "url": upstream.url}, format="json"
    )
    confirmation = _confirmation(response)
    assert response.json()["governed_operations"] == ["warden.connector.create"]
    assert not Connector.objects.exists()
    assert SECRET not in response.content.decode()
    # The key's owner is answerable for it: four eyes.
    api_error(approve(key.owner, gw_workspace, confirmation.pk), 403, "four_eyes")
    assert not Connector.objects.exists()
    assert approve(approver, gw_workspace, confirmation.pk).status_code == 200
    connector = Connector.objects.get()
    assert stored_headers(connector) == {"Authorization": SECRET}
    assert connector.url == upstream.url
    # A second verdict on a decided request changes nothing.
    assert approve(approver, gw_workspace, confirmation.pk).status_code >= 400
    assert Connector.objects.count() == 1
    assert AuditEntry.objects.filter(action="connector.created").count() == 1
    # Applied as proposed: the credential reaches the upstream.
    connector_sync(connector=connector, actor=SYSTEM)
    assert upstream.headers_seen[-1]["Authorization"] == SECRET


def test_one_admin_alone_cannot_add_a_connector(
    gw_workspace, gw_admin, proposer, upstream, approve, api_error
):
    confirmation = _confirmation(
        proposer.post(
            "/api/v1/connectors",
            {"reason": "test change", **BODY, "url": upstream.url},
            format="json",
        )
    )
    api_error(approve(gw_admin, gw_workspace, confirmation.pk), 403, "four_eyes")
    assert not Connector.objects.exists()


def test_the_plaintext_is_nowhere_but_the_upstream_call(
    gw_workspace, proposer, approver, approve, upstream, make_connector, user_client
):
    created = proposer.post(
        "/api/v1/connectors", {"reason": "test change", **BODY, "url": upstream.url}, format="json"
    )
    existing = make_connector(gw_workspace, name="other")
    rotated = proposer.patch(
        f"/api/v1/connectors/{existing.pk}",
        {"reason": "test change", "headers": {"Authorization": NEW_SECRET}},
        format="json",
    )
    assert rotated.json()["governed_operations"] == ["warden.connector.change_credentials"]
    review_client = Client()
    review_client.force_login(approver)
    pages, bodies = [], [created.content.decode(), rotated.content.decode()]
    for response in (created, rotated):
        confirmation = _confirmation(response)
        action = confirmation.action_request
        # What the applier needs rides encrypted; people see header names only.
        sealed = action.params["values"]["sealed_headers"]
        assert sealed.startswith("gAAAA")
        assert "Authorization" in json.dumps(action.params["changes"])
        assert "Authorization" in confirmation.summary
        page = review_client.get(
            reverse("admin:approvals_confirmationrequest_review", args=[confirmation.pk])
        )
        assert page.status_code == 200
        pages.append(page.content.decode())
        assert sealed not in pages[-1] and "Authorization" in pages[-1]
        record = review_client.get(
            reverse("admin:approvals_actionrequest_change", args=[action.pk])
        )
        assert record.status_code == 200 and "(encrypted, write-only)" in record.content.decode()
        assert sealed not in record.content.decode()
        pages.append(record.content.decode())
    listed = user_client(approver, gw_workspace).get("/api/v1/approvals")
    assert listed.status_code == 200 and "(encrypted, write-only)" in listed.content.decode()
    bodies.append(listed.content.decode())
    for response in (created, rotated):
        bodies.append(approve(approver, gw_workspace, _confirmation(response).pk).content.decode())
    assert stored_headers(Connector.objects.get(name="other")) == {"Authorization": NEW_SECRET}
    assert stored_headers(Connector.objects.get(name="crm")) == {"Authorization": SECRET}
    text = _everything_stored() + "".join(pages + bodies)
    text += "".join(m.subject + m.body + str(m.alternatives) for m in mail.outbox)
    for secret in (SECRET, NEW_SECRET, "sk-live"):
        assert secret not in text


def test_a_new_url_waits_and_then_disables_the_imported_tools(
    gw_workspace, synced, proposer, approver, approve, upstream
):
    other = upstream.url.replace("/mcp", "/v2/mcp")
    response = proposer.patch(
        f"/api/v1/connectors/{synced.pk}", {"reason": "test change", "url": other}, format="json"
    )
    confirmation = _confirmation(response)
    assert response.json()["governed_operations"] == ["warden.connector.change_url"]
    synced.refresh_from_db()
    assert synced.url == upstream.url
    assert Tool.objects.filter(connector=synced, enabled=True).exists()
    assert approve(approver, gw_workspace, confirmation.pk).status_code == 200
    synced.refresh_from_db()
    assert synced.url == other
    assert not Tool.objects.filter(connector=synced, enabled=True).exists()


def test_narrowing_changes_apply_at_once(gw_workspace, proposer, make_connector):
    connector = make_connector(
        gw_workspace, headers={"Authorization": SECRET, "X-Tenant": "acme-tenant"}
    )
    url = f"/api/v1/connectors/{connector.pk}"
    dropped = proposer.patch(
        url, {"reason": "test change", "headers": {"Authorization": SECRET}}, format="json"
    )
    assert dropped.status_code == 200, dropped.json()
    assert dropped.json()["headers"] == ["Authorization"]
    assert stored_headers(Connector.objects.get()) == {"Authorization": SECRET}
    off = proposer.patch(
        url, {"reason": "test change", "enabled": False, "declared_tools": []}, format="json"
    )
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert proposer.delete(url, {"reason": "test change"}, format="json").status_code == 204
    assert not Connector.objects.exists()
    assert not ActionRequest.objects.exists()


def test_switching_a_connector_back_on_waits_for_another_human(
    gw_workspace, agent_key, approver, approve, make_connector
):
    """Switched off after an incident, a connector must not come back on the word of an
    agent key (or one admin): its tools would execute again."""
    connector = make_connector(gw_workspace)
    _, client = agent_key
    url = f"/api/v1/connectors/{connector.pk}"
    assert (
        client.patch(url, {"reason": "test change", "enabled": False}, format="json").status_code
        == 200
    )
    response = client.patch(url, {"reason": "test change", "enabled": True}, format="json")
    confirmation = _confirmation(response)
    assert response.json()["governed_operations"] == ["warden.connector.enable"]
    assert Connector.objects.get().enabled is False
    assert approve(approver, gw_workspace, confirmation.pk).status_code == 200
    assert Connector.objects.get().enabled is True


def test_same_credentials_resent_is_no_change(gw_workspace, proposer, make_connector):
    connector = make_connector(gw_workspace)
    response = proposer.patch(
        f"/api/v1/connectors/{connector.pk}",
        {"headers": {"Authorization": SECRET}, "reason": "no-op"},
        format="json",
    )
    assert response.status_code == 200


def test_other_workspace_can_neither_propose_nor_approve(
    gw_workspace,
    other_workspace,
    proposer,
    make_connector,
    make_member,
    make_key,
    key_client,
    user_client,
    approve,
    api_error,
    upstream,
):
    connector = make_connector(gw_workspace)
    foreign_admin = make_member(other_workspace, Role.OWNER)
    _, foreign_plain = make_key(other_workspace, scopes=["connectors:write"])
    for client in (key_client(foreign_plain), user_client(foreign_admin, other_workspace)):
        api_error(
            client.patch(
                f"/api/v1/connectors/{connector.pk}",
                {"reason": "test change", "headers": {"Authorization": NEW_SECRET}},
                format="json",
            ),
            404,
            "not_found",
        )
    confirmation = _confirmation(
        proposer.post(
            "/api/v1/connectors",
            {"reason": "test change", **BODY, "name": "crm2", "url": upstream.url},
            format="json",
        )
    )
    api_error(approve(foreign_admin, other_workspace, confirmation.pk), 404, "not_found")
    assert not Connector.objects.filter(name="crm2").exists()
    assert stored_headers(Connector.objects.get(pk=connector.pk)) == {"Authorization": SECRET}


def test_bad_input_is_refused_before_anyone_is_asked(
    proposer, api_error, make_connector, gw_workspace
):
    api_error(
        proposer.post(
            "/api/v1/connectors",
            {"reason": "test change", **BODY, "url": "http://evil.example.com/mcp"},
            format="json",
        ),
        400,
        "validation_error",
    )
    make_connector(gw_workspace)
    api_error(
        proposer.post(
            "/api/v1/connectors",
            {"reason": "test change", **BODY, "url": "http://127.0.0.1:9/mcp"},
            format="json",
        ),
        409,
        "conflict",
    )
    assert not ActionRequest.objects.exists()


def test_revoked_key_cannot_propose(gw_workspace, make_key, key_client, api_error, upstream):
    from keys.services import key_revoke

    key, plaintext = make_key(gw_workspace, scopes=["connectors:write"])
    key_revoke(key=key, actor=SYSTEM, reason="gone")
    api_error(
        key_client(plaintext).post(
            "/api/v1/connectors",
            {"reason": "test change", **BODY, "url": upstream.url},
            format="json",
        ),
        401,
        "key_revoked",
    )
    assert not ActionRequest.objects.exists()


@pytest.mark.parametrize("path", ["save", "update"])
def test_the_guard_refuses_a_write_around_the_door(gw_workspace, make_connector, path):
    from approvals.guard import _GRANTS
    from common.errors import WardenError
    from gateway.services import connector_create, connector_update

    connector = make_connector(gw_workspace)
    token = _GRANTS.set(())
    try:
        with pytest.raises(WardenError, match="loosens governance") as refused:
            if path == "save":
                connector_update(
                    reason="test set-up",
                    connector=connector,
                    actor=SYSTEM,
                    changes={"url": "http://127.0.0.1:1/mcp"},
                )
            else:
                Connector.objects.filter(pk=connector.pk).update(url="http://127.0.0.1:1/mcp")
        assert refused.value.detail["operations"] == ["warden.connector.change_url"]
        with pytest.raises(WardenError, match="loosens governance"):
            connector_update(
                reason="test set-up",
                connector=connector,
                actor=SYSTEM,
                changes={"headers": {"Authorization": NEW_SECRET}},
            )
        with pytest.raises(WardenError, match="loosens governance"):
            connector_create(
                reason="test set-up",
                workspace=gw_workspace,
                actor=SYSTEM,
                name="sneaky",
                url=connector.url,
            )
    finally:
        _GRANTS.reset(token)
    assert Connector.objects.get().url == connector.url
    assert stored_headers(Connector.objects.get()) == {"Authorization": SECRET}


def test_the_admin_files_a_new_connector_for_approval(gw_workspace, upstream):
    client = Client()
    client.force_login(gw_workspace.memberships.get(role=Role.OWNER).user)
    response = client.post(
        "/admin/gateway/connector/add/",
        {
            "reason": "test change",
            "workspace": str(gw_workspace.pk),
            "name": "crm",
            "kind": "mcp",
            "url": upstream.url,
            "headers": json.dumps({"Authorization": SECRET}),
            "declared_tools": "[]",
            "enabled": "on",
        },
        follow=True,
    )
    assert "Not applied yet" in response.content.decode()
    assert SECRET not in response.content.decode()
    assert not Connector.objects.exists()
    action = ActionRequest.objects.get()
    assert action.params["operations"] == ["warden.connector.create"]
    assert SECRET not in json.dumps(action.params)


def _recall(client, method, path, body, first):
    token = first.json()["confirmation_token"]
    send = getattr(client, method)
    return send(path, {**body, "confirmed": True, "confirmation_token": token}, format="json")


def test_the_confirmed_recall_of_an_approved_connector_answers_it_exactly_once(
    gw_workspace, upstream, agent_key, approver, approve, api_error
):
    _, client = agent_key
    body = {"reason": "test change", **BODY, "url": upstream.url}
    first = client.post("/api/v1/connectors", body, format="json")
    pending = _recall(client, "post", "/api/v1/connectors", body, first)
    api_error(pending, 409, "confirmation_pending")
    assert approve(approver, gw_workspace, _confirmation(first).pk).status_code == 200
    done = _recall(client, "post", "/api/v1/connectors", body, first)
    assert done.status_code == 201, done.json()
    connector = Connector.objects.get()
    assert done.json()["id"] == str(connector.pk) and done.json()["headers"] == ["Authorization"]
    assert SECRET not in done.content.decode()
    again = _recall(client, "post", "/api/v1/connectors", body, first)
    api_error(again, 409, "confirmation_used")
    assert Connector.objects.count() == 1
    assert AuditEntry.objects.filter(action="connector.created").count() == 1
    assert stored_headers(connector) == {"Authorization": SECRET}
    assert SECRET not in _everything_stored()


def test_a_recall_with_other_header_values_is_refused(
    gw_workspace, upstream, agent_key, approver, approve, api_error
):
    _, client = agent_key
    body = {"reason": "test change", **BODY, "url": upstream.url}
    first = client.post("/api/v1/connectors", body, format="json")
    assert approve(approver, gw_workspace, _confirmation(first).pk).status_code == 200
    swapped = {**body, "headers": {"Authorization": NEW_SECRET}}
    api_error(
        _recall(client, "post", "/api/v1/connectors", swapped, first), 403, "confirmation_mismatch"
    )
    # The token is still good for the request as approved; the values never changed.
    assert _recall(client, "post", "/api/v1/connectors", body, first).status_code == 201
    assert stored_headers(Connector.objects.get()) == {"Authorization": SECRET}
    assert NEW_SECRET not in _everything_stored()


def test_the_confirmed_recall_of_new_credentials_answers_once(
    gw_workspace, agent_key, approver, approve, api_error, make_connector
):
    _, client = agent_key
    connector = make_connector(gw_workspace)
    path = f"/api/v1/connectors/{connector.pk}"
    body = {"reason": "test change", "headers": {"Authorization": NEW_SECRET}}
    first = client.patch(path, body, format="json")
    assert first.json()["governed_operations"] == ["warden.connector.change_credentials"]
    other = {"headers": {"Authorization": NEW_SECRET + "-other"}}
    assert approve(approver, gw_workspace, _confirmation(first).pk).status_code == 200
    api_error(_recall(client, "patch", path, other, first), 403, "confirmation_mismatch")
    done = _recall(client, "patch", path, body, first)
    assert done.status_code == 200, done.json()
    assert done.json()["id"] == str(connector.pk)
    assert NEW_SECRET not in done.content.decode()
    api_error(_recall(client, "patch", path, body, first), 409, "confirmation_used")
    assert stored_headers(Connector.objects.get(pk=connector.pk)) == {"Authorization": NEW_SECRET}
    assert AuditEntry.objects.filter(action="connector.updated").count() == 1
    assert NEW_SECRET not in _everything_stored()
