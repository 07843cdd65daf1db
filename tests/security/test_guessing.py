"""Guessing resistance (issue 15.3): the real admin login and the real API, throttled
per account / key prefix and per client address, recorded as security events."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache.backends.locmem import LocMemCache
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEntry
from common.actor import Actor
from keys import secrets as key_secrets
from keys.services import key_revoke
from tenants.login_guard import LOCKOUT_MESSAGE
from tenants.models import Role

LOGIN = "/admin/login/"
AUDIT_LIST = "/admin/audit/auditentry/"
PASSWORD = "pw-for-tests-1"
NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
LOGIN_THROTTLED = "security.login_throttled"
KEY_THROTTLED = "security.key_guessing_throttled"


@pytest.fixture(autouse=True)
def _frozen_clock():
    """Windows are fixed slices of time: start every test at the beginning of one."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def policy(settings):
    settings.WARDEN_LOGIN_MAX_FAILURES_PER_ACCOUNT = 10
    settings.WARDEN_LOGIN_MAX_FAILURES_PER_ADDRESS = 30
    settings.WARDEN_LOGIN_WINDOW_SECONDS = 900
    settings.WARDEN_KEY_GUESS_MAX_PER_ADDRESS = 30
    settings.WARDEN_KEY_GUESS_MAX_PER_PREFIX = 10
    settings.WARDEN_KEY_GUESS_WINDOW_SECONDS = 300
    return settings


@pytest.fixture
def admin_user(workspace):
    return workspace.memberships.get(role=Role.OWNER).user


def login(username, password, ip="198.51.100.1", **extra):
    client = Client(REMOTE_ADDR=ip, **extra)
    response = client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})
    return client, response


def logged_in(response) -> bool:
    return response.status_code == 302


def form_errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


# --- admin login -----------------------------------------------------------------


def test_right_password_logs_in(policy, admin_user):
    _, response = login(admin_user.username, PASSWORD)
    assert logged_in(response)


def test_ten_failures_lock_the_account_even_for_the_right_password(policy, admin_user):
    for _ in range(10):
        _, response = login(admin_user.username, "wrong")
        assert not logged_in(response)
        assert LOCKOUT_MESSAGE not in form_errors(response)
    _, response = login(admin_user.username, PASSWORD, ip="198.51.100.2")
    assert not logged_in(response)
    assert form_errors(response) == [LOCKOUT_MESSAGE]


def test_account_budget_ignores_case_and_spaces(policy, admin_user):
    for _ in range(10):
        login(f"  {admin_user.username.upper()} ", "wrong")
    _, response = login(admin_user.username, PASSWORD)
    assert form_errors(response) == [LOCKOUT_MESSAGE]


def test_right_password_works_again_after_the_window(policy, admin_user, _frozen_clock):
    for _ in range(10):
        login(admin_user.username, "wrong")
    _frozen_clock.shift(timedelta(seconds=899))
    assert not logged_in(login(admin_user.username, PASSWORD)[1])
    _frozen_clock.shift(timedelta(seconds=2))
    assert logged_in(login(admin_user.username, PASSWORD)[1])


def test_lockout_reads_the_same_whether_the_account_exists(policy, admin_user):
    for name in (admin_user.username, "nobody@example.test"):
        for _ in range(10):
            login(name, "wrong")
    _, real = login(admin_user.username, PASSWORD)
    _, ghost = login("nobody@example.test", PASSWORD)
    assert form_errors(real) == form_errors(ghost) == [LOCKOUT_MESSAGE]
    assert real.status_code == ghost.status_code == 200


def test_throttled_address_does_not_lock_out_other_addresses(policy, admin_user):
    for n in range(30):
        login(f"spray{n}@example.test", "wrong", ip="203.0.113.9")
    _, from_attacker = login(admin_user.username, PASSWORD, ip="203.0.113.9")
    assert form_errors(from_attacker) == [LOCKOUT_MESSAGE]
    _, from_elsewhere = login(admin_user.username, PASSWORD, ip="203.0.113.10")
    assert logged_in(from_elsewhere)


