"""No module applies Python's backtracking `re` to agent- or upstream-supplied text
(issue 21.7). Agent text (params, reasons, summaries, results, tool names, MCP
arguments, upstream outputs) is scanned by RE2 (`import re2`) or plain string code.

A module may import `re` (or `fnmatch`, which compiles to `re`) only if it is listed
below with the reason it is safe: its patterns run on server-side or human-entered
input, or they are shaped so that each match attempt costs a bounded amount (an
anchored bounded repeat; classes separated by a literal the class excludes). The
list is checked both ways: an unlisted import fails, and so does a stale entry."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ["common", "audit", "tenants", "keys", "approvals", "notifications", "gateway", "oversight"]
BACKTRACKING = {"re", "fnmatch", "regex", "sre_compile", "sre_parse"}

ALLOWED = {
    "approvals/effective.py": (
        "fnmatch compares a key's own allowlist patterns with each other (is one covered "
        "by another); patterns are server-side, validated and short, never agent text"
    ),
    "gateway/naming.py": (
        "upstream tool names: each pattern is unambiguous (a segment class without '.', "
        "then '.'-led segments; single classes in the substitutions), so it runs linear"
    ),
    "common/credentials.py": (
        "parses detect-secrets' compiled patterns (re._parser) to translate them to RE2; "
        "agent text is searched by RE2 only (tests/common/test_credentials.py)"
    ),
    "common/middleware.py": (
        "X-Request-ID from the client: one anchored, bounded pattern ^[...]{1,64}$, "
        "constant work per header"
    ),
    "approvals/conditions.py": (
        "<input>:(\\d+):(\\d+) on the CEL library's error text: a literal prefix, linear"
    ),
    "approvals/summary.py": (
        "finds {params.x} placeholders in templates admins write; agent values are "
        "substituted, never scanned"
    ),
    "approvals/validation.py": (
        "catalog tool and parameter names (<= 200 chars), classes split by a literal dot "
        "the class excludes: one way to match, linear"
    ),
    "approvals/gate.py": (
        "fnmatchcase of allowlist patterns (validated: a name, or a name ending in *) "
        "against the tool name (<= 200 chars): at most one trailing .*, linear"
    ),
    "keys/validation.py": "allowlist patterns people enter on keys; linear pattern",
    "keys/services.py": "fnmatchcase of allowlist patterns against allowlist patterns",
    "audit/verify.py": "snapshot ids the server made",
    "audit/attachments.py": "attachment URLs and digests humans enter; single-class scans",
    "common/egress.py": "host labels of outbound URLs admins configure",
    "gateway/models.py": "connector names admins enter (bounded label pattern)",
    "gateway/credentials.py": "credential references operators configure",
    "approvals/projection.py": "output projection paths admins enter (200 characters at "
    "most) and upstream object keys: anchored, single-class patterns, no nested repeats",
    "gateway/services.py": (
        "header names admins configure; upstream tool names from tools/list fullmatched "
        "by [a-z0-9_]+(\\.[a-z0-9_]+)*, classes split by a literal dot: linear"
    ),
}


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _backtracking_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in BACKTRACKING}
    return found


def _importers() -> dict[str, set[str]]:
    found = {}
    for path in _modules():
        names = _backtracking_imports(path)
        if names:
            found[path.relative_to(ROOT).as_posix()] = names
    return found


def test_no_module_uses_a_backtracking_engine_unless_listed_with_a_reason():
    unlisted = {module: names for module, names in _importers().items() if module not in ALLOWED}
    assert not unlisted, (
        "Scan agent text with RE2 (import re2) or string code; if the input is server-side "
        f"or the pattern provably bounded, list the module in ALLOWED with why: {unlisted}"
    )


def test_every_listed_module_still_needs_its_entry():
    stale = set(ALLOWED) - set(_importers())
    assert not stale, f"no longer imports re/fnmatch; remove from ALLOWED: {stale}"


@pytest.mark.parametrize(
    "module", ["approvals/credential_scan.py", "common/text.py", "approvals/minimisation.py"]
)
def test_the_modules_that_scan_agent_text_are_not_allowed_re(module):
    assert module not in ALLOWED
    assert not _backtracking_imports(ROOT / module)


def test_the_check_sees_every_spelling_of_the_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import re\nimport re as pattern\nfrom re import compile\nimport re._parser\n"
        "from fnmatch import fnmatchcase\nimport regex\nimport re2\nfrom . import re\n"
    )
    assert _backtracking_imports(sample) == {"re", "re._parser", "fnmatch", "regex"}
