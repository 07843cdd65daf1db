"""The pure decision function: no database, unsaved objects only."""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.gate import allowlisted, decide, effective_confirmation, pattern_matches
from approvals.models import Tool
from keys.models import MachineKey
from tenants.models import Workspace

pytestmark = pytest.mark.db_independent

ALL_ACTIONS = ["actions:read", "actions:write", "actions:external"]


def key(scopes=ALL_ACTIONS, tools=("*",), unattended=False):
    return MachineKey(
        id=uuid.uuid4(),
        name="agent",
        scopes=list(scopes),
        tool_allowlist=list(tools),
        unattended_mode=unattended,
    )


def workspace(**fields):
    values = dict(
        slug="acme",
        writes_enabled=True,
        mode="live",
        outbound_allowed=False,
        plan_rank=3,
        policy_version=7,
    )
    values.update(fields)
    return Workspace(**values)


def tool(name="crm.update_stage", **fields):
    snapshot = dict(
        name=name,
        description="",
        level="write",
        data_classes=[],
        irreversible=False,
        confirmation="never",
        condition="",
        summary_template="",
        secret_params=[],
        enabled=True,
    )
    snapshot.update(fields)
    return Tool(**snapshot)  # exactly what audit replay builds from Tool.snapshot()


def run(k=None, w=None, t=None, params=None):
    return decide(k or key(), w or workspace(), t or tool(), params or {}, 7)


# --- order of rules ------------------------------------------------------------------


def test_missing_tool_is_tool_not_allowed():
    decision = decide(key(), workspace(), None, {}, 7)
    assert (decision.outcome, decision.code, decision.rule) == (
        "denied",
        "tool_not_allowed",
        "allowlist",
    )


def test_disabled_tool_answers_like_missing():
    assert run(t=tool(enabled=False)).code == "tool_not_allowed"


def test_not_allowlisted_tool_is_tool_not_allowed():
    assert run(k=key(tools=["email.send"])).code == "tool_not_allowed"


def test_not_allowlisted_beats_missing_scope_so_existence_does_not_leak():
    decision = run(k=key(scopes=["actions:read"], tools=["email.*"]))
    assert decision.code == "tool_not_allowed"


def test_missing_level_scope_is_forbidden_by_scope():
    decision = run(k=key(scopes=["actions:read"]))
    assert decision.code == "forbidden_by_scope"
    assert decision.detail["required_scope"] == "actions:write"


def test_workspace_admin_implies_every_action_scope():
    assert run(k=key(scopes=["workspace:admin"])).allowed


def test_writes_switch_off_denies_write_and_external():
    off = workspace(writes_enabled=False)
    assert run(w=off).code == "writes_disabled"
    assert run(w=off, t=tool(level="external")).code == "writes_disabled"


def test_writes_switch_does_not_touch_reads():
    assert run(w=workspace(writes_enabled=False), t=tool(level="read")).allowed


def test_always_confirmation_requires_confirmation_with_summary():
    decision = run(
        t=tool(confirmation="always", summary_template="Move {params.deal} to {params.stage}"),
        params={"deal": 7, "stage": "won"},
    )
    assert decision.requires_confirmation
    assert decision.summary == "Move 7 to won"
    assert decision.rule == "confirmation"


def test_conditional_true_requires_confirmation_false_allows():
    refund = tool(confirmation="conditional", condition="params.amount > 1000")
    assert run(t=refund, params={"amount": 5000}).requires_confirmation
    assert run(t=refund, params={"amount": 10}).allowed


def test_condition_over_workspace_and_key():
    downgrade = tool(confirmation="conditional", condition="params.rank < workspace.plan_rank")
    assert run(t=downgrade, params={"rank": 1}).requires_confirmation
    assert run(t=downgrade, params={"rank": 5}).allowed
    named = tool(confirmation="conditional", condition='key.name == "agent"')
    assert run(t=named).requires_confirmation


@pytest.mark.parametrize(
    "params",
    [{"amount": "lots"}, {}, {"amount": None}, {"amount": [1]}],
    ids=["type-mismatch", "missing-field", "null", "list"],
)
def test_condition_errors_deny_with_policy_error(params):
    refund = tool(confirmation="conditional", condition="params.amount > 1000")
    decision = run(t=refund, params=params)
    assert (decision.outcome, decision.code, decision.rule) == (
        "denied",
        "policy_error",
        "condition",
    )
    assert "condition failed" in decision.reason


def test_non_bool_condition_result_denies():
    decision = run(
        t=tool(confirmation="conditional", condition="params.amount + 1"), params={"amount": 1}
    )
    assert decision.code == "policy_error"
    assert "not a bool" in decision.reason


def test_external_tool_needs_confirmation_unless_outbound_allowed():
    email = tool("email.send", level="external")
    decision = run(t=email)
    assert decision.requires_confirmation and decision.rule == "outbound"
    assert run(t=email, w=workspace(outbound_allowed=True)).allowed


def test_unattended_key_skips_tool_confirmation():
    decision = run(k=key(unattended=True), t=tool(confirmation="always"))
    assert decision.allowed and decision.rule == "unattended"


def test_unattended_key_does_not_lift_the_outbound_gate():
    decision = run(k=key(unattended=True), t=tool("email.send", level="external"))
    assert decision.requires_confirmation and decision.rule == "outbound"


def test_unattended_key_never_skips_platform_operations():
    platform = tool("warden.workspace.go_live", confirmation="always", irreversible=True)
    decision = decide(
        key(scopes=["workspace:admin"], unattended=True),
        workspace(),
        platform,
        {},
        7,
        scope="workspace:admin",
    )
    assert decision.requires_confirmation and decision.irreversible
    assert decision.rule == "platform"


