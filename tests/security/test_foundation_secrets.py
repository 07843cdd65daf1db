"""Key secrets never leave the one response that issues them (DESIGN.md 7).

A scripted session creates, rotates, uses, mis-uses and revokes keys through the API,
the admin and the commands, with every logger at DEBUG and SQL logging on; no secret
may appear in the logs, in an error payload, in an audit row or on an admin page."""

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEntry, VersionLog
from keys import secrets as key_secrets
from keys.models import MachineKey
from tenants.models import Membership, Role
from tests.security.conftest import secret_parts


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_no_key_secret_leaks_anywhere_in_a_session(
    debug_everything, workspace, make_key, key_client, make_member, user_client
):
    issued: list[str] = []
    errors: list[str] = []
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user

    # API: a manager key creates, rotates, uses and revokes keys.
    _, manager_plain = make_key(workspace, scopes=["workspace:admin"])
    issued.append(manager_plain)
    manager = key_client(manager_plain)
    created = manager.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    ).json()
    # A key made by a key: its secret goes to the owner's session, claimed once.
    claimer = user_client(MachineKey.objects.get(pk=created["id"]).owner, workspace)
    first = claimer.post(f"/api/v1/keys/{created['id']}/claim").json()["key"]
    issued.append(first)
    rotated = manager.post(
        f"/api/v1/keys/{created['id']}/rotate", {"grace_seconds": 60}, format="json"
    ).json()
    assert "key" not in rotated
    second = claimer.post(f"/api/v1/keys/{created['id']}/claim").json()["key"]
    issued.append(second)
    for plaintext in (first, second):
        assert key_client(plaintext).get("/api/v1/whoami").status_code == 200
    manager.post(f"/api/v1/keys/{created['id']}/revoke", {"reason": "done"}, format="json")

    # Refusals: a revoked key, a tampered key, a malformed header, a wrong scope.
    for plaintext in (first, second, second[:-4] + "AAAA"):
        errors.append(key_client(plaintext).get("/api/v1/whoami").content.decode())
    errors.append(key_client(second + " extra").get("/api/v1/whoami").content.decode())
    _, reader_plain = make_key(workspace, scopes=["actions:read"])
    issued.append(reader_plain)
    errors.append(
        key_client(reader_plain)
        .post(
            "/api/v1/keys",
            {"reason": "test change", "name": "x", "scopes": ["actions:read"]},
            format="json",
        )
        .content.decode()
    )

    # Commands.
    out = io.StringIO()
    call_command(
        "createkey",
        workspace.slug,
        "--name=cli-bot",
        f"--owner={owner.email}",
        "--scopes=actions:read",
        "--reason",
        "test change",
        stdout=out,
    )
    issued.append(last_line(out.getvalue()))
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    issued.append(last_line(out.getvalue()))

    # Admin: the owner creates a key and browses the key pages.
    browser = Client()
    browser.force_login(owner)
    page = browser.post(
        "/admin/keys/machinekey/add/",
        {
            "reason": "test change",
            "workspace": workspace.pk,
            "name": "admin-bot",
            "owner": owner.pk,
            "scopes": ["actions:read"],
            "tool_allowlist": "crm.*",
            "allowed_ips": "",
            "rate_limit_per_minute": 60,
        },
    )
    admin_key = re.search(r"wdn_[0-9a-f]{12}_[A-Za-z0-9_-]+", page.content.decode()).group(0)
    issued.append(admin_key)
    admin_pages = [
        browser.get("/admin/keys/machinekey/").content.decode(),
        *(
            browser.get(f"/admin/keys/machinekey/{key.pk}/change/").content.decode()
            for key in MachineKey.objects.filter(workspace=workspace)
        ),
    ]

    assert len(issued) == 7
    logs = debug_everything.text + "\n".join(
        str(record.args) for record in debug_everything.records
    )
    assert "SELECT" in logs  # SQL really was logged
    evidence = [
        str(row)
        for row in AuditEntry.objects.values_list("input", "rationale", "actor", "target_id")
    ] + [str(row) for row in VersionLog.objects.values_list("before", "after", "reason")]
    for plaintext in issued:
        for secret in secret_parts(plaintext):
            assert secret not in logs
            assert all(secret not in body for body in errors)
            assert all(secret not in row for row in evidence)
            assert all(secret not in html for html in admin_pages)


