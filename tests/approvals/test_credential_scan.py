"""Credential-shaped values in parameters nobody declared secret are stored only as a
digest, never shown to approvers, and open an exception record."""

import pytest

from approvals.credential_scan import CREDENTIAL_PREFIX
from approvals.models import ActionRequest, ConfirmationRequest
from audit.models import AuditEntry, ExceptionRecord
from audit.verify import verify_chain
from tenants.models import Role

pytestmark = pytest.mark.django_db

# Shaped like real credentials (provider formats), but not real ones.
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
DB_URL = "postgres://app:s3cr3t-pass@db.internal:5432/app"


def _stored_everywhere(workspace) -> str:
    """Every place a request's params could be kept, as one string."""
    requests = ActionRequest.objects.filter(workspace=workspace)
    rows = [
        # Params as stored: the sealed ones opened (approvals.personal_data) and the rest.
        *((a.params, a.plain_params, a.outcome) for a in requests),
        *AuditEntry.objects.filter(workspace=workspace).values_list("input", "rationale"),
        *ExceptionRecord.objects.filter(workspace=workspace).values_list("evidence", "why"),
        *(c.summary for c in ConfirmationRequest.objects.filter(workspace=workspace)),
    ]
    return str(rows)


@pytest.fixture
def lookup(make_tool, live_workspace):
    return make_tool(live_workspace, "crm.lookup", level="read")


@pytest.mark.parametrize("credential", [AWS_KEY, GITHUB_TOKEN, PRIVATE_KEY, DB_URL])
def test_a_credential_in_an_undeclared_param_is_stored_as_a_digest(
    lookup, agent, ask, live_workspace, credential
):
    _, client = agent
    response = ask(client, "crm.lookup", {"customer_id": 7, "note": credential})
    assert response.status_code == 200, response.json()
    action = ActionRequest.objects.get(pk=response.json()["id"])
    assert action.params["customer_id"] == 7
    assert action.params["note"].startswith(CREDENTIAL_PREFIX)
    assert credential not in _stored_everywhere(live_workspace)
    assert credential.split("\n")[0][-12:] not in _stored_everywhere(live_workspace)


def test_nested_credentials_are_found_and_the_exception_says_where(
    lookup, agent, ask, live_workspace
):
    _, client = agent
    params = {"auth": {"headers": [{"value": GITHUB_TOKEN}]}, "q": "ann"}
    response = ask(client, "crm.lookup", params)
    assert response.status_code == 200
    action = ActionRequest.objects.get(pk=response.json()["id"])
    assert action.params["q"] == "ann"
    assert action.params["auth"]["headers"][0]["value"].startswith(CREDENTIAL_PREFIX)
    record = ExceptionRecord.objects.get(workspace=live_workspace)
    assert record.kind == "credential_in_params" and record.severity == "high"
    assert record.evidence["action_request"] == str(action.pk)
    assert record.evidence["paths"] == ["params.auth.headers[0].value"]
    assert record.audit_entry.action == "params.credential_digested"
    assert GITHUB_TOKEN not in _stored_everywhere(live_workspace)
    assert verify_chain(live_workspace).ok


def test_the_exception_is_listed_for_compliance_through_the_api(
    lookup, agent, ask, live_workspace, make_member, user_client
):
    _, client = agent
    ask(client, "crm.lookup", {"token": AWS_KEY})
    auditor = make_member(live_workspace, Role.AUDITOR)
    listing = user_client(auditor, live_workspace).get(
        "/api/v1/audit/exceptions", {"kind": "credential_in_params"}
    )
    assert listing.status_code == 200
    [row] = listing.json()["results"]
    assert row["evidence"]["tool"] == "crm.lookup"
    assert AWS_KEY not in listing.content.decode()


@pytest.mark.parametrize(
    "value",
    [
        "ann@example.com",
        "9b2c4f7e-8a1d-3c5b-6e7f-8a9b0c1d2e3f",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Refund order 12345 because the parcel never arrived.",
        "https://example.com/orders/12345?page=2",
    ],
)
def test_ordinary_values_are_kept_as_given(lookup, agent, ask, live_workspace, value):
    _, client = agent
    response = ask(client, "crm.lookup", {"note": value})
    action = ActionRequest.objects.get(pk=response.json()["id"])
    assert action.params == {"note": value}
    assert not ExceptionRecord.objects.filter(workspace=live_workspace).exists()


def test_a_declared_secret_param_is_not_reported_again(make_tool, agent, ask, live_workspace):
    make_tool(live_workspace, "crm.login", level="read", secret_params=["password"])
    _, client = agent
    response = ask(client, "crm.login", {"password": AWS_KEY})
    action = ActionRequest.objects.get(pk=response.json()["id"])
    assert action.params["password"].startswith("hmac-sha256:")
    assert not ExceptionRecord.objects.filter(workspace=live_workspace).exists()


def test_approvers_never_see_the_credential_and_the_approved_call_still_matches(
    make_tool, agent, ask, live_workspace, approver, approve
):
    make_tool(
        live_workspace,
        "email.send",
        level="external",
        confirmation="always",
        summary_template="Send {params.body} to {params.to}",
    )
    _, client = agent
    params = {"to": "ann@example.com", "body": f"the key is {AWS_KEY}"}
    first = ask(client, "email.send", params)
    assert first.status_code == 202, first.json()
    assert AWS_KEY not in first.content.decode()
    assert "[credential]" in first.json()["summary"]
    action = ActionRequest.objects.get(pk=first.json()["id"])
    assert approve(approver, live_workspace, action.confirmation.pk).status_code == 200
    token = first.json()["confirmation_token"]
    again = ask(client, "email.send", params, confirmed=True, confirmation_token=token)
    assert again.status_code == 200, again.json()
    assert AWS_KEY not in _stored_everywhere(live_workspace)


def test_a_credential_nested_as_deep_as_the_api_allows_is_still_masked(
    lookup, agent, ask, live_workspace
):
    params = {"token": AWS_KEY}
    for _ in range(62):  # 63 levels of params: the deepest body the API parses
        params = {"a": params}
    _, client = agent
    response = ask(client, "crm.lookup", params)
    assert response.status_code == 200, response.json()
    assert AWS_KEY not in _stored_everywhere(live_workspace)
    assert ExceptionRecord.objects.filter(workspace=live_workspace).count() == 1
