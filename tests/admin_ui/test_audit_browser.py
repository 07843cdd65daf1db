import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry, ExceptionRecord, VersionLog
from audit.services import audit_record, exception_record
from common.actor import Actor
from tenants.models import Role

LIST = "/admin/audit/auditentry/"
VERIFY = "/admin/audit/auditentry/verify/"
EVIDENCE_LISTS = (
    "/admin/audit/auditentry/",
    "/admin/audit/versionlog/",
    "/admin/audit/exceptionrecord/",
    "/admin/approvals/approvalrecord/",
)


def _record(workspace, actor, action, **fields):
    with transaction.atomic():
        return audit_record(EVENTS[action].event(**fields), workspace=workspace, actor=actor)


@pytest.fixture
def evidence(workspace, make_key):
    key, _ = make_key(workspace)
    agent = Actor.for_key(key, request_id="req-agent-1")
    _record(
        workspace, agent, action=AuditAction.ACTION_DECIDED, tool="crm.read", decision="allowed"
    )
    _record(
        workspace,
        agent,
        action=AuditAction.ACTION_DECIDED,
        tool="email.send",
        decision="requires_confirmation",
    )
    with transaction.atomic():
        exception_record(
            workspace=workspace,
            actor=Actor.system("tests"),
            kind="anomaly",
            severity="high",
            what="Burst of denials",
            why="10 in a minute",
        )
    return workspace


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.OWNER, 200), (Role.ADMIN, 200), (Role.AUDITOR, 200), (Role.APPROVER, 403)],
)
@pytest.mark.parametrize("url", EVIDENCE_LISTS)
def test_evidence_lists_by_role(evidence, role_users, admin_client_for, role, status, url):
    assert admin_client_for(role_users[role]).get(url).status_code == status


