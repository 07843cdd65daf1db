"""Tests written to kill surviving mutants of approvals/conditions.py (docs/mutation.md).

A tool's condition decides whether a call needs a human; each variable the condition may
read must carry exactly the value the key, tool or workspace holds, and every failure
must be a ConditionError (which the gate turns into a `policy_error` denial), never a
crash or a silent False. Through the public `evaluate_condition` / `compile_condition`.
"""

from types import SimpleNamespace

import pytest

from approvals.conditions import ConditionError, compile_condition, evaluate_condition

pytestmark = pytest.mark.django_db


def holds(source, *, key=None, workspace=None, tool=None, params=None):
    return evaluate_condition(source, params=params or {}, key=key, workspace=workspace, tool=tool)


def failure(source, **kwargs) -> ConditionError:
    with pytest.raises(ConditionError) as raised:
        holds(source, **kwargs)
    return raised.value


@pytest.fixture
def key(workspace, make_key, make_member):
    owner = make_member(workspace, email="keeper@example.com")
    k, _ = make_key(workspace, scopes=("actions:write", "actions:read"), owner=owner, name="bot")
    k.unattended_mode = True  # in memory only: the condition reads what it is handed
    return k


def test_the_key_variables_carry_the_keys_values(key):
    assert holds(f'key.id == "{key.pk}"', key=key)
    assert holds('key.name == "bot"', key=key)
    assert holds('key.scopes == ["actions:read", "actions:write"]', key=key)
    assert holds("key.unattended_mode == true", key=key)
    assert holds("key.unattended == true", key=key)
    assert holds('key.owner == "keeper@example.com"', key=key)


def test_a_key_without_a_pk_is_named_by_its_id_and_without_an_owner_by_nothing():
    draft = SimpleNamespace(
        pk=None, id="k-1", name="d", scopes=None, unattended_mode=None, owner_id=None, owner=None
    )
    assert holds('key.id == "k-1"', key=draft)
    assert holds("key.scopes == []", key=draft)
    assert holds("key.unattended_mode == false && key.unattended == false", key=draft)
    assert holds('key.owner == ""', key=draft)
    nameless = SimpleNamespace(name="n", scopes=[], unattended_mode=False)
    assert holds('key.id == "" && key.owner == ""', key=nameless)
    # an owner object without an email (or with an empty one) reads as ""
    emailless = SimpleNamespace(
        pk=1, name="n", scopes=[], unattended_mode=False, owner_id=7, owner=SimpleNamespace()
    )
    assert holds('key.owner == "" && key.id == "1"', key=emailless)
    # owner_id set is what makes the owner read at all
    unlinked = SimpleNamespace(
        pk=2,
        name="n",
        scopes=[],
        unattended_mode=False,
        owner_id=None,
        owner=SimpleNamespace(email="ghost@example.com"),
    )
    assert holds('key.owner == ""', key=unlinked)


def test_the_workspace_variables_carry_the_workspaces_values(workspace):
    workspace.plan_rank = 3
    workspace.writes_enabled = True
    workspace.outbound_allowed = True
    assert holds(f'workspace.slug == "{workspace.slug}"', workspace=workspace)
    assert holds("workspace.plan_rank == 3", workspace=workspace)
    assert holds(f'workspace.mode == "{workspace.mode}"', workspace=workspace)
    assert holds("workspace.writes_enabled && workspace.outbound_allowed", workspace=workspace)
    workspace.writes_enabled = False
    workspace.outbound_allowed = False
    assert holds("!workspace.writes_enabled && !workspace.outbound_allowed", workspace=workspace)


def test_the_tool_variables_carry_the_tools_values(workspace, make_tool):
    tool = make_tool(workspace, "crm.refund", level="write", irreversible=True)
    tool.data_classes = ["pii", "financial"]
    assert holds('tool.name == "crm.refund"', tool=tool)
    assert holds('tool.level == "write"', tool=tool)
    assert holds("tool.irreversible == true", tool=tool)
    assert holds('tool.data_classes == ["financial", "pii"]', tool=tool)
    tool.data_classes = None
    tool.irreversible = False
    assert holds("tool.data_classes == [] && tool.irreversible == false", tool=tool)


def test_without_a_tool_the_tool_variables_are_empty():
    assert holds('tool.name == "" && tool.level == ""')
    assert holds("tool.irreversible == false && tool.data_classes == []")


def test_a_missing_field_is_a_condition_error_naming_it():
    error = failure("params.amount > 10")
    assert str(error) == "Missing field in condition input: 'amount'"


def test_a_type_error_is_a_condition_error_naming_its_type_and_first_line():
    error = failure("params.x + 1 > 0", params={"x": "a"})
    assert str(error).startswith("TypeError: Unsupported operation: string + int.")


def test_a_long_runtime_error_is_cut_to_its_first_300_characters():
    error = failure("f" + "x" * 400 + "(1)")
    text = str(error)
    assert text.startswith("RuntimeError: Undefined variable or function: 'fxxx")
    assert len(text) == len("RuntimeError: ") + 300


def test_a_result_that_is_not_a_bool_is_a_condition_error():
    error = failure("params.x", params={"x": 3})
    assert str(error) == "The condition returned int, not a bool."
    assert holds("params.x", params={"x": True}) is True
    assert holds("params.x", params={"x": False}) is False


def test_a_compile_error_carries_its_position():
    error = failure("params.x >")
    assert error.position.startswith("line 1, column ")
    assert str(error).startswith(f"Invalid condition at {error.position}: ")
    assert failure("   ").position == ""
    assert str(failure("   ")) == "The condition is empty."


def test_a_condition_may_not_name_an_unknown_variable():
    with pytest.raises(ConditionError) as raised:
        compile_condition("secrets.x == 1 && env.y == 2")
    assert str(raised.value) == (
        "Unknown variables in condition: env, secrets (use params, key, workspace and tool)."
    )
