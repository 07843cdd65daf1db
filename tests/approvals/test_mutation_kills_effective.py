"""Tests written to kill surviving mutants of approvals/effective.py's judgement
functions (docs/mutation.md): how many humans a tool needs, who may approve, which
tools a key may call. Through the public `widening`; pure, no database.
"""

import pytest

from approvals.effective import KEY, MEMBERSHIP, TOOL, widening

pytestmark = pytest.mark.db_independent


def tool_change(before: dict, after: dict) -> tuple[str, ...]:
    return widening(TOOL, {"name": "crm.x", **before}, {"name": "crm.x", **after})


def test_how_many_humans_a_tool_needs_only_grows_without_a_second_human():
    assert tool_change({"confirmation": "never"}, {"confirmation": "always"}) == ()
    assert tool_change({"confirmation": "conditional"}, {"confirmation": "always"}) == ()
    assert (
        tool_change({"confirmation": "never"}, {"confirmation": "conditional", "condition": "true"})
        == ()
    )
    assert tool_change({"confirmation": "always"}, {"confirmation": "never"}) == ("confirmation",)
    assert tool_change({"confirmation": "conditional"}, {"confirmation": "never"}) == (
        "confirmation",
    )
    assert tool_change(
        {"confirmation": "always", "condition": "x"},
        {"confirmation": "conditional", "condition": "x"},
    ) == ("confirmation",)
    # the same condition, only re-spaced: not a new condition
    assert (
        tool_change(
            {"confirmation": "conditional", "condition": "a > 1", "level": "read"},
            {"confirmation": "conditional", "condition": " a > 1 ", "level": "write"},
        )
        == ()
    )
    assert tool_change(
        {"confirmation": "conditional", "condition": "a > 1"},
        {"confirmation": "conditional", "condition": "a > 2"},
    ) == ("condition",)
    assert tool_change({"confirmation": "never"}, {"confirmation": "sometimes"}) == (
        "confirmation",
    )


def test_raising_someone_to_a_role_that_approves_is_governed():
    def role(was, now):
        return widening(MEMBERSHIP, {"role": was}, {"role": now})

    assert role("owner", "member") == ()
    assert role("admin", "approver") == ()
    assert role("approver", "auditor") == ()
    assert role("member", "auditor") == ()  # higher, but may not approve
    assert role("member", "approver") == ("role",)
    assert role("approver", "admin") == ("role",)
    assert role("admin", "owner") == ("role",)
    assert role(None, "approver") == ("role",)
    assert role("approver", "unknown") == ()  # no role that approves


def test_a_key_may_only_lose_tools_and_scopes_without_a_second_human():
    def key(before, after):
        return widening(KEY, before, after)

    assert key({"tool_allowlist": ["crm.*"]}, {"tool_allowlist": ["crm.read"]}) == ()
    assert key({"tool_allowlist": ["crm.*"]}, {"tool_allowlist": ["crm.a.b"]}) == ()
    assert key({"tool_allowlist": ["*"]}, {"tool_allowlist": ["email.*"]}) == ()
    assert key({"tool_allowlist": ["crm.r*"]}, {"tool_allowlist": ["crm.read"]}) == ()
    assert key({"tool_allowlist": ["crm.read"]}, {"tool_allowlist": ["crm.*"]}) == (
        "tool_allowlist",
    )
    assert key({"tool_allowlist": ["crm.r*"]}, {"tool_allowlist": ["crm.re*"]}) == (
        "tool_allowlist",
    )
    assert key({"tool_allowlist": ["crm.*"]}, {"tool_allowlist": ["crmx.read"]}) == (
        "tool_allowlist",
    )
    assert key({"tool_allowlist": []}, {"tool_allowlist": ["crm.read"]}) == ("tool_allowlist",)
    assert key({"tool_allowlist": None}, {"tool_allowlist": []}) == ()
    assert key({"scopes": ["workspace:admin"]}, {"scopes": ["actions:write"]}) == ()
    assert key({"scopes": ["actions:read"]}, {"scopes": ["workspace:admin"]}) == ("scopes",)
