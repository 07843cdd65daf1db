"""Key peppers rotate without revoking every key: a stored digest names its pepper id,
new and rotated secrets take the current id, older keys keep working until their pepper
is retired from WARDEN_KEY_PEPPERS."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.startup import require_secret_key
from keys.models import MachineKey

WHOAMI = "/api/v1/whoami"


@pytest.fixture
def second_pepper(settings):
    settings.WARDEN_KEY_PEPPERS = {"2": "a-second-pepper-for-tests-" + "y" * 20}
    return settings


def test_a_new_pepper_applies_to_new_keys_and_old_keys_keep_working(
    workspace, make_key, key_client, second_pepper
):
    old_key, old = make_key(workspace)
    second_pepper.WARDEN_KEY_PEPPER_ID = 2
    new_key, new = make_key(workspace)
    assert MachineKey.objects.get(pk=old_key.pk).digest.count("$") == 0  # id 0: bare hex
    assert MachineKey.objects.get(pk=new_key.pk).digest.startswith("p2$")
    assert key_client(old).get(WHOAMI).status_code == 200
    assert key_client(new).get(WHOAMI).status_code == 200


def test_rotating_moves_a_key_to_the_current_pepper_with_its_grace(
    workspace, make_key, key_client, second_pepper
):
    target, old = make_key(workspace, scopes=["keys:read", "keys:write"])
    second_pepper.WARDEN_KEY_PEPPER_ID = 2
    rotated = key_client(old).post(
        f"/api/v1/keys/{target.pk}/rotate", {"grace_seconds": 3600}, format="json"
    )
    new = rotated.json()["key"]
    target.refresh_from_db()
    assert target.digest.startswith("p2$") and "$" not in target.previous_digest
    assert key_client(new).get(WHOAMI).status_code == 200
    assert key_client(old).get(WHOAMI).status_code == 200  # the grace, under pepper 0


def test_retiring_a_pepper_ends_exactly_the_keys_digested_with_it(
    workspace, make_key, key_client, second_pepper
):
    second_pepper.WARDEN_KEY_PEPPER_ID = 2
    _, under_two = make_key(workspace)
    second_pepper.WARDEN_KEY_PEPPER_ID = 0
    _, under_zero = make_key(workspace)
    second_pepper.WARDEN_KEY_PEPPERS = {}
    refused = key_client(under_two).get(WHOAMI)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_key"
    assert key_client(under_zero).get(WHOAMI).status_code == 200


def test_a_digest_naming_another_pepper_never_matches(workspace, make_key, key_client, settings):
    key, plaintext = make_key(workspace)
    settings.WARDEN_KEY_PEPPERS = {"3": "pepper-three-" + "z" * 30}
    MachineKey.objects.filter(pk=key.pk).update(digest="p3$" + key.digest)
    assert key_client(plaintext).get(WHOAMI).status_code == 401
    MachineKey.objects.filter(pk=key.pk).update(digest="px$" + key.digest)
    assert key_client(plaintext).get(WHOAMI).status_code == 401


def test_a_pepper_id_without_a_pepper_is_refused_at_start_and_at_issue(
    workspace, make_key, settings
):
    settings.WARDEN_KEY_PEPPER_ID = 7
    with pytest.raises(ImproperlyConfigured, match="WARDEN_KEY_PEPPER_ID=7"):
        require_secret_key()
    with pytest.raises(ImproperlyConfigured):
        make_key(workspace)
    assert not MachineKey.objects.filter(workspace=workspace).exists()  # nothing half-made
