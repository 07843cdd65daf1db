"""The documentation as tests read it: the README (the front page) and the site's pages
under docs/. Runnable code blocks carry a marker on the line above them:
`<!-- snippet: NAME -->` (a test runs it, found by NAME) or
`<!-- snippet: not-run: why -->`; tests/test_docs.py holds every block to one of them."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE = frozenset({"sh", "bash", "shell", "console", "python"})
MARKER = re.compile(r"^\s*<!-- snippet: (?P<mark>.+?) -->\s*$")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def documentation_text() -> str:
    """Every page, concatenated: what "documented" means for the meta-tests."""
    return "\n".join(page.read_text(encoding="utf-8") for page in pages())


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    mark: str | None  # the marker's text, None when unmarked
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for page in pages():
        lines = page.read_text(encoding="utf-8").split("\n")
        i = 0
        while i < len(lines):
            fence = lines[i].strip()
            if not fence.startswith("```"):
                i += 1
                continue
            language = fence[3:].strip()
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            indent = len(lines[i]) - len(lines[i].lstrip())
            code = "\n".join(line[indent:] for line in lines[i + 1 : end])
            marker = MARKER.match(lines[i - 1]) if i else None
            found.append(Block(page, i + 1, language, marker and marker["mark"], code))
            i = end + 1
    return found


def snippet(name: str) -> str:
    """The code of the one block marked `<!-- snippet: NAME -->`."""
    named = [block for block in blocks() if block.mark == name]
    assert len(named) == 1, f"exactly one block must be marked snippet: {name} ({len(named)})"
    return named[0].code


def run_snippet_script(name: str, *argv: str) -> str:
    """Run a Python block as `python recipe.py ARGV...` would; what it printed."""
    printed = io.StringIO()
    saved = sys.argv
    sys.argv = [name, *argv]
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(snippet(name), f"<snippet {name}>", "exec"), {"__name__": "__main__"})
    finally:
        sys.argv = saved
    return printed.getvalue()
