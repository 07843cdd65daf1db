"""GET /api/v1/audit, /audit/exceptions and /audit/versions: filters, cursor pages,
constant query count, scope and permission checks."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import exception_record, exception_resolve
from keys.services import key_revoke
from tenants.models import Role
from tenants.services import workspace_update
from tests.audit.helpers import AGENT, HUMAN, append
from tests.audit.test_export import readme_recipe

AUDIT_FIELDS = {
    "workspace", "seq", "created_at", "actor", "actor_type", "action", "target_type",
    "target_id", "tool", "input", "decision", "rationale", "policy_version", "request_id",
    "client_ip", "outcome", "prev_hash", "hash",
}  # fmt: skip


@pytest.fixture
def reader(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["audit:read"])
    return key_client(plaintext)


def _all(client, url, **params):
    rows, page = [], client.get(url, params)
    while True:
        assert page.status_code == 200, page.json()
        body = page.json()
        rows.extend(body["results"])
        if not body["next"]:
            return rows
        page = client.get(body["next"])


def test_audit_list_is_newest_first_with_stable_schema(workspace, reader):
    append(workspace, 3)
    body = reader.get("/api/v1/audit").json()
    seqs = [row["seq"] for row in body["results"]]
    assert seqs == sorted(seqs, reverse=True)
    assert set(body["results"][0]) == AUDIT_FIELDS
    assert set(body) == {"next", "previous", "results"}


def test_api_rows_verify_with_the_readme_recipe(workspace, reader):
    append(workspace, 12)
    import json

    rows = sorted(_all(reader, "/api/v1/audit", page_size=5), key=lambda r: r["seq"])
    lines = [json.dumps({k: v for k, v in r.items() if k != "actor_type"}) for r in rows]
    assert readme_recipe()(lines) == len(rows)


def test_cursor_pagination_walks_every_entry_once(workspace, reader):
    append(workspace, 23)
    rows = _all(reader, "/api/v1/audit", page_size=5)
    seqs = [r["seq"] for r in rows]
    assert seqs == list(range(AuditEntry.objects.filter(workspace=workspace).count(), 0, -1))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"actor_prefix": "key:"}, {"key:00000000-0000-0000-0000-0000000000aa"}),
        ({"actor_prefix": "user"}, {"user:alice@example.test"}),
        ({"actor": "user:alice@example.test"}, {"user:alice@example.test"}),
        ({"tool": "mail.send"}, {"user:alice@example.test"}),
        ({"decision": "denied"}, {"user:alice@example.test"}),
        ({"action": "action.decided", "request_id": "r-1"}, {AGENT.label}),
    ],
)
def test_filters(workspace, reader, params, expected):
    append(workspace, 3)
    append(workspace, 2, actor=HUMAN, tool="mail.send", decision="denied")
    rows = reader.get("/api/v1/audit", params).json()["results"]
    assert rows
    assert {r["actor"] for r in rows} == expected


def test_time_range_filter(make_workspace, make_key, key_client):
    with time_machine.travel(timezone.now() - timedelta(days=5)):
        workspace = make_workspace()
        append(workspace, 3)
    _, plaintext = make_key(workspace, scopes=["audit:read"])
    since = (timezone.now() - timedelta(days=1)).isoformat()
    rows = key_client(plaintext).get("/api/v1/audit", {"since": since}).json()["results"]
    assert rows and all(r["action"] != "action.decided" for r in rows)
    until = (timezone.now() - timedelta(days=1)).date().isoformat()
    old = key_client(plaintext).get("/api/v1/audit", {"until": until}).json()["results"]
    assert sum(r["action"] == "action.decided" for r in old) == 3


@pytest.mark.parametrize(
    "params",
    [{"actor_prefix": "robot:"}, {"since": "last tuesday"}, {"tool": "x" * 201}],
)
def test_bad_filters_are_validation_errors(reader, params):
    response = reader.get("/api/v1/audit", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("page_size", [10, 100])
def test_query_count_is_constant_per_page(
    workspace, reader, django_assert_max_num_queries, page_size
):
    append(workspace, 2 * page_size + 1)
    reader.get("/api/v1/audit")  # warm: key last_used_at touch happens once a minute
    with django_assert_max_num_queries(3):
        first = reader.get("/api/v1/audit", {"page_size": page_size, "actor_prefix": "key:"})
    assert len(first.json()["results"]) == page_size
    with django_assert_max_num_queries(3):
        second = reader.get(first.json()["next"])
    assert len(second.json()["results"]) == page_size


@pytest.mark.parametrize("page_size", [10, 100])
def test_query_count_is_constant_per_page_for_humans(
    workspace, make_member, user_client, django_assert_max_num_queries, page_size
):
    append(workspace, 120)
    client = user_client(make_member(workspace, Role.AUDITOR), workspace)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/audit", {"page_size": page_size})
    assert len(response.json()["results"]) == page_size


def test_key_without_audit_read_is_refused(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    response = key_client(plaintext).get("/api/v1/audit")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_by_scope"


def test_workspace_admin_scope_implies_audit_read(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["workspace:admin"])
    assert key_client(plaintext).get("/api/v1/audit").status_code == 200


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.AUDITOR, 200), (Role.ADMIN, 200), (Role.OWNER, 200), (Role.APPROVER, 403),
     (Role.MEMBER, 403)],
)  # fmt: skip
def test_humans_need_view_audit(workspace, make_member, user_client, role, status):
    client = user_client(make_member(workspace, role), workspace)
    for url in ("/api/v1/audit", "/api/v1/audit/exceptions", "/api/v1/audit/versions"):
        assert client.get(url).status_code == status


def test_anonymous_is_refused(client, workspace):
    assert client.get("/api/v1/audit").status_code == 401


def test_exceptions_list_and_filters(workspace, reader):
    with transaction.atomic():
        low = exception_record(
            workspace=workspace,
            actor=AGENT,
            kind="denial",
            severity="low",
            what="a",
            why="b",
            subject="key:1",
        )
        exception_record(
            workspace=workspace,
            actor=AGENT,
            kind="anomaly",
            severity="high",
            what="c",
            why="d",
            evidence={"rate": 500},
        )
    exception_resolve(record=low, actor=HUMAN, mitigation="fine")
    rows = reader.get("/api/v1/audit/exceptions").json()["results"]
    assert [r["kind"] for r in rows] == ["anomaly", "denial"]
    assert set(rows[0]) == {
        "id", "created_at", "kind", "severity", "what", "why", "evidence", "mitigation",
        "subject", "resolved", "resolved_by", "resolved_at", "audit_seq",
    }  # fmt: skip
    assert rows[1]["resolved"] is True and rows[1]["resolved_by"] == HUMAN.label
    open_only = reader.get("/api/v1/audit/exceptions", {"resolved": "false"}).json()["results"]
    assert [r["kind"] for r in open_only] == ["anomaly"]
    high = reader.get("/api/v1/audit/exceptions", {"severity": "high"}).json()["results"]
    assert high[0]["evidence"] == {"rate": 500}
    assert reader.get("/api/v1/audit/exceptions", {"kind": "nope"}).status_code == 400


def test_versions_list_shows_before_after_and_diff(workspace, reader, make_key):
    key, _ = make_key(workspace, scopes=["actions:read"])
    key_revoke(key=key, actor=HUMAN, reason="leaked")
    workspace_update(
        workspace=workspace,
        actor=HUMAN,
        changes={"require_two_approvals_for_irreversible": True},
        reason="stricter",
    )
    rows = reader.get("/api/v1/audit/versions", {"target_type": "machine_key"}).json()["results"]
    revoke = rows[0]
    assert set(revoke) == {
        "id", "created_at", "actor", "target_type", "target_id", "change", "before", "after",
        "diff", "reason", "policy_version", "audit_seq",
    }  # fmt: skip
    assert (revoke["change"], revoke["reason"]) == ("updated", "leaked")
    assert revoke["actor"] == HUMAN.label
    assert revoke["diff"]["revoked_at"][0] is None
    settings = reader.get(
        "/api/v1/audit/versions", {"target_type": "workspace", "target_id": str(workspace.pk)}
    ).json()["results"]
    assert settings[0]["diff"] == {"require_two_approvals_for_irreversible": [False, True]}
    assert settings[-1]["change"] == "created"


def test_versions_query_count_is_constant(
    workspace, reader, make_key, django_assert_max_num_queries
):
    for _ in range(12):
        make_key(workspace)
    reader.get("/api/v1/audit/versions")
    with django_assert_max_num_queries(3):
        body = reader.get("/api/v1/audit/versions", {"page_size": 10}).json()
    assert len(body["results"]) == 10
