"""One Principal per API request: a key or a human in a workspace, answering
has_scope, can, actor and rate_limit; the only place that tells the two apart."""

import ast
from pathlib import Path

import pytest

from common.actor import Actor
from common.errors import WardenError
from common.principal import KEY, USER, Principal
from common.scopes import SCOPE_PERMISSION
from tenants.models import Role

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("approvals", "audit", "common", "gateway", "keys", "notifications", "tenants")


def _key_principal(scopes):
    return Principal(
        kind=KEY,
        actor=Actor("key:k"),
        workspace=None,
        rate_limit=60,
        rate_ident="key:k",
        scopes=frozenset(scopes),
        scope_permission=SCOPE_PERMISSION,
    )


def _human_principal(permissions):
    return Principal(
        kind=USER,
        actor=Actor("user:ann@example.test"),
        workspace=None,
        rate_limit=600,
        rate_ident="user:1",
        scope_permission=SCOPE_PERMISSION,
        load_permissions=lambda: frozenset(permissions),
    )


def test_a_key_has_exactly_its_scopes_and_names_the_missing_one():
    principal = _key_principal({"keys:read"})
    assert principal.has_scope("keys:read")
    assert not principal.has_scope("keys:write")
    with pytest.raises(WardenError) as refused:
        principal.require_scope("keys:write")
    assert refused.value.code == "forbidden_by_scope"
    assert refused.value.detail == {"required_scope": "keys:write"}


def test_a_human_holds_a_scope_through_its_permission_never_an_agent_scope():
    principal = _human_principal({"manage_keys", "manage_workspace"})
    assert principal.has_scope("keys:write")
    assert principal.can("manage_keys")
    assert not principal.has_scope("actions:read")  # agents only, owners included
    with pytest.raises(WardenError) as refused:
        principal.require_scope("audit:read")
    assert refused.value.detail == {
        "required_scope": "audit:read",
        "required_permission": "view_audit",
    }


def test_permissions_are_fetched_once_and_only_when_asked():
    calls = []

    def load():
        calls.append(1)
        return frozenset({"view_audit"})

    principal = Principal(
        kind=USER, actor=Actor("user:x"), workspace=None, rate_limit=1, rate_ident="user:1",
        load_permissions=load,
    )  # fmt: skip
    assert calls == []
    assert principal.can("view_audit") and not principal.can("manage_keys")
    assert calls == [1]


def test_one_guardian_question_answers_every_check_of_a_request(
    workspace, make_member, user_client, django_assert_max_num_queries
):
    """GET /tools as a human asks for tools:write twice (scope table and handler)."""
    admin = make_member(workspace, Role.ADMIN)
    client = user_client(admin, workspace)
    client.get("/api/v1/tools")  # warm
    with django_assert_max_num_queries(6) as ctx:
        response = client.get("/api/v1/tools")
    assert response.status_code == 200
    guardian = [q for q in ctx.captured_queries if "objectpermission" in q["sql"]]
    assert len(guardian) == 2  # the user's and their role group's grants, once


def test_whoami_tells_a_key_from_a_human(workspace, make_key, key_client, user_client):
    key, plaintext = make_key(workspace, scopes=["keys:read"])
    as_key = key_client(plaintext).get("/api/v1/whoami").json()
    assert as_key["principal"] == "key" and as_key["scopes"] == ["keys:read"]
    as_human = user_client(key.owner, workspace).get("/api/v1/whoami").json()
    assert as_human["principal"] == "user" and as_human["user"]["email"] == key.owner.email


@pytest.mark.parametrize("who", ["key", "human"])
def test_a_request_works_out_its_credential_once(
    who, workspace, make_key, key_client, user_client, monkeypatch
):
    """The throttle and the principal both ask who is calling and what it is charged
    to; the answer is worked out once and kept on the request (it was three and two)."""
    from keys import principal as principal_module

    counted = {"kind": 0, "rate": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            counted[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(principal_module, "_kind_of", counting("kind", principal_module._kind_of))
    monkeypatch.setattr(principal_module, "_rate_of", counting("rate", principal_module._rate_of))
    key, plaintext = make_key(workspace, scopes=["keys:read"])
    client = key_client(plaintext) if who == "key" else user_client(key.owner, workspace)
    assert client.get("/api/v1/whoami").status_code == 200
    assert counted == {"kind": 1, "rate": 1}


def _python_files():
    for directory in SOURCE_DIRS:
        for path in (ROOT / directory).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def test_only_the_principal_tells_a_key_from_a_human():
    """No `isinstance(..., MachineKey)` outside keys/principal.py."""
    offenders = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "isinstance"
                and len(node.args) == 2
                and "MachineKey" in ast.unparse(node.args[1])
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert [o.split(":")[0] for o in offenders] == ["keys/principal.py"], offenders


def test_one_request_to_actor_helper():
    """Actor.for_request is the only code that turns a request into an Actor."""
    offenders = []
    for path in _python_files():
        if path.relative_to(ROOT).as_posix() == "common/actor.py":
            continue
        text = path.read_text()
        for call in ("Actor.for_user(", "Actor.for_key("):
            if call in text:
                offenders.append(f"{path.relative_to(ROOT)}: {call}")
    assert offenders == []
