"""The privacy summary: what Warden holds about one workspace, in plain language.

`privacy_summary_build` is a read (a constant number of queries); the same dict is
served as JSON, rendered in the admin and written into the PDF, so the three never
disagree. `privacy_summary_download` is the write: it records the download in the
audit chain, in the same transaction that read the figures.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from approvals.erasure import entries_with_plain_values
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest, Tool
from approvals.results import MAX_RESULT_OUTPUT_BYTES
from audit.events import EVENTS
from audit.models import (
    GENESIS_HASH,
    AuditAction,
    AuditChainHead,
    AuditEntry,
    ExceptionRecord,
    VersionLog,
)
from audit.services import audit_record
from common.actor import Actor
from common.scopes import AUDIT_READ, has_scope
from gateway.models import Connector
from keys.models import MachineKey
from notifications.models import WebhookEndpoint, WorkspaceAutomationSettings
from oversight.models import AuditExportDestination
from oversight.unreported import unreported_results_counts
from tenants.models import ROLE_PERMISSIONS, Membership, Role, Workspace

SUMMARY_VERSION = 1
DOWNLOAD_FORMATS = ("json", "pdf")

# (key in "counts", model, label for one, label for several). Every model holding
# workspace data.
_COUNTED_MODELS = (
    ("members", Membership, "workspace member", "workspace members"),
    (
        "machine_keys",
        MachineKey,
        "machine key (agent credential)",
        "machine keys (agent credentials)",
    ),
    ("tools", Tool, "tool in the catalog", "tools in the catalog"),
    (
        "action_requests",
        ActionRequest,
        "action request made by agents",
        "action requests made by agents",
    ),
    ("confirmation_requests", ConfirmationRequest, "confirmation request", "confirmation requests"),
    (
        "approval_records",
        ApprovalRecord,
        "approval or denial record",
        "approval and denial records",
    ),
    ("audit_entries", AuditEntry, "audit log entry", "audit log entries"),
    ("version_logs", VersionLog, "configuration version log", "configuration version logs"),
    ("exception_records", ExceptionRecord, "exception record", "exception records"),
)

_DATA_CLASS_LABELS = {
    "pii": "Personal data (PII)",
    "secrets": "Secrets",
    "financial": "Financial data",
    "regulated": "Regulated data",
}

NEVER_LEAVES = (
    "Machine-key secrets: never stored. Warden keeps only the key's public prefix and an "
    "HMAC-SHA-256 digest; the full key is shown once, when it is created.",
    "Confirmation tokens: never stored; only their digest is kept.",
    "Parameters a tool marks as secret, and values in any parameter that look like a "
    "credential (provider keys, tokens, private keys, passwords in URLs): replaced by a "
    "digest before anything is stored, so they appear in no request record, audit entry, "
    "export, notification or this summary.",
    "Connector credentials: stored only encrypted; used only to call that connector's own "
    "upstream; never shown, logged, audited, exported or sent anywhere else.",
    "Human passwords: stored only as salted password hashes.",
    "Audit evidence: served only to this workspace's members and keys that hold the right "
    "permission; it is never sent to any third party.",
)


CREDENTIAL_SCAN_TEXT = (
    "Values in parameters not marked secret that look like a credential (a provider key, "
    "a token, a private key, a password in a URL) are replaced by a digest before they are "
    "stored, "
    "and an exception record tells this workspace's admins which request and parameter "
    "carried one, never the value."
)
CONNECTOR_CREDENTIALS_TEXT = (
    "Connector credentials (the headers Warden sends to a connector's upstream) are stored "
    "only encrypted at rest, under the operator's WARDEN_SECRETS_KEY; only their header "
    "names are kept in clear. Warden decrypts them only to call that connector's own "
    "upstream; they are never shown, logged, audited or exported, and are gone when the "
    "connector is deleted or its headers are replaced."
)
WHERE_IT_GOES = (
    "Nowhere outside Warden unless this workspace sets it up: Warden itself sends none of "
    "it to any third party.",
    "Scheduled audit export, when configured: audit entries as described above (digests "
    "of parameters and outputs) and signed chain checkpoints go to the workspace's "
    "own destination: a directory the operator controls, or an HTTPS endpoint on the "
    "workspace's host allowlist.",
    "Webhooks and emails to approvers: a request's tool, summary and reason, who asked and "
    "a review link; the summary never shows secret or credential-shaped values. Action "
    "events (approved, denied, expired, executed) carry ids, tool and status only. Neither "
    "carries full parameters or outputs.",
    "Connectors: when Warden executes a call, the parameters go to that connector's "
    "upstream only, with its credentials; the output comes back to the agent and is kept "
    "as described above.",
    "Attachments on evidence (approvals, exceptions, version logs) are links with the "
    "SHA-256 of the linked document: the documents stay where they are.",
)


def _kept_for_texts(retention: dict[str, Any], plain: dict[str, int], audit_days) -> list[str]:
    """What is kept of parameters and outputs, for how long (approvals.minimisation)."""
    days = retention["plain_copy_retention_days"]
    kib = retention["max_output_copy_bytes"] // 1024
    if days is None:
        period = "kept indefinitely: no plain-copy period is configured"
    elif days == 0:
        period = "not kept: it is replaced at the next daily pruning"
    else:
        period = f"kept for {days} days, then replaced by its SHA-256 digest and size"
    audit_life = f"{audit_days} days" if audit_days else "indefinitely"
    return [
        f"Action parameters: the plain copy on each agent request is {period}. The digest "
        "and size are kept for as long as the request record. Requests waiting for a human "
        "keep their copy until decided; the summary an approver was shown is kept with the "
        "approval as evidence of the decision. Now "
        f"{_plural(plain['action_requests_with_plain_copy'], 'request holds', 'requests hold')}"
        f" a plain copy and {_plural(plain['action_requests_digests_only'], 'holds', 'hold')}"
        " digests only.",
        "Outputs: results agents report and outputs Warden observes when it executes a call "
        f"through a connector (copied only up to {kib} KiB; larger ones as digest and size "
        "only) follow the same rule. Every pruning is recorded in the audit log.",
        "Audit entries record each agent decision with the SHA-256 digest of its parameters "
        "(and of the summary an approver read), and outputs as digest and size only: never "
        "the values. They are never rewritten, so the hash chain keeps verifying; the "
        f"digests are kept {audit_life}, with the audit log.",
        "Approval records, exception records and version logs are audit evidence and follow "
        "the audit log's retention.",
    ]


def _erasure_texts(erasure: dict[str, Any]) -> list[str]:
    """How personal data is erased (approvals.erasure), with this workspace's figures."""
    subject_tools = erasure["tools_with_subject_param"]
    texts = [
        "Erasure: an agent request's parameters, the summary shown to approvers and the "
        "outputs are stored encrypted under a key of their own (one per request), itself "
        "stored only encrypted under a key derived from Warden's secrets. Erasing a request "
        "destroys its key, so every copy becomes unreadable at once while the audit chain, "
        "which holds digests only, still verifies. Compliance staff erase by request or by "
        "data subject (the parameter a tool names as its subject, found by a keyed digest, "
        "never stored in plain); each erasure is recorded with who did it and why, never "
        "with the erased value. Requests still waiting for a human cannot be erased. Copies "
        "already delivered (webhooks, emails, SIEM exports) are the recipient's.",
        f"Now {_plural(erasure['action_requests_erased'], 'request was', 'requests were')} "
        f"erased; {_plural(len(subject_tools), 'tool names', 'tools name')} a data subject"
        + (f" ({', '.join(subject_tools)})" if subject_tools else "")
        + ".",
    ]
    if erasure["entries_with_plain_values"]:
        texts.append(
            f"{_plural(erasure['entries_with_plain_values'], 'audit entry', 'audit entries')} "
            "written before encryption still quote parameters; they follow the audit log's "
            "retention (see the evidence documentation)."
        )
    return texts