def test_platform_tool_needs_its_control_plane_scope():
    platform = tool("warden.key.create_admin", confirmation="always")
    decision = decide(key(scopes=ALL_ACTIONS), workspace(), platform, {}, 7, scope="keys:write")
    assert decision.code == "forbidden_by_scope"


def test_irreversible_flag_is_carried():
    assert run(t=tool(confirmation="always", irreversible=True)).irreversible


def test_policy_version_is_recorded():
    assert decide(key(), workspace(), tool(), {}, 42).policy_version == 42


def test_dry_run_gates_exactly_like_live():
    for t in [tool(), tool(confirmation="always"), tool(level="external")]:
        live = run(w=workspace(mode="live"), t=t)
        dry = run(w=workspace(mode="dry_run"), t=t)
        assert (live.outcome, live.code, live.rule) == (dry.outcome, dry.code, dry.rule)


def test_decide_runs_without_a_database():
    # No django_db mark: any ORM query here would fail the test.
    assert run().allowed


# --- allowlist patterns ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*", "anything.at.all", True),
        ("crm.*", "crm.lookup", True),
        ("crm.*", "crm.deals.update", True),
        ("crm.*", "crm", False),
        ("crm.*", "crmx.lookup", False),
        ("email.send", "email.send", True),
        ("email.send", "email.sender", False),
        ("email.send", "email.send.bulk", False),
    ],
)
def test_pattern_matches(pattern, name, expected):
    assert pattern_matches(pattern, name) is expected


def test_empty_allowlist_allows_nothing():
    assert not allowlisted([], "crm.lookup")


def test_effective_confirmation_for_listing():
    k, w = key(), workspace()
    assert effective_confirmation(k, w, tool(level="external")) == "always"
    assert effective_confirmation(k, w, tool(confirmation="conditional")) == "conditional"
    assert effective_confirmation(key(unattended=True), w, tool(confirmation="always")) == "never"


# --- properties ----------------------------------------------------------------------

names = st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,6}){0,2}", fullmatch=True)
patterns = st.one_of(st.just("*"), names, names.map(lambda n: n + ".*"))
scope_sets = st.lists(
    st.sampled_from([*ALL_ACTIONS, "keys:read", "tools:write", "workspace:admin"]), max_size=4
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
params_strategy = st.dictionaries(
    st.sampled_from(["amount", "to", "rank", "x"]), json_values, max_size=4
)
conditions = st.sampled_from(
    [
        "params.amount > 1000",
        "params.rank < workspace.plan_rank",
        "params.to.endsWith('@example.com')",
        "size(params) > 1",
        "params.x",
        "key.unattended_mode || workspace.writes_enabled",
    ]
)
tools_strategy = st.builds(
    tool,
    name=names,
    level=st.sampled_from(["read", "write", "external"]),
    confirmation=st.sampled_from(["never", "always", "conditional"]),
    condition=conditions,
    irreversible=st.booleans(),
    enabled=st.booleans(),
)
keys_strategy = st.builds(
    key, scopes=scope_sets, tools=st.lists(patterns, max_size=3), unattended=st.booleans()
)
workspaces_strategy = st.builds(
    workspace,
    writes_enabled=st.booleans(),
    outbound_allowed=st.booleans(),
    mode=st.sampled_from(["live", "dry_run"]),
    plan_rank=st.integers(0, 10),
)


@settings(max_examples=300, deadline=None)
@given(keys_strategy, workspaces_strategy, tools_strategy, params_strategy)
def test_property_never_allowed_without_scope_or_allowlist(k, w, t, params):
    decision = decide(k, w, t, params, 1)
    level_scope = f"actions:{t.level}"
    if decision.outcome != "denied":
        assert t.enabled
        assert allowlisted(k.tool_allowlist, t.name)
        assert level_scope in k.scopes or "workspace:admin" in k.scopes
        if t.level in ("write", "external"):
            assert w.writes_enabled


@settings(max_examples=300, deadline=None)
@given(keys_strategy, workspaces_strategy, tools_strategy, params_strategy)
def test_property_external_never_allowed_without_outbound(k, w, t, params):
    decision = decide(k, w, t, params, 1)
    if t.level == "external" and not w.outbound_allowed:
        assert not decision.allowed


@settings(max_examples=300, deadline=None)
@given(keys_strategy, workspaces_strategy, tools_strategy, params_strategy)
def test_property_condition_errors_never_allow(k, w, t, params):
    from approvals.conditions import ConditionError, evaluate_condition

    if t.confirmation != "conditional":
        return
    try:
        evaluate_condition(t.condition, params=params, key=k, workspace=w)
    except ConditionError:
        decision = decide(k, w, t, params, 1)
        assert decision.denied
        if decision.rule == "condition":
            assert decision.code == "policy_error"


@settings(max_examples=200, deadline=None)
@given(keys_strategy, workspaces_strategy, tools_strategy, params_strategy)
def test_property_decision_is_deterministic_and_dry_run_blind(k, w, t, params):
    first = decide(k, w, t, params, 1)
    w.mode = "dry_run" if w.mode == "live" else "live"
    second = decide(k, w, t, params, 1)
    assert (first.outcome, first.code, first.rule) == (second.outcome, second.code, second.rule)


@settings(max_examples=200, deadline=None)
@given(workspaces_strategy, tools_strategy, params_strategy, st.booleans())
def test_property_platform_operations_always_need_a_human(w, t, params, unattended):
    t.name = "warden.workspace.go_live"
    t.enabled = True
    k = key(scopes=["workspace:admin"], unattended=unattended)
    decision = decide(k, w, t, params, 1, scope="workspace:admin")
    assert decision.requires_confirmation
