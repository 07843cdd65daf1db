"""`manage.py policy` as it runs at a shell, outside any test transaction: the change,
its audit entries and its version are all there, or (refused) none of them."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from django.core.management import CommandError, call_command

from approvals.models import PolicyVersion, Tool
from approvals.policy.document import dump, export_document
from audit.models import AuditEntry, ExceptionRecord
from tenants.models import Workspace
from tests.entry_points import entry_point


def run(*args) -> str:
    out = io.StringIO()
    call_command("policy", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def demo(make_workspace, make_tool):
    workspace = make_workspace(slug="acme", writes_enabled=True)
    make_tool(workspace, "crm.lookup")
    make_tool(workspace, "email.send", level="external", confirmation="always")
    return workspace


def _write(tmp_path, doc, name="policy.yaml"):
    path = tmp_path / name
    path.write_text(dump(doc))
    return str(path)


@entry_point("command:policy")
def test_policy_command_export_plan_apply_versions_rollback(demo, tmp_path):
    text = run("export", "acme")
    assert yaml.safe_load(text) == export_document(demo)
    assert json.loads(run("export", "--format", "json", "acme")) == export_document(demo)
    original = _write(tmp_path, export_document(demo), "original.yaml")
    assert "No changes" in run("plan", original)

    doc = export_document(demo)
    doc["tools"][0]["enabled"] = False  # crm.lookup: narrows
    narrowed = _write(tmp_path, doc)
    assert "update tool crm.lookup: narrows (applies at once)" in run("plan", narrowed)
    out = run("apply", narrowed, "--reason", "pause crm")
    assert "applied tool crm.lookup" in out
    assert Tool.objects.get(workspace=demo, name="crm.lookup").enabled is False
    # Versions 1 and 2: the fixture's two tool creations; 3: this apply.
    version = PolicyVersion.objects.get(workspace=demo, number=3)
    assert version.author == "system:cli" and version.reason == "pause crm"
    assert AuditEntry.objects.filter(workspace=demo, action="tool.updated").exists()
    assert "applied" in run("versions", "acme")

    # Re-enabling is governed: refused whole at a shell, nothing written.
    entries = AuditEntry.objects.filter(workspace=demo).count()
    with pytest.raises(CommandError, match="approval_required"):
        run("apply", original, "--reason", "back")
    assert Tool.objects.get(workspace=demo, name="crm.lookup").enabled is False
    assert AuditEntry.objects.filter(workspace=demo).count() == entries
    assert PolicyVersion.objects.filter(workspace=demo).count() == 3

    # An operator may break glass: applied, and recorded as an override.
    out = run("rollback", "acme", "3", "--reason", "again")  # version 3 == now: no-op
    assert "No changes" in out
    run("apply", original, "--reason", "back", "--break-glass", "incident over")
    assert Tool.objects.get(workspace=demo, name="crm.lookup").enabled is True
    assert ExceptionRecord.objects.filter(workspace=demo, kind="override").count() == 1
    assert PolicyVersion.objects.filter(workspace=demo).latest("number").source == "break_glass"


@entry_point("command:policy")
def test_policy_command_refuses_bad_files_with_paths(demo, tmp_path):
    versions = PolicyVersion.objects.count()
    doc = export_document(demo)
    doc["tools"][1]["levle"] = "read"
    bad = _write(tmp_path, doc)
    with pytest.raises(CommandError) as raised:
        run("apply", bad, "--reason", "x")
    assert "$.tools[1].levle: Unknown field 'levle'." in str(raised.value)
    with pytest.raises(CommandError, match="Cannot read"):
        run("plan", str(tmp_path / "missing.yaml"))
    doc = export_document(demo)
    doc["workspace"] = "nowhere"
    with pytest.raises(CommandError, match="No workspace"):
        run("plan", _write(tmp_path, doc, "other.yaml"))
    assert PolicyVersion.objects.count() == versions


@entry_point("command:policy")
def test_policy_test_command_exit_codes(demo, tmp_path):
    cases = {
        "workspace": "acme",
        "cases": [
            {
                "name": "read",
                "given": {
                    "key": {"scopes": ["actions:read"], "allowlist": ["crm.*"]},
                    "tool": "crm.lookup",
                },
                "expect": {"outcome": "allowed", "dry_run": True},
            }
        ],
    }
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump(cases))
    assert "1 passed, 0 failed" in run("test", str(path))
    proposed = export_document(demo)
    proposed["tools"][0]["enabled"] = False
    with pytest.raises(CommandError) as raised:
        run("test", str(path), "--proposed", _write(tmp_path, proposed))
    assert raised.value.returncode == 1
    assert Workspace.objects.get(pk=demo.pk).policy_version == demo.policy_version
