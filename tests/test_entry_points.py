"""Entry points tested as they run (DESIGN.md principle 14): every management command,
Celery task and admin action here runs outside any test transaction
(`django_db(transaction=True)`, see tests/entry_points.py), as at a shell or in a
worker, and each test checks the state change and its evidence are both there, or both
absent on a refusal. The README's command-line examples are run exactly as printed.

The meta-test at the end fails when a command, a task or an admin action has no such
test. Keep these fast: every transactional test flushes the database."""

from __future__ import annotations

import importlib
import inspect
import io
import json
import shlex
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command, get_commands
from django.test import Client
from django.utils import timezone

from approvals import catalog
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ConfirmationRequest
from audit.models import AuditCheckpoint, AuditEntry, ExceptionRecord
from audit.services import checkpoint_create
from common.actor import Actor
from keys.models import MachineKey
from oversight.admin_urls import privacy_urlpatterns
from tenants.models import Membership, Role, Workspace
from tests.docs import snippet
from tests.entry_points import MODULES, entry_point

User = get_user_model()
SYSTEM = Actor.system("tests")
OUR_APPS = ("approvals", "audit", "tenants", "keys", "notifications", "gateway", "oversight")


def tool_create(**fields):
    """Set-up, as an operator would seed the catalog (governance is not tested here)."""
    fields.setdefault("reason", "test set-up")
    with operator_seeding():
        return catalog.tool_create(**fields)


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def audit(workspace, action, **filters):
    return AuditEntry.objects.filter(workspace=workspace, action=action, **filters)


def overrides(workspace):
    return ExceptionRecord.objects.filter(workspace=workspace, kind="override")


# --- the README's command lines, as printed ----------------------------------------------


def snippet_commands(name: str) -> list[tuple[dict, list[str]]]:
    """The documentation's `<!-- snippet: NAME -->` shell block, as (environment, argv)
    per command."""
    block = snippet(name)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        argv = shlex.split(line)
        env = {}
        while "=" in argv[0] and not argv[0].startswith("-"):
            name_, value = argv.pop(0).split("=", 1)
            env[name_] = value
        assert argv[:2] == ["python", "manage.py"], line
        commands.append((env, argv[2:]))
    return commands


def run_snippet(name: str, monkeypatch) -> list[str]:
    outputs = []
    for env, argv in snippet_commands(name):
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            outputs.append(run(*argv))
    return outputs


@entry_point("command:createworkspace", "command:addmember", "command:createkey")
def test_the_readme_command_line_examples_work_as_printed(monkeypatch, key_client):
    outputs = run_snippet("commands", monkeypatch)
    acme = Workspace.objects.get(slug="acme")
    assert audit(acme, "workspace.created").exists()
    ann = Membership.objects.get(workspace=acme, user__email="ann@acme.test")
    assert ann.role == Role.APPROVER and audit(acme, "member.added").count() == 2
    key = MachineKey.objects.get(workspace=acme, name="crm-agent")
    assert audit(acme, "key.created", target_id=str(key.pk)).exists()
    plaintext = last_line(outputs[2])
    assert key_client(plaintext).get("/api/v1/whoami").status_code == 200
    assert Workspace.objects.filter(slug="demo").exists()  # load_demo, the last line


@entry_point("command:addmember", "command:createkey", "command:load_demo")
def test_the_readme_break_glass_examples_work_on_a_fresh_database(monkeypatch, key_client):
    outputs = run_snippet("break-glass", monkeypatch)
    demo = Workspace.objects.get(slug="demo")
    ops = Membership.objects.get(workspace=demo, user__email="ops@demo.local")
    assert ops.role == Role.OWNER
    added = audit(demo, "member.added", target_id=str(ops.pk)).get()
    assert added.rationale.startswith("break-glass:")
    root = MachineKey.objects.get(workspace=demo, name="root")
    assert root.scopes == ["workspace:admin"]
    created = audit(demo, "key.created", target_id=str(root.pk)).get()
    assert created.rationale.startswith("break-glass: incident 42")
    records = overrides(demo)
    assert records.count() == 2
    assert all(r.severity == "high" for r in records)
    # createkey prints the key alone on its last line, and it works.
    response = key_client(last_line(outputs[2])).get("/api/v1/whoami")
    assert response.status_code == 200 and "workspace:admin" in response.json()["scopes"]


