"""The README's Python MCP snippet works as printed: extracted by its marker and run
against a live server with a real machine key."""

import contextlib
import io

import pytest

from tests.docs import snippet

pytest.importorskip("mcp")

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def readme_snippet() -> str:
    return snippet("mcp-python")


def test_the_readme_python_snippet_runs_against_a_live_server(
    live_server, synced, gw_agent, monkeypatch, upstream
):
    _, _, plaintext = gw_agent
    monkeypatch.setenv("WARDEN_URL", live_server.url)
    monkeypatch.setenv("WARDEN_KEY", plaintext)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(readme_snippet(), "<snippet mcp-python>", "exec"), {"__name__": "__readme__"})
    output = printed.getvalue()
    assert "tools: ['crm-lookup', 'crm-send']" in output  # portable MCP names
    assert "result: done: lookup" in output  # the fake upstream's text, through Warden
    assert upstream.tool_calls() == [("lookup", {"customer_id": 42})]