def test_admin_pages_never_render_a_digest(workspace, make_key):
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER).user
    key, _ = make_key(workspace)
    from datetime import timedelta

    from common.actor import Actor
    from keys.services import key_rotate

    key_rotate(key=key, actor=Actor.system("tests"), grace=timedelta(hours=1))
    key.refresh_from_db()
    browser = Client()
    browser.force_login(owner)
    for url in (
        "/admin/keys/machinekey/",
        f"/admin/keys/machinekey/{key.pk}/change/",
        f"/admin/keys/machinekey/{key.pk}/rotate/",
        f"/admin/keys/machinekey/{key.pk}/revoke/",
    ):
        html = browser.get(url).content.decode()
        assert key.digest not in html, url
        assert key.previous_digest not in html, url
        assert "digest" not in html.lower(), url


def test_issued_key_repr_hides_the_secret(workspace, make_member):
    from common.actor import Actor
    from keys.services import key_create

    issued = key_create(
        reason="test set-up",
        workspace=workspace,
        name="bot",
        owner=make_member(workspace, Role.ADMIN),
        scopes=["actions:read"],
        actor=Actor.system("tests"),
    )
    for secret in secret_parts(issued.plaintext):
        assert secret not in repr(issued)


def test_forged_key_error_does_not_echo_the_key(db, key_client):
    forged = key_secrets.format_key(key_secrets.new_prefix(), key_secrets.new_secret())
    body = key_client(forged).get("/api/v1/whoami").content.decode()
    for secret in secret_parts(forged):
        assert secret not in body


def test_error_reports_hide_the_secret_in_every_frame(workspace, make_key, monkeypatch):
    """A crash while checking a key must not put the secret into the error report that
    Django mails to ADMINS (its HTML version lists every frame's locals)."""
    import sys

    from django.test import RequestFactory
    from django.views.debug import ExceptionReporter
    from rest_framework.request import Request

    from keys import authentication

    _, plaintext = make_key(workspace)

    # A builtin fails without a Python frame of its own, whose arguments would show.
    monkeypatch.setattr(authentication.key_secrets, "digests_match", divmod)
    django_request = RequestFactory().get(
        "/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}"
    )
    with pytest.raises(TypeError):
        try:
            authentication.MachineKeyAuthentication().authenticate(Request(django_request))
        except TypeError:
            exc_type, exc, tb = sys.exc_info()
            # From the first frame below this test (which holds the key itself).
            report = ExceptionReporter(
                django_request, exc_type, exc, tb.tb_next
            ).get_traceback_html()
            raise
    assert "_secret_matches" in report and "divmod" in report
    for secret in secret_parts(plaintext):
        assert secret not in report


def test_error_reports_hide_the_secret_of_a_new_key(workspace, make_member, monkeypatch):
    import sys

    from django.views.debug import ExceptionReporter

    from common.actor import Actor
    from keys import services

    monkeypatch.setattr(services, "_audit", divmod)  # fails with no frame of its own
    owner = make_member(workspace, Role.ADMIN)
    try:
        services.key_create(
            reason="test set-up",
            workspace=workspace,
            name="bot",
            owner=owner,
            scopes=["actions:read"],
            actor=Actor.system("tests"),
        )
    except TypeError:
        exc_info = sys.exc_info()
        secret_frame = exc_info[2]
        while secret_frame.tb_next is not None and "secret" not in secret_frame.tb_frame.f_locals:
            secret_frame = secret_frame.tb_next
        secret = secret_frame.tb_frame.f_locals["secret"]
        report = ExceptionReporter(None, exc_info[0], exc_info[1], exc_info[2].tb_next)
        report = report.get_traceback_html()
    assert "key_create" in report
    assert secret not in report
