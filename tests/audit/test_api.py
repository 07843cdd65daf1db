import pytest

from tests.audit.helpers import append


@pytest.fixture
def reader(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["audit:read"])
    return key_client(plaintext)


def test_audit_list_is_newest_first_with_stable_schema(workspace, reader):
    append(workspace, 3)
    response = reader.get("/api/v1/audit")
    assert response.status_code == 200, response.json()
    body = response.json()
    seqs = [row["seq"] for row in body["results"]]
    assert seqs == sorted(seqs, reverse=True)
    assert set(body["results"][0]) == {
        "workspace",
        "seq",
        "created_at",
        "actor",
        "actor_type",
        "action",
        "target_type",
        "target_id",
        "tool",
        "input",
        "decision",
        "rationale",
        "policy_version",
        "request_id",
        "client_ip",
        "outcome",
        "prev_hash",
        "hash",
    }


def test_key_without_audit_read_is_refused(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, scopes=["actions:read"])
    response = key_client(plaintext).get("/api/v1/audit")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_by_scope"
