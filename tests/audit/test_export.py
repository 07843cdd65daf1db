"""The JSONL export streams in constant memory and verifies with the README recipe."""

import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.chain import CHAINED_FIELDS
from audit.export import iter_export_lines
from audit.management.commands import audit_export
from audit.models import AuditEntry
from tests.audit.helpers import HUMAN, append
from tests.docs import snippet


def readme_recipe():
    """The `verify_jsonl` function exactly as the documentation prints it."""
    namespace = {"__name__": "recipe"}
    exec(compile(snippet("chain-verify"), "the chain-verify recipe", "exec"), namespace)
    return namespace["verify_jsonl"]


def test_export_lines_verify_with_the_readme_recipe(workspace):
    append(workspace, 25, input={"params": {"q": "naïve ☃", "amount": 12.5, "list": [1, None]}})
    append(workspace, 3, actor=HUMAN)
    lines = list(iter_export_lines(workspace))
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert readme_recipe()(lines) == AuditEntry.objects.filter(workspace=workspace).count()


def test_each_line_is_canonical_json_of_the_chained_fields_and_hashes(workspace):
    append(workspace, 1)
    line = list(iter_export_lines(workspace))[-1]
    row = json.loads(line)
    assert set(row) == {*CHAINED_FIELDS, "prev_hash", "hash"}
    assert line == json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    assert row["workspace"] == str(workspace.pk)


def test_recipe_names_a_tampered_line(workspace):
    append(workspace, 5)
    lines = list(iter_export_lines(workspace))
    row = json.loads(lines[3])
    row["actor"] = "user:mallory@example.test"
    lines[3] = json.dumps(row)
    with pytest.raises(ValueError, match=rf"#{row['seq']}: hash mismatch"):
        readme_recipe()(lines)
    with pytest.raises(ValueError, match="gap"):
        readme_recipe()(lines[:2] + lines[3:])


def test_export_reads_in_keyset_chunks(workspace):
    append(workspace, 20)
    total = AuditEntry.objects.filter(workspace=workspace).count()
    with CaptureQueriesContext(connection) as queries:
        lines = list(iter_export_lines(workspace, chunk_size=5))
    assert len(lines) == total
    assert len(queries) == -(-total // 5)  # one query per chunk of 5
    assert all("OFFSET" not in q["sql"].upper() for q in queries.captured_queries)


def test_export_after_seq_continues_a_previous_export(workspace):
    append(workspace, 10)
    lines = list(iter_export_lines(workspace))
    last = json.loads(lines[5])
    rest = list(iter_export_lines(workspace, after_seq=last["seq"]))
    assert rest == lines[6:]
    assert readme_recipe()(rest, prev_hash=last["hash"]) == len(rest)


def test_export_since_starts_at_that_time(make_workspace):
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        workspace = make_workspace()
        append(workspace, 4)
    cutoff = timezone.now() - timedelta(days=1)
    append(workspace, 2)
    lines = list(iter_export_lines(workspace, since=cutoff))
    assert len(lines) == 2
    assert readme_recipe()(lines) == 2


def test_command_streams_verifiable_jsonl_to_stdout(workspace):
    append(workspace, 12)
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_export", workspace.slug, "--format", "jsonl", stdout=out, stderr=err)
    lines = out.getvalue().splitlines(keepends=True)
    assert readme_recipe()(lines) == len(lines)
    assert "exported" in err.getvalue()
    recorded = AuditEntry.objects.filter(workspace=workspace).order_by("-seq").first()
    assert recorded.action == "audit.exported"
    assert recorded.input["entries"] == len(lines)


def test_command_since_accepts_a_date(make_workspace):
    with time_machine.travel(timezone.now() - timedelta(days=10)):
        workspace = make_workspace()
        append(workspace, 3)
    append(workspace, 2)
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    out = io.StringIO()
    call_command(
        "audit_export",
        workspace.slug,
        "--since",
        since,
        "--no-record",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert len(out.getvalue().splitlines()) == 2


def test_command_refuses_a_bad_since(workspace):
    with pytest.raises(CommandError, match="since"):
        call_command("audit_export", workspace.slug, "--since", "yesterday", stdout=io.StringIO())


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_command_shows_progress_on_a_terminal_stderr_only(workspace, monkeypatch):
    # Flushing every 10 lines instead of 1,000 takes 15 entries, not 1,500, to flush more
    # than once (the progress is drawn at each flush).
    monkeypatch.setattr(audit_export, "FLUSH_EVERY", 10)
    append(workspace, 15)
    out, err = io.StringIO(), _Tty()
    call_command("audit_export", workspace.slug, "--no-record", stdout=out, stderr=err)
    assert "/s" in err.getvalue() and "[" in err.getvalue()
    assert "[" not in out.getvalue().split("\n", 1)[0][:1]  # stdout is pure JSONL
    assert readme_recipe()(out.getvalue().splitlines(keepends=True)) > 15
