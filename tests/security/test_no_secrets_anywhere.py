"""No key secret, confirmation token or secret parameter value ends up in evidence.

A scripted session drives the whole product through the API and the commands: keys
are created, used, rotated and revoked; tools with secret params are cataloged;
agents ask with secret values, humans approve and deny, agents confirm with tokens
(right and wrong), report results; compliance exports, verifies, replays and browses
the evidence. Then every audit row, version log, exception record, approval and
action row, every captured log line (DEBUG, SQL included), every command output and
every API payload that is not the one response issuing a secret is scanned."""

import io
import json

from django.core.management import call_command

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest
from audit.models import AuditEntry, ExceptionRecord, VersionLog
from common.actor import Actor
from keys.models import MachineKey
from tenants.models import Role
from tests.security.conftest import secret_parts

SECRET_VALUES = ["sk_live_51TOPSECRETvalue0001", "4111-1111-1111-1111-SECRET", "hunter2-PASSWORD"]


def _rows(model) -> str:
    return json.dumps(list(model.objects.values()), default=str)


def test_no_secret_reaches_evidence_logs_or_payloads(
    debug_everything, make_workspace, make_key, make_member, key_client, user_client
):
    workspace = make_workspace(writes_enabled=True, mode="live")
    approver = make_member(workspace, Role.APPROVER)
    auditor = make_member(workspace, Role.AUDITOR)
    key_secrets: list[str] = []
    tokens: list[str] = []
    payloads: list[str] = []  # every response that must not carry a secret

    def seen(response):
        payloads.append(response.content.decode())
        return response

    # Keys: an admin agent manages the catalog and other keys through the API.
    _, admin_plain = make_key(workspace, scopes=["workspace:admin"])
    key_secrets.append(admin_plain)
    admin = key_client(admin_plain)
    created = admin.post(
        "/api/v1/keys",
        {
            "reason": "test change",
            "name": "payments-bot",
            "scopes": ["actions:read", "actions:write", "actions:external"],
            "tool_allowlist": ["payments.*", "crm.*"],
        },
        format="json",
    ).json()
    # A key made by a key: its secret goes to the owner's session, claimed once.
    claimer = user_client(MachineKey.objects.get(pk=created["id"]).owner, workspace)
    first = claimer.post(f"/api/v1/keys/{created['id']}/claim").json()["key"]
    key_secrets.append(first)
    rotated = admin.post(
        f"/api/v1/keys/{created['id']}/rotate", {"grace_seconds": 0}, format="json"
    ).json()
    assert "key" not in rotated
    second = claimer.post(f"/api/v1/keys/{created['id']}/claim").json()["key"]
    key_secrets.append(second)
    agent = key_client(second)
    seen(key_client(first).get("/api/v1/whoami"))  # old secret, within its grace
    seen(agent.get("/api/v1/whoami"))

    # Tools with secret params. Adding an enabled tool is governed: the filed request is
    # scanned too, and an operator seeds the tool.
    charge_tool = {
        "name": "payments.charge",
        "level": "external",
        "confirmation": "always",
        "secret_params": ["card", "api_token"],
        "summary_template": "Charge {params.amount} to card {params.card}",
        "reason": "test change",
    }
    assert seen(admin.post("/api/v1/tools", charge_tool, format="json")).status_code == 202
    with operator_seeding():
        tool_create(workspace=workspace, actor=Actor.system("tests"), **charge_tool)
    # A tool that needs no confirmation is a governed change: set up by an operator.
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=Actor.system("tests"),
            name="crm.login",
            level="write",
            secret_params=["password"],
        )

    # Asks with secret values: confirmed once, denied once, a wrong token, a replay.
    def charge(amount):
        return {
            "amount": amount,
            "card": SECRET_VALUES[1],
            "api_token": SECRET_VALUES[0],
        }

    approved = agent.post(
        "/api/v1/actions", {"tool": "payments.charge", "params": charge(10)}, format="json"
    ).json()
    denied = agent.post(
        "/api/v1/actions", {"tool": "payments.charge", "params": charge(99)}, format="json"
    ).json()
    tokens += [approved["confirmation_token"], denied["confirmation_token"]]
    assert all(t.startswith("ct_") for t in tokens)
    assert SECRET_VALUES[1] not in approved["summary"]
    confirmations = {
        c.action_request_id: c.pk for c in ConfirmationRequest.objects.filter(workspace=workspace)
    }
    human = user_client(approver, workspace)
    seen(human.get("/api/v1/approvals"))
    verdicts = [
        human.post(
            f"/api/v1/approvals/{confirmations[_uuid(approved['id'])]}/approve",
            {"reason": "expected invoice"},
            format="json",
        ),
        human.post(
            f"/api/v1/approvals/{confirmations[_uuid(denied['id'])]}/deny",
            {"reason": "too much"},
            format="json",
        ),
    ]
    assert [seen(v).status_code for v in verdicts] == [200, 200]
    wrong = seen(
        agent.post(
            "/api/v1/actions",
            {
                "tool": "payments.charge",
                "params": charge(11),
                "confirmed": True,
                "confirmation_token": approved["confirmation_token"],
            },
            format="json",
        )
    )
    assert wrong.status_code == 403
    statuses = []
    for _ in range(2):  # allowed once, then confirmation_used
        statuses.append(
            seen(
                agent.post(
                    "/api/v1/actions",
                    {
                        "tool": "payments.charge",
                        "params": charge(10),
                        "confirmed": True,
                        "confirmation_token": approved["confirmation_token"],
                    },
                    format="json",
                )
            ).status_code
        )
    assert statuses == [200, 409]
    login = seen(
        agent.post(
            "/api/v1/actions",
            {"tool": "crm.login", "params": {"user": "bob", "password": SECRET_VALUES[2]}},
            format="json",
        )
    )
    assert login.status_code == 200, login.json()
    seen(
        agent.post(
            f"/api/v1/actions/{login.json()['id']}/result",
            {"status": "succeeded", "output": {"session": "ok"}},
            format="json",
        )
    )
    seen(agent.get(f"/api/v1/actions/{approved['id']}"))
    seen(admin.post(f"/api/v1/keys/{created['id']}/revoke", {"reason": "done"}, format="json"))
    seen(agent.get("/api/v1/whoami"))  # revoked

    # Compliance: API, export, verify, replay.
    compliance = user_client(auditor, workspace)
    for url in ("/api/v1/audit", "/api/v1/audit/exceptions", "/api/v1/audit/versions"):
        seen(compliance.get(url, {"page_size": 500}))
        seen(admin.get(url, {"page_size": 500}))
    outputs = []
    for command, *args in (
        ("audit_export", workspace.slug),
        ("audit_verify", workspace.slug),
        ("audit_replay", approved["id"]),
        ("audit_replay", login.json()["id"]),
    ):
        out, err = io.StringIO(), io.StringIO()
        call_command(command, *args, stdout=out, stderr=err)
        outputs += [out.getvalue(), err.getvalue()]
    assert '"action":"confirmation.used"' in outputs[0]

    logs = debug_everything.text + "\n".join(str(r.args) for r in debug_everything.records)
    assert "INSERT" in logs  # SQL really was logged
    stores = {
        model.__name__: _rows(model)
        for model in (
            AuditEntry,
            VersionLog,
            ExceptionRecord,
            ActionRequest,
            ConfirmationRequest,
            ApprovalRecord,
        )
    }
    assert SECRET_VALUES[0] not in stores["ActionRequest"]
    secrets = SECRET_VALUES + tokens + [p for k in key_secrets for p in secret_parts(k)]
    places = {"logs": logs, **stores}
    places.update({f"payload {i}": body for i, body in enumerate(payloads)})
    places.update({f"command output {i}": text for i, text in enumerate(outputs)})
    leaks = [(secret[:12], where) for secret in secrets for where, text in places.items()
             if secret in text]  # fmt: skip
    assert leaks == []


def _uuid(value):
    import uuid

    return uuid.UUID(value)