@pytest.mark.parametrize("url", EVIDENCE_LISTS)
def test_member_has_no_admin(evidence, role_users, admin_client_for, url):
    response = admin_client_for(role_users[Role.MEMBER]).get(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_auditor_sees_this_workspaces_entries(evidence, role_users, admin_client_for):
    response = admin_client_for(role_users[Role.AUDITOR]).get(LIST)
    assert response.status_code == 200
    seqs = {e.seq for e in response.context["cl"].result_list}
    assert seqs == set(AuditEntry.objects.filter(workspace=evidence).values_list("seq", flat=True))


def test_other_workspace_auditor_sees_none_of_these_rows(
    evidence, other_workspace, make_member, admin_client_for
):
    client = admin_client_for(make_member(other_workspace, Role.AUDITOR))
    response = client.get(LIST)
    assert all(e.workspace_id == other_workspace.pk for e in response.context["cl"].result_list)
    entry = AuditEntry.objects.filter(workspace=evidence).first()
    assert client.get(f"{LIST}{entry.pk}/change/").status_code in (302, 403, 404)
    record = ExceptionRecord.objects.get(workspace=evidence)
    assert client.get(f"/admin/audit/exceptionrecord/{record.pk}/change/").status_code in (
        302,
        403,
        404,
    )


def test_filter_by_actor_prefix(evidence, role_users, admin_client_for):
    client = admin_client_for(role_users[Role.AUDITOR])
    keys = client.get(LIST, {"actor_prefix": "key:"}).context["cl"].result_list
    assert keys and all(e.actor.startswith("key:") for e in keys)
    systems = client.get(LIST, {"actor_prefix": "system:"}).context["cl"].result_list
    assert systems and all(e.actor.startswith("system:") for e in systems)


def test_filter_by_tool_decision_and_action(evidence, role_users, admin_client_for):
    client = admin_client_for(role_users[Role.AUDITOR])
    rows = client.get(LIST, {"tool": "email.send"}).context["cl"].result_list
    assert [e.tool for e in rows] == ["email.send"]
    rows = client.get(LIST, {"decision": "allowed"}).context["cl"].result_list
    assert [e.tool for e in rows] == ["crm.read"]
    rows = client.get(LIST, {"action__exact": "anomaly.detected"}).context["cl"].result_list
    assert len(rows) == 1


def test_search_by_request_id(evidence, role_users, admin_client_for):
    client = admin_client_for(role_users[Role.AUDITOR])
    rows = client.get(LIST, {"q": "req-agent-1"}).context["cl"].result_list
    assert len(rows) == 2 and all(e.request_id == "req-agent-1" for e in rows)
    assert len(client.get(LIST, {"q": "nope"}).context["cl"].result_list) == 0


def test_date_hierarchy_drilldown(evidence, role_users, admin_client_for):
    entry = AuditEntry.objects.filter(workspace=evidence).first()
    response = admin_client_for(role_users[Role.AUDITOR]).get(
        LIST, {"created_at__year": entry.created_at.year}
    )
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 3


def test_detail_page_is_read_only_and_escapes_input(evidence, role_users, admin_client_for):
    with transaction.atomic():
        event = EVENTS[AuditAction.ACTION_DECIDED].event(
            input={"params": {"x": "<script>alert(1)</script>"}}
        )
        entry = audit_record(event, workspace=evidence, actor=Actor.system("tests"))
    response = admin_client_for(role_users[Role.AUDITOR]).get(f"{LIST}{entry.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'name="_save"' not in html


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root@example.test", "root@example.test", "pw")


@pytest.mark.parametrize("model_url", EVIDENCE_LISTS)
def test_nobody_adds_changes_or_deletes_evidence_not_even_superusers(
    evidence, superuser, role_users, admin_client_for, model_url
):
    for user in (superuser, role_users[Role.OWNER]):
        client = admin_client_for(user)
        assert client.get(f"{model_url}add/").status_code == 403
    entry = AuditEntry.objects.filter(workspace=evidence).first()
    client = admin_client_for(superuser)
    assert client.get(f"{LIST}{entry.pk}/delete/").status_code == 403
    response = client.post(f"{LIST}{entry.pk}/change/", {"actor": "user:forged"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.actor != "user:forged"
    html = client.get(LIST).content.decode()
    assert "delete_selected" not in html


def test_version_log_shows_before_and_after(evidence, role_users, admin_client_for):
    log = VersionLog.objects.filter(workspace=evidence).first()
    response = admin_client_for(role_users[Role.AUDITOR]).get(
        f"/admin/audit/versionlog/{log.pk}/change/"
    )
    assert response.status_code == 200
    assert "warden-json" in response.content.decode()


def test_verify_button_runs_verification_and_shows_result(evidence, role_users, admin_client_for):
    client = admin_client_for(role_users[Role.AUDITOR])
    assert 'id="verify-chain-form"' in client.get(LIST).content.decode()
    response = client.post(VERIFY, {"workspace": evidence.slug})
    assert response.status_code == 200
    html = response.content.decode()
    assert "verifies" in html
    entry = AuditEntry.objects.filter(workspace=evidence, action=AuditAction.AUDIT_VERIFIED).get()
    assert entry.outcome == "ok"


def _tamper(entry):
    """Edit a row behind the model's back, as an attacker with database access would."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:  # step past the append-only trigger, for this transaction only
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE audit_auditentry SET rationale = %s WHERE id = %s", ["forged", entry.pk]
        )
        if postgres:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def test_verify_shows_a_broken_chain(evidence, role_users, admin_client_for):
    victim = AuditEntry.objects.get(workspace=evidence, tool="crm.read")
    _tamper(victim)
    response = admin_client_for(role_users[Role.AUDITOR]).post(VERIFY, {"workspace": evidence.slug})
    html = response.content.decode()
    assert "does not verify" in html
    assert f"#{victim.seq}" in html


def test_verify_other_workspace_is_not_found(
    evidence, other_workspace, make_member, admin_client_for
):
    client = admin_client_for(make_member(other_workspace, Role.AUDITOR))
    assert client.post(VERIFY, {"workspace": evidence.slug}).status_code == 404
    assert not AuditEntry.objects.filter(
        workspace=evidence, action=AuditAction.AUDIT_VERIFIED
    ).exists()


def test_approver_cannot_verify(evidence, role_users, admin_client_for):
    response = admin_client_for(role_users[Role.APPROVER]).post(
        VERIFY, {"workspace": evidence.slug}
    )
    assert response.status_code == 403


def test_verify_requires_csrf(evidence, role_users):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(role_users[Role.AUDITOR])
    assert client.post(VERIFY, {"workspace": evidence.slug}).status_code == 403


def test_verify_goes_to_celery_when_a_worker_is_configured(
    evidence, role_users, admin_client_for, settings, monkeypatch
):
    tasks = pytest.importorskip("oversight.tasks")
    queued = []

    class _Result:
        id = "task-123"

    def delay(*args, **kwargs):
        queued.append(args)
        return _Result()

    monkeypatch.setattr(tasks.verify_chain_task, "delay", delay)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    response = admin_client_for(role_users[Role.AUDITOR]).post(VERIFY, {"workspace": evidence.slug})
    assert response.status_code == 200
    auditor = role_users[Role.AUDITOR]
    assert queued == [(str(evidence.pk), f"user:{auditor.email}")]  # who asked is recorded
    assert "task-123" in response.content.decode()
    assert not AuditEntry.objects.filter(
        workspace=evidence, action=AuditAction.AUDIT_VERIFIED
    ).exists()


@pytest.mark.parametrize("url", EVIDENCE_LISTS)
def test_filters_never_name_another_workspace(
    evidence, other_workspace, make_member, admin_client_for, url
):
    evidence.name = "Zeta Confidential Tenant"
    evidence.save()
    html = admin_client_for(make_member(other_workspace, Role.AUDITOR)).get(url).content.decode()
    assert "Zeta Confidential Tenant" not in html
    assert f"workspace={evidence.slug}&" not in html
    assert f'workspace={evidence.slug}"' not in html


def test_workspace_filter_narrows_to_one_workspace(
    evidence, other_workspace, role_users, admin_client_for
):
    from tenants.services import membership_add
    from tests.conftest import SYSTEM

    auditor = role_users[Role.AUDITOR]
    membership_add(
        reason="test set-up",
        workspace=other_workspace,
        user=auditor,
        role=Role.AUDITOR,
        actor=SYSTEM,
    )
    client = admin_client_for(auditor)
    both = {e.workspace_id for e in client.get(LIST).context["cl"].result_list}
    assert both == {evidence.pk, other_workspace.pk}
    one = client.get(LIST, {"workspace": other_workspace.slug}).context["cl"].result_list
    assert {e.workspace_id for e in one} == {other_workspace.pk}


def test_verify_page_lists_the_latest_verdicts_without_running_one(
    evidence, role_users, admin_client_for
):
    client = admin_client_for(role_users[Role.AUDITOR])
    client.post(VERIFY, {"workspace": evidence.slug})
    response = client.get(VERIFY, {"workspace": evidence.slug})
    assert response.status_code == 200
    assert len(response.context["last_verifications"]) == 1
    assert "chain intact" in response.content.decode()
    assert AuditEntry.objects.filter(action=AuditAction.AUDIT_VERIFIED).count() == 1


def test_exception_records_filter_open_and_resolved(evidence, role_users, admin_client_for):
    from audit.services import exception_resolve

    with transaction.atomic():
        second = exception_record(
            workspace=evidence,
            actor=Actor.system("tests"),
            kind="denial",
            severity="low",
            what="Refused",
            why="scope",
        )
    exception_resolve(record=second, actor=Actor.system("tests"), mitigation="rotated key")
    client = admin_client_for(role_users[Role.AUDITOR])
    url = "/admin/audit/exceptionrecord/"
    open_rows = client.get(url, {"resolved": "no"}).context["cl"].result_list
    resolved_rows = client.get(url, {"resolved": "yes"}).context["cl"].result_list
    assert [r.what for r in open_rows] == ["Burst of denials"]
    assert [r.what for r in resolved_rows] == ["Refused"]


def test_verify_shows_a_forged_queue_row_it_quarantined(evidence, role_users, admin_client_for):
    """Issue 21 item 6: a row slipped into the group-commit queue is quarantined by the
    verification's seal, and the page says so (tests/audit/test_queue_forgery.py)."""
    from tests.audit.helpers import FORGED_ACTOR, forge_queue_row

    forge_queue_row(evidence)
    response = admin_client_for(role_users[Role.AUDITOR]).post(VERIFY, {"workspace": evidence.slug})
    html = response.content.decode()
    assert "does not verify" in html
    assert "quarantined queue row" in html
    assert "Rows in quarantine" in html
    assert not AuditEntry.objects.filter(workspace=evidence, actor=FORGED_ACTOR).exists()
    assert ExceptionRecord.objects.filter(workspace=evidence, kind="queue_forged").exists()
