"""Machine-key authentication: storage, refusals, rotation grace, rate limit, last use."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.actor import Actor
from keys import secrets as key_secrets
from keys.models import MachineKey
from keys.services import key_revoke, key_rotate, key_set_suspended
from tenants.models import Role

SYSTEM = Actor.system("tests")
NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def secret_of(plaintext: str) -> str:
    return plaintext.split("_", 2)[2]


def test_key_row_stores_prefix_and_digest_but_never_the_secret(workspace, make_key):
    key, plaintext = make_key(workspace)
    row = MachineKey.objects.filter(pk=key.pk).values().get()
    for column, value in row.items():
        assert secret_of(plaintext) not in str(value), column
        assert plaintext not in str(value), column
    assert key_secrets.digests_match(secret_of(plaintext), row["digest"])
    assert plaintext.startswith(f"wdn_{row['prefix']}_")


def test_key_secret_has_at_least_32_random_bytes(workspace, make_key):
    _, plaintext = make_key(workspace)
    assert len(secret_of(plaintext)) >= 43  # 32 bytes, urlsafe base64


def test_full_key_is_returned_at_creation_only(workspace, make_member, user_client):
    owner = make_member(workspace, Role.ADMIN)
    client = user_client(owner, workspace)  # creates a key for themselves: they get it
    created = client.post(
        "/api/v1/keys",
        {"reason": "test change", "name": "bot", "scopes": ["actions:read"]},
        format="json",
    ).json()
    assert created["key"].startswith(f"wdn_{created['prefix']}_")
    listed = client.get("/api/v1/keys").json()["results"]
    detail = client.get(f"/api/v1/keys/{created['id']}").json()
    for body in (listed, detail):
        assert created["key"] not in str(body)
        assert secret_of(created["key"]) not in str(body)
    assert all("key" not in row and "digest" not in row for row in listed)
    assert "key" not in detail and "digest" not in detail


def test_valid_key_authenticates(workspace, make_key, key_client):
    key, plaintext = make_key(workspace)
    body = key_client(plaintext).get("/api/v1/whoami").json()
    assert body["key"]["id"] == str(key.pk)


def test_wrong_secret_is_invalid_key(workspace, make_key, key_client, api_error):
    key, _ = make_key(workspace)
    forged = key_secrets.format_key(key.prefix, key_secrets.new_secret())
    api_error(key_client(forged).get("/api/v1/whoami"), 401, "invalid_key")


def test_unknown_prefix_is_invalid_key(db, key_client, api_error):
    forged = key_secrets.format_key(key_secrets.new_prefix(), key_secrets.new_secret())
    api_error(key_client(forged).get("/api/v1/whoami"), 401, "invalid_key")


def test_wrong_secret_and_unknown_prefix_answer_identically(workspace, make_key, key_client):
    key, _ = make_key(workspace)
    wrong_secret = key_client(key_secrets.format_key(key.prefix, key_secrets.new_secret()))
    unknown = key_client(key_secrets.format_key(key_secrets.new_prefix(), key_secrets.new_secret()))
    first, second = wrong_secret.get("/api/v1/whoami"), unknown.get("/api/v1/whoami")
    assert first.status_code == second.status_code == 401
    assert first.json() == second.json()


def test_revoked_key_is_key_revoked(workspace, make_key, key_client, api_error):
    key, plaintext = make_key(workspace)
    key_revoke(reason="test set-up", key=key, actor=SYSTEM)
    api_error(key_client(plaintext).get("/api/v1/whoami"), 401, "key_revoked")


def test_suspended_key_is_refused_as_revoked(workspace, make_key, key_client, api_error):
    key, plaintext = make_key(workspace)
    key_set_suspended(key=key, suspended=True, actor=SYSTEM, reason="anomaly")
    api_error(key_client(plaintext).get("/api/v1/whoami"), 401, "key_revoked")


def test_expired_key_is_key_expired(workspace, make_key, key_client, api_error):
    with time_machine.travel(NOW, tick=False):
        _, plaintext = make_key(workspace, expires_at=NOW + timedelta(hours=1))
        assert key_client(plaintext).get("/api/v1/whoami").status_code == 200
    with time_machine.travel(NOW + timedelta(hours=1, seconds=1), tick=False):
        api_error(key_client(plaintext).get("/api/v1/whoami"), 401, "key_expired")


def test_call_from_outside_allowed_ips_is_invalid_key(workspace, make_key, api_error):
    _, plaintext = make_key(workspace, allowed_ips=["10.0.0.0/8"])
    from rest_framework.test import APIClient

    client = APIClient(REMOTE_ADDR="192.0.2.7")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    api_error(client.get("/api/v1/whoami"), 401, "invalid_key")


def test_call_from_allowed_ip_succeeds(workspace, make_key):
    _, plaintext = make_key(workspace, allowed_ips=["10.0.0.0/8"])
    from rest_framework.test import APIClient

    client = APIClient(REMOTE_ADDR="10.1.2.3")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get("/api/v1/whoami").status_code == 200


def test_spoofed_forwarded_for_does_not_pass_ip_allowlist(workspace, make_key, api_error):
    _, plaintext = make_key(workspace, allowed_ips=["10.0.0.0/8"])
    from rest_framework.test import APIClient

    client = APIClient(REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="10.1.2.3")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    api_error(client.get("/api/v1/whoami"), 401, "invalid_key")


def test_wrong_ip_answers_exactly_like_a_wrong_secret(workspace, make_key):
    key, plaintext = make_key(workspace, allowed_ips=["10.0.0.0/8"])
    from rest_framework.test import APIClient

    outside = APIClient(REMOTE_ADDR="192.0.2.7")
    outside.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    forged = APIClient(REMOTE_ADDR="10.1.2.3")
    forged.credentials(
        HTTP_AUTHORIZATION=f"Bearer {key_secrets.format_key(key.prefix, key_secrets.new_secret())}"
    )
    assert outside.get("/api/v1/whoami").json() == forged.get("/api/v1/whoami").json()


def test_rotated_out_secret_works_until_grace_end(workspace, make_key, key_client):
    key, old = make_key(workspace)
    with time_machine.travel(NOW, tick=False):
        new = key_rotate(key=key, actor=SYSTEM, grace=timedelta(hours=24)).plaintext
        assert key_client(old).get("/api/v1/whoami").status_code == 200
        assert key_client(new).get("/api/v1/whoami").status_code == 200
    with time_machine.travel(NOW + timedelta(hours=23, minutes=59), tick=False):
        assert key_client(old).get("/api/v1/whoami").status_code == 200


def test_rotated_out_secret_is_invalid_after_grace(workspace, make_key, key_client, api_error):
    key, old = make_key(workspace)
    with time_machine.travel(NOW, tick=False):
        new = key_rotate(key=key, actor=SYSTEM, grace=timedelta(hours=24)).plaintext
    with time_machine.travel(NOW + timedelta(hours=24, seconds=1), tick=False):
        api_error(key_client(old).get("/api/v1/whoami"), 401, "invalid_key")
        assert key_client(new).get("/api/v1/whoami").status_code == 200


def test_default_rotation_grace_is_24_hours(workspace, make_key):
    key, _ = make_key(workspace)
    with time_machine.travel(NOW, tick=False):
        rotated = key_rotate(key=key, actor=SYSTEM).key
    assert rotated.previous_valid_until == NOW + timedelta(hours=24)


def test_rotation_without_grace_stops_the_old_secret_at_once(
    workspace, make_key, key_client, api_error
):
    key, old = make_key(workspace)
    key_rotate(key=key, actor=SYSTEM, grace=timedelta(0))
    api_error(key_client(old).get("/api/v1/whoami"), 401, "invalid_key")


def test_revoking_a_rotated_key_also_stops_the_old_secret(
    workspace, make_key, key_client, api_error
):
    key, old = make_key(workspace)
    key_rotate(key=key, actor=SYSTEM, grace=timedelta(hours=1))
    key_revoke(reason="test set-up", key=key, actor=SYSTEM)
    api_error(key_client(old).get("/api/v1/whoami"), 401, "invalid_key")


def test_rate_limit_answers_429_with_retry_after(workspace, make_key, key_client, api_error):
    _, plaintext = make_key(workspace, rate_limit_per_minute=2)
    client = key_client(plaintext)
    with time_machine.travel(NOW + timedelta(seconds=15), tick=False):
        assert client.get("/api/v1/whoami").status_code == 200
        assert client.get("/api/v1/whoami").status_code == 200
        response = client.get("/api/v1/whoami")
    body = api_error(response, 429, "rate_limited")
    assert response["Retry-After"] == "45"
    assert body["error"]["detail"]["retry_after"] == 45


def test_rate_limit_resets_in_the_next_minute(workspace, make_key, key_client):
    _, plaintext = make_key(workspace, rate_limit_per_minute=1)
    client = key_client(plaintext)
    with time_machine.travel(NOW, tick=False):
        client.get("/api/v1/whoami")
        assert client.get("/api/v1/whoami").status_code == 429
    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        assert client.get("/api/v1/whoami").status_code == 200


def test_rate_limit_is_per_key(workspace, make_key, key_client):
    _, first = make_key(workspace, rate_limit_per_minute=1)
    _, second = make_key(workspace, rate_limit_per_minute=1)
    with time_machine.travel(NOW, tick=False):
        key_client(first).get("/api/v1/whoami")
        assert key_client(first).get("/api/v1/whoami").status_code == 429
        assert key_client(second).get("/api/v1/whoami").status_code == 200


def test_last_used_at_is_written_on_first_use(workspace, make_key, key_client):
    key, plaintext = make_key(workspace)
    with time_machine.travel(NOW, tick=False):
        key_client(plaintext).get("/api/v1/whoami")
    key.refresh_from_db()
    assert key.last_used_at == NOW


def test_last_used_at_is_written_at_most_once_a_minute(
    workspace, make_key, key_client, django_assert_max_num_queries
):
    key, plaintext = make_key(workspace)
    client = key_client(plaintext)
    with time_machine.travel(NOW, tick=False):
        client.get("/api/v1/whoami")
    with time_machine.travel(NOW + timedelta(seconds=59), tick=False):
        # One query, the key lookup: no UPDATE of last_used_at.
        with CaptureQueriesContext(connection) as queries, django_assert_max_num_queries(1):
            assert client.get("/api/v1/whoami").status_code == 200
        assert not [q for q in queries if q["sql"].upper().startswith("UPDATE")]
    key.refresh_from_db()
    assert key.last_used_at == NOW
    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        client.get("/api/v1/whoami")
    key.refresh_from_db()
    assert key.last_used_at == NOW + timedelta(seconds=61)


@pytest.mark.parametrize("grace_hours", [-1, 24 * 7 + 1])
def test_rotation_grace_outside_zero_to_seven_days_is_refused(workspace, make_key, grace_hours):
    from common.errors import WardenError

    key, _ = make_key(workspace)
    with pytest.raises(WardenError) as refused:
        key_rotate(key=key, actor=SYSTEM, grace=timedelta(hours=grace_hours))
    assert refused.value.code == "validation_error"


def test_key_in_deleted_workspace_is_invalid_key(
    workspace, make_key, key_client, api_error, operator_seeded
):
    _, plaintext = make_key(workspace)
    workspace.deleted_at = timezone.now()
    workspace.save(update_fields=["deleted_at"])
    api_error(key_client(plaintext).get("/api/v1/whoami"), 401, "invalid_key")