def _erasure(workspace: Workspace) -> dict[str, Any]:
    agents = ActionRequest.objects.filter(workspace=workspace, key__isnull=False)
    return {
        "action_requests_erased": agents.filter(erased_at__isnull=False).count(),
        "tools_with_subject_param": sorted(
            Tool.objects.filter(workspace=workspace)
            .exclude(subject_param="")
            .values_list("name", flat=True)
        ),
        "entries_with_plain_values": entries_with_plain_values(workspace),
    }


def _permission_descriptions() -> dict[str, str]:
    return dict(Workspace._meta.permissions)


def _chain_head(workspace: Workspace) -> dict[str, Any]:
    head = AuditChainHead.objects.filter(workspace=workspace).values("seq", "hash").first()
    return head or {"seq": 0, "hash": GENESIS_HASH}


def _counts(workspace: Workspace) -> dict[str, int]:
    return {
        name: model.objects.filter(workspace=workspace).count()
        for name, model, _one, _several in _COUNTED_MODELS
    }


def _by_data_class(workspace: Workspace) -> dict[str, dict[str, int]]:
    """Tools and agent requests per data class. Counted in Python over one grouped
    query, because JSON containment is not portable to SQLite."""
    tools = list(Tool.objects.filter(workspace=workspace).values_list("pk", "data_classes"))
    requests_per_tool = dict(
        ActionRequest.objects.filter(workspace=workspace, tool__isnull=False)
        .values_list("tool_id")
        .annotate(n=Count("pk"))
        .values_list("tool_id", "n")
    )
    result = {dc: {"tools": 0, "action_requests": 0} for dc in Tool.DATA_CLASSES}
    for tool_id, data_classes in tools:
        for dc in set(data_classes or ()):
            bucket = result.setdefault(str(dc), {"tools": 0, "action_requests": 0})
            bucket["tools"] += 1
            bucket["action_requests"] += requests_per_tool.get(tool_id, 0)
    return result


