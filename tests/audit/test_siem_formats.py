"""The audit export for a SIEM: OCSF 1.2.0 API Activity events that validate against the
shipped schema files, and RFC 5424 syslog lines; both still verify as a chain."""

import io
import json
import re

import pytest
from django.core.management import call_command

from audit.models import AuditEntry
from audit.siem import activity_id
from tests.audit.helpers import AGENT, HUMAN, append
from tests.audit.ocsf_schema import validate_event
from tests.audit.test_export import readme_recipe


def export(workspace, fmt: str) -> list[str]:
    out = io.StringIO()
    call_command(
        "audit_export",
        workspace.slug,
        "--format",
        fmt,
        "--no-record",
        stdout=out,
        stderr=io.StringIO(),
    )
    return out.getvalue().splitlines(keepends=True)


@pytest.fixture
def history(workspace):
    append(workspace, 3, actor=AGENT)
    append(workspace, 1, actor=HUMAN, decision="denied", outcome="denied")
    return workspace


def test_every_ocsf_event_validates_against_the_ocsf_schema(history):
    events = [json.loads(line) for line in export(history, "ocsf")]
    assert len(events) == AuditEntry.objects.filter(workspace=history).count()
    for event in events:
        assert validate_event(event) == [], event
    assert {event["class_uid"] for event in events} == {6003}
    assert [event["status_id"] for event in events][-4:] == [1, 1, 1, 2]  # the denied one
    assert events[-1]["type_uid"] == 600399  # action.decided: Other
    assert events[-2]["src_endpoint"] == {"ip": "10.0.0.7"}
    assert events[0]["metadata"]["version"] == "1.2.0"


def test_the_validator_sees_what_the_schema_forbids(history):
    event = json.loads(export(history, "ocsf")[0])
    assert validate_event({**event, "api": {}}) == ["api.operation: required"]
    broken = {key: value for key, value in event.items() if key != "actor"}
    assert "actor: required" in validate_event(broken)
    assert validate_event({**event, "activity_id": 7, "type_uid": 600307}) == [
        "activity_id: 7 is not one of [0, 1, 2, 3, 4, 99]"
    ]
    assert validate_event({**event, "type_uid": 600302})[0].startswith("type_uid: 600302")
    assert validate_event({**event, "colour": "red"}) == ["colour: not an attribute here"]
    assert validate_event({**event, "time": "yesterday"}) == ["time: must be timestamp_t"]
    assert validate_event({**event, "src_endpoint": {}})[0].startswith("src_endpoint.: needs")


def test_ocsf_and_syslog_exports_still_verify_as_a_chain(history):
    verify = readme_recipe()
    total = AuditEntry.objects.filter(workspace=history).count()
    ocsf_rows = [json.loads(line)["unmapped"]["warden"] for line in export(history, "ocsf")]
    assert verify(json.dumps(row) for row in ocsf_rows) == total
    syslog = export(history, "syslog")
    assert verify(line.split("] ", 1)[1] for line in syslog) == total


RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z) (?P<host>\S+) "
    r"(?P<app>\S+) (?P<proc>\S+) (?P<msgid>\S{1,32}) "
    r"(?P<sd>\[warden@32473( [a-z_]+=\"(\\.|[^\"\\\]])*\")+\]) (?P<msg>.+)\n$"
)


def test_syslog_lines_are_rfc5424_with_the_chain_position_in_structured_data(history):
    lines = export(history, "syslog")
    parsed = [RFC5424.match(line) for line in lines]
    assert all(parsed), [line for line, ok in zip(lines, parsed, strict=True) if not ok]
    first, denied = parsed[-2], parsed[-1]
    assert first["pri"] == str(13 * 8 + 6) and denied["pri"] == str(13 * 8 + 4)
    assert first["msgid"] == "action.decided" and first["app"] == "warden"
    entry = AuditEntry.objects.get(workspace=history, seq=json.loads(first["msg"])["seq"])
    assert f'hash="{entry.hash}"' in first["sd"] and f'workspace="{history.slug}"' in first["sd"]


@pytest.mark.parametrize(
    ("action", "activity"),
    [
        ("key.created", 1),
        ("privacy_summary.downloaded", 2),
        ("key.rotated", 3),
        ("key.revoked", 4),
        ("action.decided", 99),
    ],
)
def test_actions_map_to_ocsf_activities_by_their_verb(action, activity):
    assert activity_id(action) == activity


def test_an_unknown_format_is_refused(workspace):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="invalid choice"):
        call_command("audit_export", workspace.slug, "--format", "cef", stdout=io.StringIO())