@pytest.fixture
def acme(db):
    run(
        "createworkspace",
        "acme",
        "--name",
        "Acme",
        "--owner",
        "boss@acme.test",
        "--reason",
        "test change",
    )
    return Workspace.objects.get(slug="acme")


@entry_point("command:addmember")
def test_a_refused_addmember_leaves_no_user_and_no_record(acme):
    entries = AuditEntry.objects.filter(workspace=acme).count()
    with pytest.raises(CommandError):
        run("addmember", "acme", "eve@acme.test", "--role", "owner", "--reason", "test change")
    assert not User.objects.filter(email="eve@acme.test").exists()
    assert AuditEntry.objects.filter(workspace=acme).count() == entries
    assert not overrides(acme).exists()


@entry_point("command:createkey")
def test_a_refused_createkey_leaves_no_key_and_no_record(acme):
    with pytest.raises(CommandError):
        run(
            "createkey", "acme", "--name", "root", "--owner", "boss@acme.test",
            "--scopes", "workspace:admin", "--reason", "test change",
        )  # fmt: skip
    assert not MachineKey.objects.filter(workspace=acme).exists()
    assert not audit(acme, "key.created").exists()
    assert not overrides(acme).exists()


@entry_point("command:load_demo")
def test_load_demo_twice_rotates_the_demo_key_with_its_audit_entries(key_client):
    first = last_line(run("load_demo"))
    second = last_line(run("load_demo"))
    demo = Workspace.objects.get(slug="demo")
    assert key_client(first).get("/api/v1/whoami").status_code == 401
    assert key_client(second).get("/api/v1/whoami").status_code == 200
    assert audit(demo, "key.created").count() == 1 and audit(demo, "key.rotated").count() == 1


# --- evidence commands -----------------------------------------------------------------


@entry_point("command:audit_verify")
def test_audit_verify_records_its_verification(acme):
    out = run("audit_verify", "acme")
    assert "acme: ok" in out
    assert audit(acme, "audit.verified").count() == 1
    run("audit_verify", "acme", "--no-record")
    assert audit(acme, "audit.verified").count() == 1


@entry_point("command:audit_export")
def test_audit_export_prints_the_chain_and_records_the_export(acme):
    out = run("audit_export", "acme")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert audit(acme, "audit.exported").count() == 1


@entry_point("command:audit_checkpoints", "command:audit_public_key", "command:audit_verify")
def test_checkpoints_printed_with_the_public_key_hold_the_chain(acme, tmp_path):
    checkpoint = checkpoint_create(workspace=acme)
    lines = run("audit_checkpoints", "acme").splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [checkpoint.seq]
    assert run("audit_public_key").strip()
    assert "BEGIN PUBLIC KEY" in run("audit_public_key", "--pem")
    saved = tmp_path / "checkpoints.jsonl"
    saved.write_text("\n".join(lines) + "\n")
    assert "acme: ok" in run("audit_verify", "acme", "--checkpoints", str(saved), "--no-record")


@entry_point("command:audit_prune", "task:audit.prune_all")
def test_audit_retention_prunes_behind_a_checkpoint_with_its_entry(make_workspace):
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        old = make_workspace(audit_retention_days=30)
        other = make_workspace(audit_retention_days=30)
    out = run("audit_prune", old.slug)
    assert "pruned" in out
    assert audit(old, "audit.pruned").count() == 1
    from oversight.tasks import prune_all

    assert prune_all.delay().get() > 0  # the other workspace
    assert audit(other, "audit.pruned").count() == 1
    assert "acme" not in out
    assert "ok" in run("audit_verify", old.slug, "--no-record")