def _access(workspace: Workspace) -> dict[str, Any]:
    descriptions = _permission_descriptions()
    per_role = dict(
        Membership.objects.filter(workspace=workspace)
        .values_list("role")
        .annotate(n=Count("pk"))
        .values_list("role", "n")
    )
    roles = [
        {
            "role": role.value,
            "label": role.label,
            "members": per_role.get(role.value, 0),
            "permissions": [
                {"codename": perm, "description": descriptions.get(perm, perm)}
                for perm in sorted(ROLE_PERMISSIONS[role])
            ],
        }
        for role in Role
    ]
    active_keys = MachineKey.objects.filter(workspace=workspace, revoked_at__isnull=True)
    audit_readers = sum(
        1
        for scopes in active_keys.values_list("scopes", flat=True)
        if has_scope(scopes, AUDIT_READ)
    )
    return {"roles": roles, "keys_with_audit_read": audit_readers}


def _secret_params(workspace: Workspace) -> list[dict[str, Any]]:
    return [
        {"tool": name, "params": sorted(params)}
        for name, params in Tool.objects.filter(workspace=workspace)
        .exclude(secret_params=[])
        .values_list("name", "secret_params")
        if params
    ]


def _plain_copies(workspace: Workspace) -> dict[str, int]:
    """Agent requests still holding a plain copy of their params, and those pruned to
    their digests (approvals.minimisation). Platform requests are not counted."""
    agents = ActionRequest.objects.filter(workspace=workspace, key__isnull=False)
    return {
        "action_requests_with_plain_copy": agents.filter(plain_pruned_at__isnull=True).count(),
        "action_requests_digests_only": agents.filter(plain_pruned_at__isnull=False).count(),
    }


def _host(url: str) -> str:
    return urlsplit(url or "").hostname or "(no host)"


def _destinations(workspace: Workspace) -> dict[str, Any]:
    """Every real place this workspace's data can go, with what goes there: the
    connectors Warden calls, webhook endpoints, the audit export, the allowlist."""
    tools = dict(
        Tool.objects.filter(workspace=workspace, connector__isnull=False)
        .order_by()
        .values_list("connector_id")
        .annotate(n=Count("pk"))
        .values_list("connector_id", "n")
    )
    connectors = [
        {
            "name": c.name,
            "host": _host(c.url),
            "enabled": c.enabled,
            "tools": tools.get(c.pk, 0),
            "sends": "the parameters of each executed call, with the connector's credential",
        }
        for c in Connector.objects.filter(workspace=workspace).order_by("name")
    ]
    webhooks = [
        {
            "name": e.name,
            "host": _host(e.url),
            "active": e.is_active,
            "events": sorted(e.events),
            "sends": "event data: tool, summary, reason, who asked, ids and a review link",
        }
        for e in WebhookEndpoint.objects.filter(workspace=workspace).order_by("name")
    ]
    export = AuditExportDestination.objects.filter(workspace=workspace).first()
    exports = []
    if export is not None:
        exports.append(
            {
                "kind": export.kind,
                "host": _host(export.url) if export.url else "a directory on the server",
                "active": export.enabled,
                "sends": "audit entries and signed chain checkpoints",
            }
        )
    automation = WorkspaceAutomationSettings.objects.filter(workspace=workspace).first()
    return {
        "connectors": connectors,
        "webhooks": webhooks,
        "exports": exports,
        "outbound_hosts": list(automation.webhook_host_allowlist) if automation else [],
    }


