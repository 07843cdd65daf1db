"""Tests written to kill surviving mutants of approvals/gate.py's `decide` and its helpers
(docs/mutation.md).

Every branch of the decision is asserted as a whole `Decision` (outcome, rule, reason,
policy version, code, detail, summary, irreversible): the audit entry records each of
them, and an approver or an auditor reads the reason. Pure: no database.
"""

import pytest

from approvals.gate import (
    ALLOWED,
    DENIED,
    REQUIRES_CONFIRMATION,
    Decision,
    allowlisted,
    decide,
    is_platform_tool,
    pattern_matches,
)
from approvals.summary import render_summary
from tests.approvals.test_gate import key, tool, workspace

pytestmark = pytest.mark.db_independent


def denied(code, rule, reason, **detail) -> Decision:
    return Decision(DENIED, rule, reason, 7, code=code, detail=detail)


def test_pattern_matching_is_exact_prefix_or_glob_and_nothing_more():
    assert pattern_matches("*", "anything.at.all")
    assert pattern_matches("crm.*", "crm.read")
    assert pattern_matches("crm.*", "crm.read.deep")
    assert pattern_matches("crm.*", "crm.x") and pattern_matches("crm.*", "crm.ab")
    assert not pattern_matches("crm.*", "crm.")  # the prefix alone is no tool
    assert not pattern_matches("crm.*", "crm")
    assert not pattern_matches("crm.*", "crmx.read")
    assert pattern_matches("crm.r*", "crm.read")
    assert not pattern_matches("crm.r*", "crm.update")
    assert pattern_matches("crm.read", "crm.read")
    assert not pattern_matches("crm.read", "crm.read2")
    # without a `*` a pattern is an exact name: `?` and `[` are not wildcards there
    assert not pattern_matches("crm.re?d", "crm.read")
    assert not pattern_matches("crm.[r]ead", "crm.read")
    assert pattern_matches("crm.re?d", "crm.re?d")


def test_allowlist_reads_only_string_patterns():
    assert allowlisted(["email.*", "crm.read"], "crm.read")
    assert not allowlisted(["email.*"], "crm.read")
    assert not allowlisted(None, "crm.read")
    assert not allowlisted([None, 3, {"*": 1}], "crm.read")
    assert allowlisted([3, "*"], "crm.read")


def test_platform_tools_are_the_warden_namespace():
    assert is_platform_tool(tool("warden.workspace.go_live"))
    assert not is_platform_tool(tool("crm.warden.x"))
    assert not is_platform_tool(tool("wardenx.y"))
    assert not is_platform_tool(tool(""))
    assert not is_platform_tool(tool(None))


def test_each_denial_is_recorded_with_its_rule_reason_code_and_version():
    w, k = workspace(), key()
    assert decide(k, w, None, {}, 7) == denied(
        "tool_not_allowed", "allowlist", "tool unknown or disabled"
    )
    assert decide(k, w, tool(enabled=False), {}, 7) == denied(
        "tool_not_allowed", "allowlist", "tool unknown or disabled"
    )
    assert decide(k, w, tool(), [], 7) == denied(
        "validation_error", "params", "params must be a JSON object"
    )
    assert decide(key(tools=["email.*"]), w, tool(), {}, 7) == denied(
        "tool_not_allowed", "allowlist", "not on the key's allowlist"
    )
    assert decide(key(scopes=["actions:read"]), w, tool(), {}, 7) == denied(
        "forbidden_by_scope", "scope", "lacks actions:write", required_scope="actions:write"
    )
    assert decide(k, workspace(writes_enabled=False), tool(), {}, 7) == denied(
        "writes_disabled", "writes", "the workspace's writes switch is off"
    )
    # a read needs no writes switch
    assert decide(k, workspace(writes_enabled=False), tool(level="read"), {}, 7).allowed


def test_a_platform_operation_needs_the_scope_it_names_and_then_a_human():
    platform = tool("warden.workspace.go_live", level="read", summary_template="go live")
    assert decide(key(), workspace(), platform, {}, 7) == denied(
        "forbidden_by_scope", "scope", "lacks ", required_scope=""
    )
    assert decide(key(), workspace(), platform, {}, 7, scope="workspace:admin") == denied(
        "forbidden_by_scope", "scope", "lacks workspace:admin", required_scope="workspace:admin"
    )
    exact = key(scopes=["keys:write"], tools=[])  # the named scope itself, not admin
    assert decide(exact, workspace(), platform, {}, 7, scope="keys:write").requires_confirmation
    held = key(scopes=["workspace:admin"], tools=[])  # no allowlist needed, no writes switch
    decision = decide(held, workspace(writes_enabled=False), platform, {"x": 1}, 7, scope="x:y")
    assert decision == Decision(
        REQUIRES_CONFIRMATION,
        "platform",
        "the platform's own operations always need a human",
        7,
        summary=render_summary("go live", {"x": 1}, tool_name=platform.name, secret_params=[]),
        irreversible=False,
    )