# --- gate work: plain copies, expiry, replay ----------------------------------------------


@pytest.fixture
def agent_client(live_workspace, make_key, key_client):
    _, plaintext = make_key(
        live_workspace, scopes=["actions:read", "actions:write", "actions:external"]
    )
    return key_client(plaintext)


def allowed_with_result(workspace, client) -> ActionRequest:
    tool_create(
        reason="test set-up", workspace=workspace, actor=SYSTEM, name="crm.lookup", level="read"
    )
    response = client.post(
        "/api/v1/actions", {"tool": "crm.lookup", "params": {"id": 7}}, format="json"
    )
    assert response.status_code == 200, response.json()
    action_id = response.json()["id"]
    reported = client.post(
        f"/api/v1/actions/{action_id}/result",
        {"status": "succeeded", "output": {"name": "Ann"}},
        format="json",
    )
    assert reported.status_code == 200, reported.json()
    ActionRequest.objects.filter(pk=action_id).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    return ActionRequest.objects.get(pk=action_id)


@entry_point("command:prune_plain_copies", "command:audit_replay")
def test_prune_plain_copies_command_digests_old_params_with_its_entry(live_workspace, agent_client):
    action = allowed_with_result(live_workspace, agent_client)
    assert "crm.lookup" in run("audit_replay", str(action.pk))
    assert "pruned" in run("prune_plain_copies", live_workspace.slug)
    action.refresh_from_db()
    assert action.params == {} and action.plain_pruned_at is not None
    assert audit(live_workspace, "data.plain_copies_pruned").count() == 1
    report = json.loads(run("audit_replay", str(action.pk), "--json"))
    assert report["action_id"] == str(action.pk)


@entry_point("task:approvals.prune_plain_copies")
def test_prune_plain_copies_task_digests_old_params_with_its_entry(live_workspace, agent_client):
    from approvals.tasks import prune_plain_copies

    action = allowed_with_result(live_workspace, agent_client)
    assert prune_plain_copies.delay().get() >= 1
    action.refresh_from_db()
    assert action.params == {}
    assert audit(live_workspace, "data.plain_copies_pruned").count() == 1


