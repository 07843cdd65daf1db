"""The command-line tools: createworkspace, addmember, createkey, load_demo."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from audit.models import AuditEntry, ExceptionRecord
from keys.models import MachineKey
from tenants.models import Membership, Role, Workspace

User = get_user_model()


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


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


def test_createworkspace_creates_the_workspace_and_its_owner(acme):
    owner = Membership.objects.get(workspace=acme, role=Role.OWNER)
    assert acme.name == "Acme"
    assert owner.user.email == "boss@acme.test"
    assert owner.user.has_perm("tenants.manage_workspace", acme)
    assert not owner.user.has_usable_password()
    assert AuditEntry.objects.filter(workspace=acme, action="workspace.created").exists()


def test_createworkspace_refuses_a_taken_slug(acme):
    with pytest.raises(CommandError, match="exists"):
        run(
            "createworkspace",
            "acme",
            "--name",
            "Again",
            "--owner",
            "x@acme.test",
            "--reason",
            "test change",
        )


def test_addmember_sets_the_password_from_the_environment(acme, monkeypatch):
    monkeypatch.setenv("WARDEN_PASSWORD", "a-long-test-password")
    # Who may approve grows: governed, so an operator applies it with --break-glass.
    with pytest.raises(CommandError, match="loosens governance"):
        run("addmember", "acme", "ann@acme.test", "--role", "approver", "--reason", "test change")
    assert not User.objects.filter(email="ann@acme.test").exists()
    out = run(
        "addmember",
        "acme",
        "ann@acme.test",
        "--role",
        "approver",
        "--break-glass",
        "first one",
        "--reason",
        "test change",
    )
    assert "ann@acme.test" in out
    user = User.objects.get(email="ann@acme.test")
    assert user.check_password("a-long-test-password")
    assert user.has_perm("tenants.approve_actions", acme)


def test_addmember_without_password_leaves_it_unusable(acme, monkeypatch):
    monkeypatch.delenv("WARDEN_PASSWORD", raising=False)
    run("addmember", "acme", "bob@acme.test", "--role", "auditor", "--reason", "test change")
    assert not User.objects.get(email="bob@acme.test").has_usable_password()


def test_addmember_refuses_an_unknown_workspace(db):
    with pytest.raises(CommandError, match="No workspace"):
        run("addmember", "nowhere", "ann@acme.test", "--role", "member", "--reason", "test change")


def test_addmember_refuses_an_unknown_role(acme):
    with pytest.raises(CommandError):
        run("addmember", "acme", "ann@acme.test", "--role", "emperor", "--reason", "test change")


def test_createkey_prints_a_working_key_alone_on_the_last_line(acme, key_client):
    out = run(
        "createkey",
        "acme",
        "--name",
        "crm-agent",
        "--owner",
        "boss@acme.test",
        "--scopes",
        "actions:read actions:write",
        "--tools",
        "crm.* email.send",
        "--expires-in-days",
        "30",
        "--reason",
        "test change",
    )
    plaintext = last_line(out)
    assert plaintext.startswith("wdn_") and " " not in plaintext
    body = key_client(plaintext).get("/api/v1/whoami").json()
    assert body["workspace"]["slug"] == "acme"
    assert body["scopes"] == ["actions:read", "actions:write"]
    key = MachineKey.objects.get(name="crm-agent")
    assert key.tool_allowlist == ["crm.*", "email.send"]
    assert key.expires_at is not None


@pytest.mark.parametrize(
    ("owner", "scopes", "extra", "refusal"),
    [
        ("boss@acme.test", "actions:read root:all", [], "Unknown scope"),
        ("stranger@acme.test", "actions:read", [], "not a member"),
        ("boss@acme.test", "actions:read", ["--expires-in-days", "0"], "expires-in-days"),
    ],
    ids=["unknown scope", "owner not a member", "non-positive expiry"],
)
def test_createkey_refuses_bad_input_and_creates_no_key(acme, owner, scopes, extra, refusal):
    args = ["--name", "x", "--owner", owner, "--scopes", scopes, *extra]
    with pytest.raises(CommandError, match=refusal):
        run("createkey", "acme", *args)
    assert not MachineKey.objects.exists()


def test_load_demo_prints_a_working_key_last(db, key_client):
    plaintext = last_line(run("load_demo"))
    body = key_client(plaintext).get("/api/v1/whoami").json()
    assert body["workspace"]["slug"] == "demo"


def test_load_demo_is_idempotent_and_replaces_the_key(db, key_client):
    first = last_line(run("load_demo"))
    second = last_line(run("load_demo"))
    assert Workspace.objects.filter(slug="demo").count() == 1
    demo = Workspace.objects.get(slug="demo")
    assert MachineKey.objects.filter(workspace=demo, revoked_at__isnull=True).count() == 1
    assert Membership.objects.filter(workspace=demo).count() == 3
    assert key_client(second).get("/api/v1/whoami").status_code == 200
    assert key_client(first).get("/api/v1/whoami").status_code == 401


def test_load_demo_users_can_log_in(db, client):
    run("load_demo")
    assert client.login(username="owner@demo.local", password="warden-demo")
    assert client.get("/admin/keys/machinekey/").status_code == 200


def test_addmember_as_admin_needs_break_glass_and_records_it(acme):
    with pytest.raises(CommandError, match="loosens governance"):
        run("addmember", "acme", "root@acme.test", "--role", "admin", "--reason", "test change")
    assert not Membership.objects.filter(user__email="root@acme.test").exists()
    run(
        "addmember",
        "acme",
        "root@acme.test",
        "--role",
        "admin",
        "--break-glass",
        "bootstrap",
        "--reason",
        "test change",
    )
    assert Membership.objects.get(user__email="root@acme.test").role == "admin"
    assert ExceptionRecord.objects.filter(kind="override", why="bootstrap").exists()
    assert AuditEntry.objects.filter(action="member.added").exists()


def test_load_demo_prints_the_login_at_the_public_url(db, settings):
    """`make run HOST=127.0.0.1:18200` printed a login banner for port 8000."""
    settings.WARDEN_PUBLIC_URL = "http://127.0.0.1:18200"
    assert "Admin login: http://127.0.0.1:18200/admin/" in run("load_demo")


@pytest.mark.db_independent
def test_make_run_points_the_banner_and_email_links_at_its_host():
    import subprocess

    dry = subprocess.run(
        ["make", "-n", "run", "HOST=127.0.0.1:18200", "STAMP=Makefile"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    demo, serve = [
        line
        for line in dry.splitlines()
        if "manage.py load_demo" in line or "manage.py runserver" in line
    ]
    for line in (demo, serve):
        assert "WARDEN_PUBLIC_URL=http://127.0.0.1:18200" in line, line
    assert serve.endswith("runserver 127.0.0.1:18200")
