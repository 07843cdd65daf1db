"""The scheduled export in SIEM formats (issue 27, item 8): OCSF 1.2.0 events that
validate against the shipped schema and RFC 5424 syslog lines, both still verifiable as
a chain from what the destination received; changing the format is governed."""

import json

import pytest
from django.test import Client

from approvals import door
from approvals.guard import operator_seeding
from approvals.models import ActionRequest
from audit.models import AuditEntry
from common.actor import Actor
from oversight import governance
from oversight.models import AuditExportDestination
from oversight.scheduled_export import destination_configure, export_run
from tenants.models import Membership, Role
from tests.audit.helpers import append
from tests.audit.ocsf_schema import validate_event
from tests.audit.test_export import readme_recipe
from tests.audit.test_siem_formats import RFC5424
from tests.notifications.conftest import SYSTEM


@pytest.fixture
def export_root(tmp_path, settings):
    settings.WARDEN_EXPORT_DIRECTORY_ROOTS = [str(tmp_path)]
    return tmp_path


def configure(workspace, **kwargs):
    with operator_seeding():
        return destination_configure(
            workspace=workspace, actor=SYSTEM, operator=True, reason="test change", **kwargs
        )


def total(workspace) -> int:
    return AuditEntry.objects.filter(workspace=workspace).count()


def test_directory_export_in_ocsf_validates_and_still_verifies(live_workspace, export_root):
    configure(live_workspace, kind="directory", directory=str(export_root / "siem"), format="ocsf")
    append(live_workspace, 3)
    run = export_run(workspace=live_workspace)
    assert not run.error and run.last_exported_seq == total(live_workspace)
    files = sorted((export_root / "siem").glob("*"))
    assert files and all(path.name.endswith(".ocsf.jsonl") for path in files)
    events = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert [validate_event(event) for event in events] == [[]] * len(events)
    assert {event["metadata"]["version"] for event in events} == {"1.2.0"}
    # The chain fields are kept: the documentation's recipe verifies the embedded rows.
    rows = [json.dumps(event["unmapped"]["warden"]) for event in events]
    assert readme_recipe()(rows) == len(events) == total(live_workspace)


def test_webhook_export_in_syslog_is_rfc5424_and_still_verifies(
    live_workspace, receiver, allow_hosts, allow_http
):
    allow_hosts(live_workspace)
    configured = configure(live_workspace, kind="webhook", url=receiver.url, format="syslog")
    receiver.secret = configured.secret
    append(live_workspace, 2)
    assert not export_run(workspace=live_workspace).error
    got = [r for r in receiver.received if r.valid]
    assert got and all(r.headers["X-Warden-Export-Format"] == "syslog" for r in got)
    assert got[0].headers["Content-Type"].startswith("text/plain")
    lines = [line + "\n" for r in got for line in r.body.decode().splitlines()]
    assert all(RFC5424.match(line) for line in lines), lines[0]
    assert readme_recipe()(line.split("] ", 1)[1] for line in lines) == total(live_workspace)
    batch = AuditEntry.objects.filter(action="audit.exported").first()
    assert batch.input["format"] == "syslog"


def test_jsonl_stays_the_default(live_workspace, export_root):
    configured = configure(live_workspace, kind="directory", directory=str(export_root / "d"))
    assert configured.destination.format == "jsonl"
    export_run(workspace=live_workspace)
    assert list((export_root / "d").glob("*.jsonl"))
    assert not list((export_root / "d").glob("*.ocsf.jsonl"))


def test_an_unknown_format_is_refused(live_workspace, export_root):
    with pytest.raises(Exception, match="Unknown export format"):
        configure(live_workspace, kind="directory", directory=str(export_root), format="cef")


def test_changing_the_format_is_governed(live_workspace, export_root):
    configured = configure(live_workspace, kind="directory", directory=str(export_root / "g"))
    with pytest.raises(Exception, match="loosens governance"):
        destination_configure(
            reason="test change",
            workspace=live_workspace,
            kind="directory",
            directory=str(export_root / "g"),
            format="ocsf",
            actor=SYSTEM,
            operator=True,
        )
    owner = Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user
    outcome = door.governed_change(
        reason="test change",
        proposal=governance.export_configure(configured.destination, {"format": "ocsf"}),
        actor=Actor.for_user(owner),
        workspace=live_workspace,
    )
    assert not outcome.applied  # filed for a second person
    assert AuditExportDestination.objects.get().format == "jsonl"
    pending = ActionRequest.objects.get(workspace=live_workspace, status="pending")
    assert pending.params["values"] == {"format": "ocsf"}


def test_the_admin_offers_the_format_and_files_a_change_for_a_second_person(
    live_workspace, export_root
):
    configure(live_workspace, kind="directory", directory=str(export_root / "a"))
    owner = Membership.objects.get(workspace=live_workspace, role=Role.OWNER).user
    browser = Client()
    browser.force_login(owner)
    url = f"/admin/oversight/auditexportdestination/{live_workspace.pk}/change/"
    assert 'name="format"' in browser.get(url).content.decode()
    response = browser.post(
        url,
        {
            "reason": "test change",
            "kind": "directory",
            "url": "",
            "enabled": "on",
            "format": "syslog",
            "batch_size": 500,
        },
        follow=True,
    )
    assert "needs another person" in response.content.decode()
    assert AuditExportDestination.objects.get().format == "jsonl"