@entry_point("task:approvals.expire_confirmations")
def test_expiry_task_expires_a_due_confirmation_with_its_entry(live_workspace, agent_client):
    from approvals.tasks import expire_confirmations

    tool_create(reason="test set-up",
        workspace=live_workspace, actor=SYSTEM, name="crm.update", level="write",
        confirmation="always",
    )  # fmt: skip
    response = agent_client.post(
        "/api/v1/actions", {"tool": "crm.update", "params": {"id": 7}}, format="json"
    )
    assert response.status_code == 202, response.json()
    confirmation = ConfirmationRequest.objects.get(action_request_id=response.json()["id"])
    ConfirmationRequest.objects.filter(pk=confirmation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expire_confirmations.delay().get() == 1
    confirmation.refresh_from_db()
    assert confirmation.status == ConfirmationRequest.Status.EXPIRED
    assert audit(live_workspace, "confirmation.expired", target_id=str(confirmation.pk)).exists()


# --- oversight tasks ---------------------------------------------------------------------


@entry_point("task:audit.verify_all_chains", "task:audit.verify_chain")
def test_nightly_verification_records_one_entry_per_workspace(make_workspace):
    from oversight.tasks import verify_all_chains

    first, second = make_workspace(), make_workspace()
    assert verify_all_chains.delay().get() == 2
    for workspace in (first, second):
        entry = audit(workspace, "audit.verified").get()
        assert entry.actor == "system:chain-verify"


@entry_point("task:audit.checkpoint_all")
def test_checkpoint_task_signs_every_moved_chain(make_workspace):
    from oversight.tasks import checkpoint_all

    first, second = make_workspace(), make_workspace()
    assert checkpoint_all.delay().get() == 2
    for workspace in (first, second):
        assert AuditCheckpoint.objects.filter(workspace=workspace).count() == 1
    assert checkpoint_all.delay().get() == 0  # nothing moved since


@pytest.fixture
def to_directory(live_workspace, tmp_path, settings):
    from oversight.scheduled_export import destination_configure

    settings.WARDEN_EXPORT_DIRECTORY_ROOTS = [str(tmp_path)]
    with operator_seeding():
        destination_configure(
            reason="test set-up",
            workspace=live_workspace,
            kind="directory",
            directory=str(tmp_path / "acme"),
            actor=SYSTEM,
            operator=True,
        )
    return tmp_path / "acme"


@entry_point("task:audit.export_all", "task:audit.export_workspace")
def test_scheduled_export_writes_the_chain_and_records_it(live_workspace, to_directory):
    from oversight.tasks import export_all

    assert export_all.delay().get() == 1
    seqs = [
        json.loads(line)["seq"]
        for path in sorted(to_directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert seqs and seqs == sorted(set(seqs))
    assert audit(live_workspace, "audit.exported").exists()


@entry_point("task:audit.deliver_checkpoints")
def test_checkpoint_delivery_task_ships_a_signed_checkpoint(live_workspace, to_directory):
    from oversight.tasks import deliver_checkpoints_task

    checkpoint = checkpoint_create(workspace=live_workspace)
    deliver_checkpoints_task.delay(str(live_workspace.pk)).get()
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).delivered_at is not None
    assert list(to_directory.glob("*checkpoint*.json"))


NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # window: 13:00-14:00 UTC


def _traffic(key, tool, at, n):
    import hashlib

    ActionRequest.objects.bulk_create(
        ActionRequest(
            workspace_id=key.workspace_id,
            key=key,
            requested_by=f"key:{key.pk}",
            tool_name=tool.name,
            tool=tool,
            params={},
            params_digest=hashlib.sha256(b"{}").hexdigest(),
            decision="allowed",
            status="allowed",
            policy_version=1,
            created_at=at + timedelta(seconds=i * (3000 // max(n, 1))),
        )
        for i in range(n)
    )


@entry_point("task:audit.detect_anomalies_all", "task:audit.detect_anomalies")
def test_anomaly_tasks_record_a_finding_with_its_exception_and_entry(live_workspace, make_key):
    from oversight.tasks import detect_anomalies_all

    tool = tool_create(
        reason="test set-up",
        workspace=live_workspace,
        actor=SYSTEM,
        name="crm.lookup",
        level="read",
    )
    key, _ = make_key(live_workspace, scopes=["actions:read"])
    window = NOW.replace(minute=0) - timedelta(hours=1)
    for day in range(14, 0, -1):
        for hour in range(8, 18):
            _traffic(key, tool, (window - timedelta(days=day)).replace(hour=hour), 3)
    _traffic(key, tool, window, 120)
    with time_machine.travel(NOW, tick=False):
        assert detect_anomalies_all.delay().get() == 1
    record = ExceptionRecord.objects.get(workspace=live_workspace, kind="anomaly")
    assert record.audit_entry.action == "anomaly.detected"


# --- signal handlers ---------------------------------------------------------------------


@entry_point("signal:audit.checkpoint_signed")
def test_a_signed_checkpoint_is_shipped_once_its_transaction_commits(live_workspace, to_directory):
    checkpoint = checkpoint_create(workspace=live_workspace)
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).delivered_at is not None
    assert list(to_directory.glob("*checkpoint*.json"))


@entry_point("signal:keys.revoke_for_departed_member")
def test_removing_a_member_revokes_their_keys_with_the_entries(
    workspace, make_member, make_key, user_client
):
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    leaving = make_member(workspace, Role.MEMBER)
    key, _ = make_key(workspace, owner=leaving)
    membership = Membership.objects.get(workspace=workspace, user=leaving)
    response = user_client(owner, workspace).delete(
        f"/api/v1/members/{membership.pk}", {"reason": "test change"}, format="json"
    )
    assert response.status_code in (200, 204), response.content
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert audit(workspace, "member.removed", target_id=str(membership.pk)).count() == 1
    assert audit(workspace, "key.revoked", target_id=str(key.pk)).count() == 1


# --- admin actions ---------------------------------------------------------------------


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@entry_point("admin:keys.machinekey.revoke_selected")
def test_revoke_selected_revokes_with_one_entry_per_key(workspace, make_key):
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    keys = [make_key(workspace)[0] for _ in range(2)]
    response = browser(owner).post(
        "/admin/keys/machinekey/",
        {
            "reason": "test change",
            "action": "revoke_selected",
            "_selected_action": [k.pk for k in keys],
        },
        follow=True,
    )
    assert response.status_code == 200
    for key in keys:
        key.refresh_from_db()
        assert key.revoked_at is not None
        assert audit(workspace, "key.revoked", target_id=str(key.pk)).count() == 1


# --- every entry point has a test that runs as it runs -------------------------------------


def _commands() -> set[str]:
    return {
        f"command:{name}" for name, app in get_commands().items() if app.split(".")[-1] in OUR_APPS
    }


def _tasks() -> set[str]:
    from celery import current_app

    for app in OUR_APPS:
        try:
            importlib.import_module(f"{app}.tasks")
        except ModuleNotFoundError:
            continue
    return {f"task:{name}" for name in current_app.tasks if not name.startswith("celery.")}


def _admin_actions() -> set[str]:
    names = set()
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        for action in model_admin.actions or ():
            name = action if isinstance(action, str) else action.__name__
            names.add(f"admin:{model._meta.app_label}.{model._meta.model_name}.{name}")
    return names


ADMIN_DEFAULT_VIEWS = ("_changelist", "_add", "_history", "_delete", "_change")


def _admin_views() -> set[str]:
    """The admin's own views besides Django's (object tools, queue, evidence pages)."""
    names = set()
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None)
            if name and not name.endswith(ADMIN_DEFAULT_VIEWS):
                names.add(f"adminview:{name}")
    # Admin pages outside a ModelAdmin that record something: the privacy summary's
    # (its PDF download is audited).
    names |= {f"adminview:{pattern.name}" for pattern in privacy_urlpatterns}
    return names


def _signal_handlers() -> set[str]:
    """Receivers of the project's own signals (each connected with a dispatch_uid)."""
    from approvals.signals import action_decided, confirmation_requested
    from audit.signals import checkpoint_signed
    from tenants.signals import member_removed

    names = set()
    for signal in (action_decided, confirmation_requested, checkpoint_signed, member_removed):
        for lookup_key, *_ in signal.receivers:
            uid = lookup_key[0]
            assert isinstance(uid, str), f"connect {signal} receivers with a dispatch_uid"
            names.add(f"signal:{uid}")
    return names


def _covered() -> set[str]:
    covered = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for _, func in inspect.getmembers(module, inspect.isfunction):
            names = getattr(func, "entry_points", ())
            if not names:
                continue
            marks = [m for m in getattr(func, "pytestmark", []) if m.name == "django_db"]
            assert any(m.kwargs.get("transaction") for m in marks), func.__name__
            covered |= set(names)
    return covered


def test_every_command_task_admin_action_and_handler_has_a_test_outside_a_transaction():
    wanted = _commands() | _tasks() | _admin_actions() | _admin_views() | _signal_handlers()
    assert {"command:createkey", "task:audit.prune_all"} <= wanted  # the listing works
    missing = sorted(wanted - _covered())
    assert not missing, f"entry points without a transaction=True test: {missing}"
