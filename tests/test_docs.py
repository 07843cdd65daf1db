"""The documentation cannot drift from the code: the site builds with warnings as errors,
the README stays a short front page whose links resolve, and every runnable block is
either run here as printed (found by its `<!-- snippet: NAME -->` marker) or says why not."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from django.core.management import call_command

from tests.docs import ROOT, RUNNABLE, blocks, snippet

# Every name a test runs (here, or: commands and break-glass in tests/test_entry_points.py,
# chain-verify in tests/audit/test_export.py, checkpoint-verify in
# tests/audit/test_tamper_evidence.py, mcp-python in tests/gateway/test_readme_mcp_snippet.py);
# a marker naming anything else is a defect.
RUN = {
    "readme-walk",
    "quickstart",
    "refund-ask",
    "approval-walk",
    "commands",
    "break-glass",
    "chain-verify",
    "checkpoint-verify",
    "webhook-verify",
    "mcp-python",
}


@pytest.mark.db_independent
def test_every_runnable_block_is_run_or_says_why_not():
    problems = []
    for block in blocks():
        if block.language not in RUNNABLE:
            continue
        if block.mark is None:
            problems.append(f"{block.where}: no <!-- snippet: NAME --> or not-run marker")
        elif block.mark.startswith("not-run"):
            if not block.mark.removeprefix("not-run").strip(": "):
                problems.append(f"{block.where}: a not-run marker must say why")
        elif block.mark not in RUN:
            problems.append(f"{block.where}: no test runs snippet {block.mark!r}")
    marked = {block.mark for block in blocks()}
    problems += [f"snippet {name!r} is run but no block carries it" for name in RUN - marked]
    assert problems == []


@pytest.mark.db_independent
def test_the_readme_is_a_short_front_page_whose_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 150
    links = re.findall(r"\]\((?!https?://|#)([^)#\s]+)", readme)
    assert links, "the front page links to the documentation site"
    assert [link for link in links if not (ROOT / link).exists()] == []


@pytest.mark.slow
@pytest.mark.db_independent
def test_the_site_builds_with_warnings_as_errors(tmp_path):
    mkdocs = shutil.which("mkdocs", path=os.path.dirname(sys.executable))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (make install installs it)")
    built = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()


# -- shell blocks, run as printed --------------------------------------------------------


@pytest.fixture
def demo_served(live_server, settings):
    """`make run`'s demo workspace behind a live server; the key load_demo printed."""
    settings.WARDEN_PUBLIC_URL = live_server.url
    printed = io.StringIO()
    call_command("load_demo", stdout=printed)
    return live_server.url, printed.getvalue().strip().splitlines()[-1]


def bash(script: str) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def answers_in(printed: str) -> list[dict]:
    """curl -s prints the JSON answers back to back, with no newline between them."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := printed.find("{", at)) != -1:
        answer, at = decoder.raw_decode(printed, at)
        found.append(answer)
    return found


def served(script: str, url: str) -> str:
    return script.replace("http://127.0.0.1:8000", url).replace("localhost:8000", url)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_sixty_second_walk_and_the_approval_walk_run_as_printed(demo_served, tmp_path):
    url, key = demo_served
    walk = served(snippet("quickstart"), url).replace("KEY='wdn_…'", f"KEY='{key}'")
    answers = answers_in(bash(walk))
    assert answers[0]["workspace"]["slug"] == "demo"
    assert {"crm.lookup", "email.send"} <= {tool["name"] for tool in answers[1]["results"]}
    assert answers[2]["decision"] == "allowed"
    pending = answers[3]
    assert pending["decision"] == "requires_confirmation"
    assert answers[4]["error"]["code"] in {"confirmation_pending", "confirmation_mismatch"}
    assert answers[5]["error"]["code"] == "tool_not_allowed"
    assert answers[6]["error"]["code"] == "forbidden_by_scope"

    front = served(snippet("readme-walk"), url).replace("KEY='wdn_…'", f"KEY='{key}'")
    answers = answers_in(bash(front))
    assert [answers[1]["decision"], answers[2]["decision"]] == [
        "allowed",
        "requires_confirmation",
    ]

    refund = served(snippet("refund-ask"), url).replace("KEY=wdn_...", f"KEY={key}")
    assert "decision" in answers_in(bash(refund))[0]

    approval = served(snippet("approval-walk"), url).replace("ID='…'", f"ID='{pending['id']}'")
    answers = answers_in(bash(f"cd {shlex.quote(str(tmp_path))}\n{approval}"))
    assert any(answer.get("status") == "approved" for answer in answers), answers


# -- Python blocks ------------------------------------------------------------------------


def load(name: str) -> dict:
    namespace = {"__name__": f"snippet_{name.replace('-', '_')}"}
    exec(compile(snippet(name), f"<snippet {name}>", "exec"), namespace)
    return namespace


@pytest.mark.db_independent
def test_the_webhook_verification_recipe_accepts_warden_signatures_once():
    from notifications.signing import signed_headers

    verify = load("webhook-verify")["verify"]
    body = b'{"type": "confirmation.requested"}'
    headers = signed_headers(secret="whsec_test", body=body, delivery_id="d-1")
    seen: set[str] = set()
    assert verify("whsec_test", headers, body, seen) is True
    assert verify("whsec_test", headers, body, seen) is False  # a retry is dropped
    assert verify("whsec_other", headers, body, set()) is False
    assert verify("whsec_test", headers, body + b" ", set()) is False
