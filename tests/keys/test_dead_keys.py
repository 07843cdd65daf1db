"""Every foundation state change refuses a dead key (revoked, suspended, expired) with
its code, and changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from common.actor import Actor
from keys.models import MachineKey
from keys.services import key_revoke, key_set_suspended
from tenants.models import Membership, Role

SYSTEM = Actor.system("tests")

CALLS = [
    ("post", "/api/v1/keys", {"name": "bot", "scopes": ["actions:read"]}),
    ("post", "/api/v1/keys/{key}/revoke", {}),
    ("post", "/api/v1/keys/{key}/rotate", {}),
    ("post", "/api/v1/members", {"email": "new@example.test", "role": "member"}),
    ("patch", "/api/v1/members/{member}", {"role": "admin"}),
    ("delete", "/api/v1/members/{member}", None),
]


def kill(key, how):
    if how == "revoked":
        key_revoke(reason="test set-up", key=key, actor=SYSTEM)
        return "key_revoked"
    if how == "suspended":
        key_set_suspended(key=key, suspended=True, actor=SYSTEM, reason="tests")
        return "key_revoked"
    MachineKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return "key_expired"


def snapshot(workspace):
    return (
        list(MachineKey.objects.order_by("pk").values_list("pk", "digest", "revoked_at")),
        sorted(Membership.objects.filter(workspace=workspace).values_list("pk", "role")),
        AuditEntry.objects.filter(workspace=workspace).count(),
    )


@pytest.mark.parametrize("how", ["revoked", "suspended", "expired"])
@pytest.mark.parametrize(("method", "template", "body"), CALLS)
def test_dead_key_changes_nothing(
    workspace, make_key, make_member, key_client, api_error, how, method, template, body
):
    dead, plaintext = make_key(workspace, scopes=["workspace:admin"])
    target, _ = make_key(workspace)
    member = Membership.objects.get(workspace=workspace, user=make_member(workspace, Role.MEMBER))
    code = kill(dead, how)
    before = snapshot(workspace)
    client = key_client(plaintext)
    path = template.format(key=target.pk, member=member.pk)
    response = (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )
    api_error(response, 401, code)
    assert snapshot(workspace) == before
