"""Evidence never crosses tenants: another workspace's key or user gets nothing of
this workspace's audit entries, exceptions or version logs, whatever they send."""

import pytest
from django.db import transaction

from audit.models import AuditEntry
from audit.services import exception_record
from tenants.models import Role
from tests.audit.helpers import AGENT, append

URLS = ("/api/v1/audit", "/api/v1/audit/exceptions", "/api/v1/audit/versions")


@pytest.fixture
def victim(make_workspace):
    workspace = make_workspace()
    append(workspace, 5, tool="victim.secret_tool")
    with transaction.atomic():
        exception_record(
            workspace=workspace, actor=AGENT, kind="anomaly", severity="high",
            what="victim anomaly", why="victim",
        )  # fmt: skip
    return workspace


@pytest.fixture
def intruder(make_workspace):
    workspace = make_workspace()
    append(workspace, 2)
    with transaction.atomic():
        exception_record(
            workspace=workspace, actor=AGENT, kind="denial", severity="low", what="own", why="own"
        )
    return workspace


def _ids_of(workspace) -> set[str]:
    return {str(workspace.pk), workspace.slug}


def _leaks(body: dict, victim) -> list:
    text = str(body)
    return [marker for marker in (str(victim.pk), "victim") if marker in text]


@pytest.mark.parametrize("url", URLS)
def test_other_workspaces_key_sees_only_its_own(victim, intruder, make_key, key_client, url):
    _, plaintext = make_key(intruder, scopes=["workspace:admin"])
    response = key_client(plaintext).get(url, {"page_size": 500})
    assert response.status_code == 200
    assert response.json()["results"]
    assert _leaks(response.json(), victim) == []


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("how", ["header", "query"])
def test_key_naming_another_workspace_is_refused(victim, intruder, make_key, key_client, url, how):
    _, plaintext = make_key(intruder, scopes=["audit:read"])
    client = key_client(plaintext)
    for ident in _ids_of(victim):
        if how == "header":
            response = client.get(url, HTTP_X_WARDEN_WORKSPACE=ident)
        else:
            response = client.get(url, {"workspace": ident})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "workspace_mismatch"
        assert _leaks(response.json(), victim) == []


@pytest.mark.parametrize("url", URLS)
def test_other_workspaces_auditor_gets_nothing_of_this_one(
    victim, intruder, make_member, user_client, url
):
    auditor = make_member(intruder, Role.AUDITOR)
    own = user_client(auditor).get(url, {"page_size": 500})
    assert own.status_code == 200
    assert _leaks(own.json(), victim) == []
    for ident in _ids_of(victim):
        response = user_client(auditor).get(url, HTTP_X_WARDEN_WORKSPACE=ident)
        assert response.status_code == 403
        assert _leaks(response.json(), victim) == []


def test_member_of_both_sees_each_only_when_named_and_permitted(
    victim, intruder, make_user, user_client
):
    from tenants.services import membership_add
    from tests.conftest import SYSTEM

    user = make_user()
    membership_add(workspace=victim, user=user, role=Role.MEMBER, actor=SYSTEM)
    membership_add(workspace=intruder, user=user, role=Role.AUDITOR, actor=SYSTEM)
    client = user_client(user)
    assert client.get("/api/v1/audit").json()["error"]["code"] == "workspace_required"
    mine = client.get("/api/v1/audit", HTTP_X_WARDEN_WORKSPACE=intruder.slug)
    assert mine.status_code == 200 and _leaks(mine.json(), victim) == []
    theirs = client.get("/api/v1/audit", HTTP_X_WARDEN_WORKSPACE=victim.slug)
    assert theirs.status_code == 403  # a member, but without view_audit there


def test_cursor_from_one_workspace_reveals_nothing_in_another(
    victim, intruder, make_key, key_client
):
    append(victim, 30)
    _, victim_plain = make_key(victim, scopes=["audit:read"])
    page = key_client(victim_plain).get("/api/v1/audit", {"page_size": 5}).json()
    _, intruder_plain = make_key(intruder, scopes=["audit:read"])
    replayed = key_client(intruder_plain).get(page["next"])
    assert replayed.status_code == 200
    assert _leaks(replayed.json(), victim) == []
    assert all(
        AuditEntry.objects.filter(workspace=intruder, seq=row["seq"]).exists()
        for row in replayed.json()["results"]
    )