def _destination_lines(destinations: dict[str, Any]) -> list[str]:
    lines = [
        f"Connector {c['name']} at {c['host']} ({'enabled' if c['enabled'] else 'disabled'}, "
        f"{_plural(c['tools'], 'tool', 'tools')}): {c['sends']}."
        for c in destinations["connectors"]
    ]
    lines += [
        f"Webhook endpoint {w['name']} at {w['host']} "
        f"({'active' if w['active'] else 'inactive'}; {', '.join(w['events'])}): {w['sends']}."
        for w in destinations["webhooks"]
    ]
    lines += [
        f"Audit export ({e['kind']}) to {e['host']} "
        f"({'active' if e['active'] else 'disabled'}): {e['sends']}."
        for e in destinations["exports"]
    ]
    if destinations["outbound_hosts"]:
        lines.append(
            "Hosts webhooks, exports and connectors may reach (the outbound allowlist): "
            + ", ".join(destinations["outbound_hosts"])
            + "."
        )
    return lines


def privacy_summary_build(*, workspace: Workspace) -> dict[str, Any]:
    """The summary as data: figures plus the plain-language text built from them."""
    counts = _counts(workspace)
    retention_days = workspace.audit_retention_days
    summary: dict[str, Any] = {
        "version": SUMMARY_VERSION,
        "workspace": {"id": str(workspace.pk), "slug": workspace.slug, "name": workspace.name},
        "generated_at": timezone.now().isoformat(),
        "audit_chain_head": _chain_head(workspace),
        "stored": {
            "counts": counts,
            "by_data_class": _by_data_class(workspace),
            "retention": {
                "audit_retention_days": retention_days,
                "confirmation_ttl_seconds": int(workspace.confirmation_ttl.total_seconds()),
                "plain_copy_retention_days": workspace.plain_copy_retention_days,
                "max_output_copy_bytes": MAX_RESULT_OUTPUT_BYTES,
            },
            "plain_copies": _plain_copies(workspace),
            "unreported_results": unreported_results_counts(workspace),
            "erasure": _erasure(workspace),
            "key_secrets": "nowhere: only a prefix and an HMAC-SHA-256 digest per key",
            "secret_params": _secret_params(workspace),
        },
        "anonymized_sharing": {
            "opted_in": False,
            "shared": [],
            "text": (
                "Nothing. Warden shares no data in anonymized or any other form unless the "
                "workspace opts in, and this workspace has not opted in."
            ),
        },
        "never_leaves": list(NEVER_LEAVES),
        "access": _access(workspace),
        "destinations": _destinations(workspace),
    }
    summary["sections"] = privacy_summary_sections(summary)
    return summary


def _where_it_goes(destinations: dict[str, Any]) -> list[str]:
    """The real destinations first; the general rules after them."""
    lines = _destination_lines(destinations)
    if not lines:
        return list(WHERE_IT_GOES)
    return [
        "This workspace sends data outside Warden to these places, and nowhere else "
        "(Warden itself sends none of it to any third party):",
        *lines,
        *WHERE_IT_GOES[1:],
    ]


def _plural(n: int, one: str, several: str) -> str:
    return f"1 {one}" if n == 1 else f"{n:,} {several}"


