"""The README's Python MCP snippet works as printed: extracted by its marker and run
against a live server with a real machine key."""

import contextlib
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("mcp")

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- readme-snippet: mcp-python -->"


def readme_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, "the README must mark exactly one Python MCP snippet"
    found = re.match(r"\s*```python\n(.*?)\n```", text.split(MARKER, 1)[1], re.DOTALL)
    assert found, "the marker must be followed by a ```python block"
    return found.group(1)


def test_the_readme_python_snippet_runs_against_a_live_server(
    live_server, synced, gw_agent, monkeypatch, upstream
):
    _, _, plaintext = gw_agent
    monkeypatch.setenv("WARDEN_URL", live_server.url)
    monkeypatch.setenv("WARDEN_KEY", plaintext)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(readme_snippet(), str(README), "exec"), {"__name__": "__readme__"})
    output = printed.getvalue()
    assert "tools: ['crm-lookup', 'crm-send']" in output  # portable MCP names
    assert "result: done: lookup" in output  # the fake upstream's text, through Warden
    assert upstream.tool_calls() == [("lookup", {"customer_id": 42})]
