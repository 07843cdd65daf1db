"""Impact replay: a seeded history with known answers, replayed under proposed policies
(approvals.policy_impact.simulate)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.asking import action_submit
from approvals.catalog import tool_update
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, Tool
from approvals.policy_impact import simulate
from common.errors import WardenError
from tests.conftest import SYSTEM

AMOUNTS = (50, 150, 250, 80, 500)  # condition amount > 100: 3 need a human, 2 allowed


@pytest.fixture
def refund(live_workspace, make_tool):
    return make_tool(
        live_workspace,
        name="billing.refund",
        level="write",
        confirmation="conditional",
        condition="params.amount > 100",
        summary_template="Refund {params.amount}",
    )


@pytest.fixture
def agent_key(live_workspace, make_key):
    key, _ = make_key(live_workspace, scopes=["actions:read", "actions:write"], name="refunder")
    return key


@pytest.fixture
def history(refund, agent_key):
    """Five refunds decided under the condition `amount > 100`."""
    outcomes = [
        action_submit(key=agent_key, tool_name=refund.name, params={"amount": a}, actor=SYSTEM)
        for a in AMOUNTS
    ]
    assert [o.allowed for o in outcomes] == [True, False, False, True, False]
    return {a: o.action_id for a, o in zip(AMOUNTS, outcomes, strict=True)}


def catalog(workspace, **changes):
    """Today's catalog as snapshots, with `changes` applied to billing.refund."""
    tools = [t.snapshot() for t in Tool.objects.filter(workspace=workspace)]
    for snapshot in tools:
        if snapshot["name"] == "billing.refund":
            snapshot.update(changes)
    return tools


def test_unchanged_policy_changes_nothing(live_workspace, history):
    report = simulate(live_workspace, None)
    assert (report.scanned, report.changed, report.drift) == (5, 0, 0)
    assert report.headline == "would have changed none of last month's 5 decisions"


def test_loosened_condition_counts_exactly_the_requests_it_lets_through(live_workspace, history):
    report = simulate(live_workspace, catalog(live_workspace, condition="params.amount > 200"))
    assert report.scanned == 5 and report.changed == 1
    assert report.summary["now_allowed_without_human"] == 1
    assert report.transitions == [{"from": "needs a human", "to": "allowed", "count": 1}]
    assert [e["action_id"] for e in report.examples] == [history[150]]
    assert report.examples[0]["key"] == "refunder"
    assert report.headline == (
        "would have let 1 of last month's 5 billing.refund requests through without a human"
    )
    assert report.tools == [{"tool": "billing.refund", "changed": 1, "requests": 5}]
    assert [k["name"] for k in report.keys] == ["refunder"]


def test_tightened_rule_sends_the_allowed_ones_to_a_human(live_workspace, history):
    report = simulate(live_workspace, catalog(live_workspace, confirmation="always"))
    assert report.changed == 2
    assert report.summary["now_needs_human"] == 2
    assert {e["action_id"] for e in report.examples} == {history[50], history[80]}
    assert "would have sent 2 of last month's 5 billing.refund requests to a human" in (
        report.headline
    )


def test_removed_tool_denies_everything(live_workspace, history):
    report = simulate(live_workspace, [])
    assert report.summary["now_denied"] == 5
    assert {(t["from"], t["to"]) for t in report.transitions} == {
        ("allowed", "denied (tool_not_allowed)"),
        ("needs a human", "denied (tool_not_allowed)"),
    }


def test_two_approvals_setting_counts_one_to_two(live_workspace, history, refund):
    tools = catalog(live_workspace, irreversible=True)
    report = simulate(live_workspace, tools, {"require_two_approvals_for_irreversible": True})
    # Irreversible: the floor sends all five to a human; the three that waited for one
    # now wait for two, the two allowed now need two as well.
    assert report.summary["more_approvals"] == 3
    assert report.summary["now_needs_human"] == 2
    assert {"from": "needs a human", "to": "needs 2 humans", "count": 3} in report.transitions


def test_requests_decided_under_an_older_policy_version(live_workspace, agent_key, refund):
    """Two allowed under v(never), then the rule became conditional: the replay compares
    each request with what it got, whatever version decided it."""
    with operator_seeding():  # set-up: loosening is governed
        tool_update(
            reason="test set-up", tool=refund, actor=SYSTEM, changes={"confirmation": "never"}
        )
    old = [
        action_submit(key=agent_key, tool_name=refund.name, params={"amount": a}, actor=SYSTEM)
        for a in (300, 20)
    ]
    old_version = old[0].action.policy_version
    tool_update(
        reason="test set-up", tool=refund, actor=SYSTEM, changes={"confirmation": "conditional"}
    )
    new = action_submit(key=agent_key, tool_name=refund.name, params={"amount": 400}, actor=SYSTEM)
    assert new.action.policy_version > old_version
    assert [o.allowed for o in old] == [True, True] and not new.allowed

    report = simulate(live_workspace, None)  # today's policy: amount > 100 needs a human
    assert report.scanned == 3
    assert report.changed == 1 and report.drift == 1
    assert report.examples[0]["action_id"] == old[0].action_id
    assert (report.examples[0]["recorded"], report.examples[0]["proposed"]) == (
        "allowed",
        "needs a human",
    )
    assert any("today's policy" in note for note in report.notes)


def test_window_excludes_older_requests_and_other_workspaces(
    live_workspace, history, make_workspace, make_key, make_tool
):
    ActionRequest.objects.filter(pk=history[50]).update(
        created_at=timezone.now() - timedelta(days=8)
    )
    other = make_workspace(writes_enabled=True, mode="live")
    make_tool(other, name="billing.refund", level="write")
    other_key, _ = make_key(other, scopes=["actions:read", "actions:write"])
    action_submit(key=other_key, tool_name="billing.refund", params={"amount": 9}, actor=SYSTEM)
    assert simulate(live_workspace, None, days=7).scanned == 4
    assert simulate(live_workspace, None, days=30).scanned == 5


def test_limit_keeps_the_newest_and_says_capped(live_workspace, history):
    report = simulate(live_workspace, None, limit=2)
    assert report.scanned == 2 and report.capped
    assert any("capped" in n for n in report.notes)


@pytest.mark.parametrize(
    ("tools", "settings", "path"),
    [
        ([{"name": "billing.refund", "colour": "red"}], None, "tools[0].colour"),
        ([{"name": "billing.refund", "confirmation": "sometimes"}], None, "tools[0].confirmation"),
        (
            [{"name": "x.y", "confirmation": "conditional", "condition": "1 +"}],
            None,
            "tools[0].condition",
        ),
        ([{"level": "read"}], None, "tools[0].name"),
        ([{"name": "a.b"}, {"name": "a.b"}], None, "tools[1].name"),
        (None, {"writes_enabled": "yes"}, "settings.writes_enabled"),
        (None, {"colour": 1}, "settings.colour"),
    ],
)
def test_invalid_proposals_are_refused_with_their_path(live_workspace, tools, settings, path):
    with pytest.raises(WardenError) as raised:
        simulate(live_workspace, tools, settings)
    assert raised.value.code == "validation_error"
    assert path in raised.value.detail