def privacy_summary_sections(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Plain-language sections (title + paragraphs), shared by HTML and PDF."""
    stored = summary["stored"]
    counts = stored["counts"]
    retention = stored["retention"]
    days = retention["audit_retention_days"]
    head = summary["audit_chain_head"]

    what_we_store = [
        _plural(counts[name], one, several) for name, _model, one, several in _COUNTED_MODELS
    ]
    data_classes = []
    for dc, figures in stored["by_data_class"].items():
        label = _DATA_CLASS_LABELS.get(dc, dc)
        data_classes.append(
            f"{label}: {_plural(figures['tools'], 'tool handles', 'tools handle')} it; "
            f"agents made {_plural(figures['action_requests'], 'request', 'requests')} "
            "to those tools."
        )
    retention_text = (
        f"Audit entries are kept for {days} days, then pruned (the pruning is itself "
        "recorded in the audit log)."
        if days
        else "Audit entries are kept indefinitely: no retention period is configured."
    )
    ttl_hours = retention["confirmation_ttl_seconds"] / 3600
    kept_for = _kept_for_texts(retention, stored["plain_copies"], days)
    secret_params = stored["secret_params"]
    secret_text = (
        "Parameters marked secret (stored only as digests): "
        + "; ".join(f"{p['tool']}: {', '.join(p['params'])}" for p in secret_params)
        + "."
        if secret_params
        else "No tool in the catalog marks parameters as secret."
    )
    role_lines = []
    for role in summary["access"]["roles"]:
        perms = ", ".join(p["description"].lower() for p in role["permissions"]) or (
            "nothing beyond membership: no access to the admin"
        )
        members = _plural(role["members"], "member", "members")
        role_lines.append(f"{role['label']} ({members}): {perms}")
    readers = summary["access"]["keys_with_audit_read"]
    keys_text = (
        f"{_plural(readers, 'machine key holds', 'machine keys hold')} "
        "the audit:read scope, which reads the audit log and this summary through the API. "
        "Keys without it cannot read audit evidence."
    )
    return [
        {
            "title": "What Warden stores for this workspace",
            "paragraphs": [
                "Warden stores the records it needs to decide, gate and prove what agents "
                "did: " + "; ".join(what_we_store) + ".",
            ],
        },
        {
            "title": "Data classes handled by tools",
            "paragraphs": ["Tools declare the classes of data they touch.", *data_classes],
        },
        {
            "title": "How long it is kept",
            "paragraphs": [
                retention_text,
                *kept_for,
                *_erasure_texts(stored["erasure"]),
                f"Unanswered confirmation requests expire after {ttl_hours:g} hours.",
            ],
        },
        {
            "title": "Where it goes",
            "paragraphs": _where_it_goes(summary["destinations"]),
        },
        {
            "title": "Where key secrets are",
            "paragraphs": [
                "Nowhere. Each machine key is stored as a public prefix and an HMAC-SHA-256 "
                "digest of its secret; the full key is shown once, when it is created, and "
                "cannot be recovered from Warden.",
                secret_text,
                CREDENTIAL_SCAN_TEXT,
                CONNECTOR_CREDENTIALS_TEXT,
            ],
        },
        {
            "title": "What is shared in anonymized form",
            "paragraphs": [summary["anonymized_sharing"]["text"]],
        },
        {"title": "What never leaves", "paragraphs": list(summary["never_leaves"])},
        {
            "title": "Who can see what",
            "paragraphs": [*role_lines, keys_text],
        },
        {
            "title": "What agents did not report",
            "paragraphs": [_unreported_text(stored["unreported_results"])],
        },
        {
            "title": "When this summary was generated",
            "paragraphs": [
                f"Generated at {summary['generated_at']}. It reflects the audit chain up to "
                f"entry #{head['seq']}, whose hash is {head['hash']}.",
            ],
        },
    ]


def _unreported_text(figures: dict[str, Any]) -> str:
    """Allowed actions whose outcome Warden never observed (oversight.unreported)."""
    window = figures["window_minutes"]
    flagged = _plural(figures["flagged"], "allowed action", "allowed actions")
    if not window:
        check = "The check for unreported results is switched off for this workspace."
    else:
        check = (
            f"An allowed action whose result the agent has not reported within {window} "
            "minutes, and that Warden did not execute itself, becomes an exception record "
            "and its key's owner is reminded."
        )
    return (
        f"{check} So far {flagged} had no reported result "
        f"({figures['open']:,} still open): for those, the evidence holds the decision "
        "but not what was done."
    )


def privacy_summary_download(*, workspace: Workspace, actor: Actor, fmt: str) -> dict[str, Any]:
    """Build the summary for download and record the download in the audit chain.

    The figures and the audit entry share one transaction; the chain head reported in
    the summary is the one before this download's own entry."""
    if fmt not in DOWNLOAD_FORMATS:
        raise ValueError(f"unknown privacy summary format {fmt!r}")
    with transaction.atomic():
        summary = privacy_summary_build(workspace=workspace)
        event = EVENTS[AuditAction.PRIVACY_SUMMARY_DOWNLOADED].event(
            target_id=workspace.pk,
            input={
                "format": fmt,
                "generated_at": summary["generated_at"],
                "chain_head_seq": summary["audit_chain_head"]["seq"],
                "chain_head_hash": summary["audit_chain_head"]["hash"],
            },
            outcome="downloaded",
        )
        audit_record(event, workspace=workspace, actor=actor)
    return summary
