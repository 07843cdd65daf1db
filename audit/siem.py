"""The audit export in SIEM formats, beside Warden's own JSONL: OCSF (API Activity,
class 6003, schema 1.2.0) and syslog (RFC 5424). Both carry the exported row itself,
unchanged (OCSF: `unmapped.warden`; syslog: the message), so a receiver can still verify
the chain with the JSONL recipe after its SIEM has parsed the event."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from audit.export import encode_line

OCSF_VERSION = "1.2.0"
API_ACTIVITY = 6003  # category 6 (Application Activity) x 1000 + class 3
PRODUCT = {"name": "Warden", "vendor_name": "Warden", "version": "0.1.0"}
# OCSF API Activity's activity_id, from the verb an action ends with; anything else is
# 99 (Other).
CREATE, READ, UPDATE, DELETE, OTHER = 1, 2, 3, 4, 99
_VERBS = {
    "created": CREATE,
    "added": CREATE,
    "invited": CREATE,
    "attachment_added": CREATE,
    "downloaded": READ,
    "exported": READ,
    "verified": READ,
    "updated": UPDATE,
    "changed": UPDATE,
    "settings_changed": UPDATE,
    "role_changed": UPDATE,
    "rotated": UPDATE,
    "suspended": UPDATE,
    "unsuspended": UPDATE,
    "approved": UPDATE,
    "denied": UPDATE,
    "resolved": UPDATE,
    "synced": UPDATE,
    "disabled": UPDATE,
    "deleted": DELETE,
    "removed": DELETE,
    "revoked": DELETE,
    "pruned": DELETE,
}
# OCSF status_id: 1 Success, 2 Failure (a refused or failed action), 0 Unknown.
_FAILED_OUTCOMES = frozenset({"denied", "failed", "refused", "error", "expired"})
SYSLOG_FACILITY = 13  # log audit (RFC 5424 table 1)
SYSLOG_INFORMATIONAL, SYSLOG_WARNING = 6, 4
SYSLOG_SD_ID = "warden@32473"  # 32473: the enterprise number RFC 5612 sets aside for examples


def _epoch_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def activity_id(action: str) -> int:
    verb = action.split(".", 1)[-1]
    return _VERBS.get(verb, OTHER)


def _failed(row: dict) -> bool:
    return str(row.get("outcome") or row.get("decision") or "").lower() in _FAILED_OUTCOMES


def ocsf_event(row: dict, *, workspace_slug: str) -> dict:
    """One exported row as an OCSF API Activity event."""
    activity = activity_id(row["action"])
    event = {
        "class_uid": API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity,
        "type_uid": API_ACTIVITY * 100 + activity,
        "severity_id": 1,  # Informational: the chain records, it does not alert
        "status_id": 2 if _failed(row) else 1,
        "time": _epoch_ms(row["created_at"]),
        "message": f"{row['action']} {row['target_type']} {row['target_id']}".strip(),
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "uid": f"{row['workspace']}:{row['seq']}",
            "log_name": f"warden.audit.{workspace_slug}",
            "sequence": row["seq"],
        },
        "actor": {"user": {"uid": row["actor"] or "unknown"}},
        "api": {"operation": row["action"], "service": {"name": "warden"}},
        "src_endpoint": (
            {"ip": row["client_ip"]} if row.get("client_ip") else {"svc_name": "warden"}
        ),
        "unmapped": {"warden": row},
    }
    if row.get("request_id"):
        event["api"]["request"] = {"uid": row["request_id"]}
        event["metadata"]["correlation_uid"] = row["request_id"]
    if row.get("target_id"):  # OCSF needs a resource's uid or name
        resource = {"uid": str(row["target_id"]), "type": row.get("target_type") or ""}
        event["resources"] = [{key: value for key, value in resource.items() if value}]
    return event


def encode_ocsf_line(row: dict, *, workspace_slug: str) -> str:
    return json.dumps(ocsf_event(row, workspace_slug=workspace_slug), sort_keys=True) + "\n"


def _sd_value(value) -> str:
    """RFC 5424 6.3.3: '"', '\\' and ']' are escaped inside PARAM-VALUE."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _msgid(action: str) -> str:
    printable = "".join(ch for ch in action if 33 <= ord(ch) <= 126)
    return printable[:32] or "-"


def encode_syslog_line(row: dict, *, workspace_slug: str, hostname: str = "warden") -> str:
    """One exported row as an RFC 5424 message: the chain position in structured data,
    the row's canonical JSON (the JSONL line) as the message."""
    severity = SYSLOG_WARNING if _failed(row) else SYSLOG_INFORMATIONAL
    structured = " ".join(
        f'{name}="{_sd_value(value)}"'
        for name, value in (
            ("workspace", workspace_slug),
            ("seq", row["seq"]),
            ("hash", row["hash"]),
            ("prev_hash", row["prev_hash"]),
        )
    )
    header = (
        f"<{SYSLOG_FACILITY * 8 + severity}>1 {row['created_at']} {hostname or '-'} warden - "
        f"{_msgid(row['action'])} [{SYSLOG_SD_ID} {structured}]"
    )
    return f"{header} {encode_line(row)}"


def encoder(name: str, *, workspace_slug: str) -> Callable[[dict], str]:
    """The line encoder for an export format: jsonl, ocsf or syslog."""
    if name == "ocsf":
        return lambda row: encode_ocsf_line(row, workspace_slug=workspace_slug)
    if name == "syslog":
        return lambda row: encode_syslog_line(row, workspace_slug=workspace_slug)
    return encode_line


FORMATS = ("jsonl", "ocsf", "syslog")