def test_address_comes_from_trusted_proxy_header_only(policy, settings, admin_user):
    settings.WARDEN_TRUSTED_PROXIES = 1
    for n in range(30):
        login(f"spray{n}@example.test", "wrong", ip="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    blocked = login(
        admin_user.username, PASSWORD, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert form_errors(blocked[1]) == [LOCKOUT_MESSAGE]
    other = login(admin_user.username, PASSWORD, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert logged_in(other[1])


def test_account_lockout_is_audited_once_per_window_in_each_workspace(
    policy, admin_user, make_workspace, other_workspace, _frozen_clock
):
    second = make_workspace(owner=admin_user)
    for _ in range(15):
        login(admin_user.username, "wrong-password-xyz")
    rows = AuditEntry.objects.filter(action=LOGIN_THROTTLED)
    assert sorted(r.workspace_id for r in rows) == sorted(
        [admin_user.memberships.first().workspace_id, second.pk]
    )
    assert not rows.filter(workspace=other_workspace).exists()
    for row in rows:
        assert row.actor == "system:login-guard"
        assert row.client_ip == "198.51.100.1"
        assert row.target_id == str(admin_user.pk)
        assert "wrong-password-xyz" not in str(row.input) + row.rationale
    _frozen_clock.shift(timedelta(seconds=901))
    for _ in range(10):
        login(admin_user.username, "wrong-password-xyz")
    assert AuditEntry.objects.filter(action=LOGIN_THROTTLED).count() == 4


def test_unknown_account_and_address_lockouts_are_logged_not_audited(policy, workspace, caplog):
    for n in range(30):
        login("nobody@example.test" if n < 10 else f"spray{n}@example.test", "wrong")
    assert not AuditEntry.objects.filter(action=LOGIN_THROTTLED).exists()
    messages = [r.getMessage() for r in caplog.records if r.name == "warden.security"]
    assert any("account reached 10" in m for m in messages)
    assert any("address reached 30" in m for m in messages)
    assert not any("wrong" in m or "nobody" in m for m in messages)


def test_login_throttling_is_visible_in_the_audit_browser(
    policy, admin_user, workspace, make_member
):
    for _ in range(10):
        login(admin_user.username, "wrong")
    auditor = make_member(workspace, Role.AUDITOR)
    client = Client()
    client.force_login(auditor)
    rows = client.get(AUDIT_LIST, {"action__exact": LOGIN_THROTTLED}).context["cl"].result_list
    assert len(rows) == 1


# --- machine keys ----------------------------------------------------------------


def api(plaintext, ip="198.51.100.1"):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client.get("/api/v1/whoami")


def wrong_secret(plaintext):
    prefix = key_secrets.parse_key(plaintext)[0]
    return key_secrets.format_key(prefix, "x" * 43)


def random_key():
    return key_secrets.format_key(key_secrets.new_prefix(), key_secrets.new_secret())


def test_ten_wrong_secrets_throttle_the_prefix_before_the_digest_is_checked(
    policy, workspace, make_key, api_error, monkeypatch
):
    _, plaintext = make_key(workspace)
    for n in range(10):
        api_error(api(wrong_secret(plaintext), ip=f"198.51.100.{n + 1}"), 401, "invalid_key")
    checked = []
    real = key_secrets.digests_match
    monkeypatch.setattr(key_secrets, "digests_match", lambda *a: checked.append(1) or real(*a))
    response = api(plaintext, ip="203.0.113.50")
    body = api_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) == 300
    assert body["error"]["detail"] == {"retry_after": 300}
    assert checked == []


def test_right_key_works_again_after_the_window(policy, workspace, make_key, _frozen_clock):
    _, plaintext = make_key(workspace)
    for _ in range(10):
        api(wrong_secret(plaintext))
    _frozen_clock.shift(timedelta(seconds=120))
    response = api(plaintext, ip="203.0.113.50")
    assert response.status_code == 429 and int(response["Retry-After"]) == 180
    _frozen_clock.shift(timedelta(seconds=181))
    assert api(plaintext, ip="203.0.113.50").status_code == 200


def test_random_keys_from_one_address_are_throttled_not_other_addresses(
    policy, workspace, make_key, api_error
):
    _, plaintext = make_key(workspace)
    statuses = [api(random_key(), ip="203.0.113.9").status_code for _ in range(40)]
    assert statuses == [401] * 30 + [429] * 10
    api_error(api(plaintext, ip="203.0.113.9"), 429, "rate_limited")
    assert api(plaintext, ip="203.0.113.10").status_code == 200


@pytest.mark.parametrize("header", ["Bearer wdn_short", "Bearer a b", "Bearer"])
def test_malformed_credentials_count_against_the_address(policy, db, header):
    client = APIClient(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=header)
    statuses = [client.get("/api/v1/whoami").status_code for _ in range(31)]
    assert statuses == [401] * 30 + [429]


def test_key_from_a_disallowed_address_counts_as_a_failure(policy, workspace, make_key):
    _, plaintext = make_key(workspace, allowed_ips=["10.1.2.3"])
    statuses = [api(plaintext, ip=f"192.0.2.{n}").status_code for n in range(1, 12)]
    assert statuses == [401] * 10 + [429]


def test_revoked_key_with_its_right_secret_is_not_guessing(policy, workspace, make_key, api_error):
    key, plaintext = make_key(workspace)
    key_revoke(reason="test set-up", key=key, actor=Actor.system("tests"))
    for _ in range(15):
        api_error(api(plaintext), 401, "key_revoked")


def test_prefix_throttling_is_audited_once_in_the_keys_workspace(
    policy, workspace, other_workspace, make_key, key_client, _frozen_clock
):
    key, plaintext = make_key(workspace)
    bad = wrong_secret(plaintext)
    for _ in range(25):
        api(bad)
    rows = list(AuditEntry.objects.filter(action=KEY_THROTTLED))
    assert len(rows) == 1
    row = rows[0]
    assert row.workspace_id == workspace.pk
    assert (row.actor, row.target_type, row.target_id) == (
        "system:key-guard",
        "machine_key",
        str(key.pk),
    )
    assert row.input["prefix"] == key.prefix and row.client_ip == "198.51.100.1"
    everything = str(row.input) + row.rationale
    assert key_secrets.parse_key(bad)[1] not in everything
    assert key_secrets.parse_key(plaintext)[1] not in everything
    assert not AuditEntry.objects.filter(workspace=other_workspace, action=KEY_THROTTLED).exists()
    _frozen_clock.shift(timedelta(seconds=301))
    for _ in range(10):
        api(bad)
    assert AuditEntry.objects.filter(action=KEY_THROTTLED).count() == 2


def test_key_throttling_is_visible_through_the_audit_api(
    policy, workspace, other_workspace, make_key, key_client
):
    _, plaintext = make_key(workspace)
    for _ in range(10):
        api(wrong_secret(plaintext))
    _, reader = make_key(workspace, scopes=["audit:read"])
    _, outsider = make_key(other_workspace, scopes=["audit:read"])
    own = key_client(reader).get("/api/v1/audit", {"action": KEY_THROTTLED}).json()
    assert [r["action"] for r in own["results"]] == [KEY_THROTTLED]
    theirs = key_client(outsider).get("/api/v1/audit", {"action": KEY_THROTTLED}).json()
    assert theirs["results"] == []


def test_unknown_prefix_and_address_throttling_is_logged_only(policy, db, caplog):
    for _ in range(30):
        api(random_key())
    assert not AuditEntry.objects.filter(action=KEY_THROTTLED).exists()
    messages = [r.getMessage() for r in caplog.records if r.name == "warden.security"]
    assert any("address reached 30" in m for m in messages)


def test_with_redis_unreachable_guessing_is_still_throttled_per_process(
    policy, settings, workspace, make_key, monkeypatch, caplog
):
    from common import attempts
    from tests.reliability.server import free_port

    monkeypatch.setattr(attempts._counters, "down_until", 0.0)
    monkeypatch.setattr(attempts._counters, "local", LocMemCache("guessing-test", {}))
    _, plaintext = make_key(workspace)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/5",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    statuses = [api(wrong_secret(plaintext)).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    assert "Attempt counters' cache unreachable" in caplog.text