def test_a_deny_rule_refuses_with_its_stated_reason_or_the_default():
    w, k = workspace(), key()
    ruled = tool(deny_condition="params.amount > 10", deny_reason="Too much.")
    assert decide(k, w, ruled, {"amount": 11}, 7) == denied(
        "denied_by_policy", "deny_condition", "Too much.", stated="Too much."
    )
    assert decide(k, w, ruled, {"amount": 10}, 7).allowed
    unstated = tool(deny_condition="params.amount > 10", deny_reason="")
    default = "The tool's policy refuses this call."
    assert decide(k, w, unstated, {"amount": 11}, 7) == denied(
        "denied_by_policy", "deny_condition", default, stated=default
    )
    broken = decide(k, w, tool(deny_condition="params.missing > 1"), {}, 7)
    assert (broken.outcome, broken.code, broken.rule) == (DENIED, "policy_error", "deny_condition")
    assert broken.reason.startswith("deny rule failed: ") and broken.reason != "deny rule failed: "
    assert broken.detail == {} and broken.policy_version == 7
    # the deny rule reads the calling key
    by_key = tool(deny_condition='key.name == "agent"')
    assert decide(k, w, by_key, {}, 7).code == "denied_by_policy"
    # ... and the workspace and the tool
    by_context = tool(deny_condition='workspace.slug == "acme" && tool.level == "write"')
    assert decide(k, w, by_context, {}, 7).code == "denied_by_policy"
    # a blank deny rule is no rule (not evaluated, so it cannot fail)
    assert decide(k, w, tool(deny_condition="   "), {}, 7).allowed


def test_a_failing_confirmation_condition_denies():
    t = tool(confirmation="conditional", condition="params.missing > 1")
    broken = decide(key(), workspace(), t, {}, 7)
    assert (broken.outcome, broken.code, broken.rule) == (DENIED, "policy_error", "condition")
    assert broken.reason.startswith("condition failed: ") and broken.reason != "condition failed: "
    assert broken.detail == {} and broken.policy_version == 7


def test_each_allowance_and_confirmation_names_its_rule_and_reason():
    w, k = workspace(), key()
    assert decide(k, w, tool(), {}, 7) == Decision(
        ALLOWED, "confirmation", "the tool needs no confirmation", 7
    )
    always = tool(confirmation="always", summary_template="s")
    assert decide(k, w, always, {"a": 1}, 7) == Decision(
        REQUIRES_CONFIRMATION,
        "confirmation",
        "the tool always needs confirmation",
        7,
        summary=render_summary("s", {"a": 1}, tool_name=always.name, secret_params=[]),
    )
    assert decide(key(unattended=True), w, tool(confirmation="always"), {}, 7) == Decision(
        ALLOWED, "unattended", "unattended key skips the confirmation rule", 7
    )
    external = tool(level="external")
    outbound = decide(k, w, external, {}, 7)
    assert (outbound.outcome, outbound.rule, outbound.reason) == (
        REQUIRES_CONFIRMATION,
        "outbound",
        "external effects need confirmation (outbound off)",
    )
    assert decide(k, workspace(outbound_allowed=True), external, {}, 7).allowed
    floor = decide(k, w, tool(irreversible=True, summary_template="t"), {}, 7)
    assert floor == Decision(
        REQUIRES_CONFIRMATION,
        "floor",
        "sensitivity floor: irreversible actions always reach a human",
        7,
        summary=render_summary("t", {}, tool_name="crm.update_stage", secret_params=[]),
        irreversible=True,
    )
    pii = decide(k, w, tool(level="read", data_classes=["pii"]), {}, 7)
    assert pii == Decision(
        ALLOWED,
        "confirmation",
        "the tool needs no confirmation; reads personal data (pii): allowed and recorded",
        7,
    )
    # the tool's own rule decides first: the floor does not rename an `always` tool's rule
    own = decide(k, w, tool(confirmation="always", irreversible=True), {}, 7)
    assert (own.rule, own.reason, own.irreversible) == (
        "confirmation",
        "the tool always needs confirmation",
        True,
    )
    # a workspace with the floor off is not held to it
    off = decide(k, workspace(sensitivity_floor=False), tool(irreversible=True), {}, 7)
    assert off == Decision(ALLOWED, "confirmation", "the tool needs no confirmation", 7)
    # without a template, the approver's summary names the tool
    plain = decide(k, w, tool(confirmation="always"), {}, 7)
    assert "crm.update_stage" in plain.summary
    # summary=False (a replay that only counts) skips rendering
    quiet = decide(k, w, tool(confirmation="always", summary_template="s"), {}, 7, summary=False)
    assert quiet.requires_confirmation and quiet.summary == ""


def test_the_summary_hides_secret_params():
    # `memo` is no name the summary hides by itself: only the tool's secret_params hide it
    t = tool(confirmation="always", summary_template="", secret_params=["memo"])
    decision = decide(key(), workspace(), t, {"to": "bob", "memo": "s3cret"}, 7)
    assert "bob" in decision.summary and "s3cret" not in decision.summary
    assert "memo=[secret]" in decision.summary
