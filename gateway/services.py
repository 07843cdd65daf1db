"""The connector lifecycle: create, update, delete, catalog sync, and the stored
credentials. Each writes its audit entry in the same transaction; header values are
never part of any audit entry, error or log line (header names only). Executing an
approved call is gateway/execution.py."""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from approvals import catalog
from approvals.arguments import schema_problem
from approvals.models import PolicyVersion, Tool
from approvals.policy import versions
from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import (
    audit_record,
    audit_record_change,
)
from common.actor import Actor
from common.errors import WardenError
from gateway import credentials, crypto, naming, outbound, upstream
from gateway.models import CONNECTOR_NAME, Connector
from notifications.slack import services as slack_services
from tenants.models import Workspace

HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")
# Set by the gateway itself on every upstream request.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "accept",
        "connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "mcp-session-id",
        "mcp-protocol-version",
    }
)
MAX_HEADERS = 20
MAX_HEADER_VALUE = 8192
MAX_TOOLS_PER_SYNC = 500
UPSTREAM_TOOL_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
UPDATABLE = ("url", "headers", "declared_tools", "enabled")


def _invalid(field: str, message: str) -> WardenError:
    return WardenError("validation_error", message, {field: [message]})


# --- credentials -----------------------------------------------------------------------


@sensitive_variables("headers", "value", "clean")
def _clean_headers(headers: Any, workspace: Workspace) -> dict[str, str]:
    """Validated headers. Errors name the header, never its value; a credential
    reference outside the workspace's namespace is `credential_not_allowed`."""
    if headers is None:
        return {}
    if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
        raise _invalid("headers", f"An object of at most {MAX_HEADERS} headers.")
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise _invalid("headers", "Header names are HTTP tokens (letters, digits, -).")
        if name.lower() in RESERVED_HEADERS:
            raise _invalid("headers", f"The header {name} is set by Warden itself.")
        if name.lower() in (n.lower() for n in clean):
            raise _invalid("headers", f"The header {name} is given twice.")
        if (
            not isinstance(value, str)
            or not value
            or len(value) > MAX_HEADER_VALUE
            or any(c in value for c in "\r\n\x00")
        ):
            raise _invalid("headers", f"The value of {name} must be one line of text.")
        try:
            credentials.check(value, workspace=workspace)
        except credentials.CredentialNotAllowed as exc:
            message = f"{name}: {exc}"
            raise WardenError("credential_not_allowed", message, {"headers": [message]}) from None
        except credentials.CredentialError as exc:
            raise _invalid("headers", f"{name}: {exc}") from None
        clean[name] = value
    return clean


@sensitive_variables("headers")
def _store_headers(connector: Connector, headers: dict[str, str]) -> None:
    connector.headers_encrypted = crypto.encrypt(json.dumps(headers)) if headers else ""
    connector.header_names = sorted(headers)


@sensitive_variables("stored", "resolved")
def _headers_for_call(connector: Connector) -> dict[str, str]:
    """The headers to send, decrypted and references resolved, at call time only."""
    if not connector.headers_encrypted:
        return {}
    stored = json.loads(crypto.decrypt(connector.headers_encrypted))
    workspace = connector.workspace
    resolved = {
        name: credentials.resolve(value, workspace=workspace) for name, value in stored.items()
    }
    return resolved


def reencrypt_all() -> int:
    """After putting a new key first in WARDEN_SECRETS_KEY: move every stored credential
    to it, so the old key can be removed: connector headers and Slack bot tokens.
    Returns how many stored credentials were rewritten."""
    done = 0
    for pk in Connector.objects.exclude(headers_encrypted="").values_list("pk", flat=True):
        with transaction.atomic():
            connector = Connector.objects.select_for_update().get(pk=pk)
            connector.headers_encrypted = crypto.reencrypt(connector.headers_encrypted)
            connector.save(update_fields=["headers_encrypted"])
            done += 1
    return done + slack_services.bot_tokens_reencrypt()


# --- connectors ------------------------------------------------------------------------


def _check_url(url: Any, workspace: Workspace) -> str:
    if not isinstance(url, str) or not url.strip() or len(url) > 2000:
        raise _invalid("url", "A URL of at most 2000 characters.")
    try:
        outbound.check_url(url.strip(), workspace, resolve=False)
    except outbound.DestinationRefused as exc:
        raise _invalid("url", str(exc)) from None
    return url.strip()


def _clean_declared_tools(tools: Any) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS_PER_SYNC:
        raise _invalid("declared_tools", f"A list of at most {MAX_TOOLS_PER_SYNC} tools.")
    clean, seen = [], set()
    for item in tools:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not UPSTREAM_TOOL_NAME.fullmatch(name) or name in seen:
            raise _invalid("declared_tools", "Each tool needs a unique lowercase dotted name.")
        schema = item.get("input_schema") or {"type": "object"}
        problem = schema_problem(schema)
        if problem:
            raise _invalid("declared_tools", f"{name}: {problem}")
        description = item.get("description") or ""
        if not isinstance(description, str) or len(description) > 5000:
            raise _invalid("declared_tools", f"{name}: description is text (5000 at most).")
        seen.add(name)
        clean.append({"name": name, "description": description, "input_schema": schema})
    return clean


def _audit_connector(connector, workspace, actor, action, before, after, reason=""):
    audit_record_change(
        EVENTS[action].change(
            target_id=connector.pk,
            before=before,
            after=after,
            reason=reason,
        ),
        workspace=workspace,
        actor=actor,
    )


@sensitive_variables("headers", "clean_headers")
def connector_create_check(
    *,
    workspace: Workspace,
    name: Any,
    url: Any,
    kind: Any = Connector.Kind.MCP,
    headers: dict | None = None,
    declared_tools: list | None = None,
    enabled: bool = True,
    taken_ok: bool = False,
) -> dict[str, Any]:
    """The validated fields of a new connector (headers still in clear, for the caller
    to encrypt or store at once), or WardenError: bad input is refused before anyone is
    asked to approve it. `taken_ok`: skip the name check (a confirmed re-call, whose
    approval created the connector)."""
    if not isinstance(name, str) or not CONNECTOR_NAME.fullmatch(name):
        raise _invalid("name", "Lowercase letters, digits, - and _ (no dots), 1-63 characters.")
    if kind not in Connector.Kind.values:
        raise _invalid("kind", f"One of {', '.join(Connector.Kind.values)}.")
    clean_headers = _clean_headers(headers, workspace)
    fields = {
        "name": name,
        "kind": kind,
        "url": _check_url(url, workspace),
        "declared_tools": _clean_declared_tools(declared_tools),
        "enabled": bool(enabled),
        "headers": clean_headers,
    }
    if not taken_ok and Connector.objects.filter(workspace=workspace, name=name).exists():
        raise WardenError(
            "conflict", "A connector with this name exists.", {"name": ["Already used."]}
        )
    return fields


@sensitive_variables("headers", "clean_headers")
def connector_create(
    *,
    workspace: Workspace,
    actor: Actor,
    name: str,
    url: str,
    kind: str = Connector.Kind.MCP,
    headers: dict | None = None,
    declared_tools: list | None = None,
    enabled: bool = True,
    reason: str = "",
) -> Connector:
    """Creating a connector is governed (approvals.governance): callers go through the
    door (gateway.governance), the model guard refuses it otherwise."""
    fields = connector_create_check(
        workspace=workspace,
        name=name,
        url=url,
        kind=kind,
        headers=headers,
        declared_tools=declared_tools,
        enabled=enabled,
    )
    clean_headers = fields.pop("headers")
    connector = Connector(workspace=workspace, **fields)
    _store_headers(connector, clean_headers)
    with transaction.atomic():
        if Connector.objects.filter(workspace=workspace, name=name).exists():
            raise WardenError(
                "conflict", "A connector with this name exists.", {"name": ["Already used."]}
            )
        connector.save(force_insert=True)
        _audit_connector(
            connector,
            workspace,
            actor,
            AuditAction.CONNECTOR_CREATED,
            None,
            connector.snapshot(),
            reason,
        )
    return connector


def _disable_tools(connector: Connector, actor: Actor, reason: str) -> None:
    for tool in Tool.objects.filter(connector=connector, enabled=True):
        catalog.tool_update(tool=tool, actor=actor, changes={"enabled": False}, reason=reason)


@sensitive_variables("changes", "clean")
def connector_update_check(*, connector: Connector, changes: dict) -> dict[str, Any]:
    """The validated changes (headers still in clear), or WardenError."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise _invalid("fields", f"Not changeable: {', '.join(unknown)}.")
    clean = dict(changes)
    if "url" in clean:
        clean["url"] = _check_url(clean["url"], connector.workspace)
    if "headers" in clean:
        clean["headers"] = _clean_headers(clean["headers"], connector.workspace)
    if "declared_tools" in clean:
        clean["declared_tools"] = _clean_declared_tools(clean["declared_tools"])
    if "enabled" in clean:
        clean["enabled"] = bool(clean["enabled"])
    return clean


@sensitive_variables("stored")
def stored_headers(connector: Connector) -> dict[str, str]:
    """The stored header values, decrypted, references unresolved: for comparing what a
    change replaces (gateway.governance), never for display."""
    if not connector.headers_encrypted:
        return {}
    stored = json.loads(crypto.decrypt(connector.headers_encrypted))
    return stored


@sensitive_variables("changes", "clean_headers")
def connector_update(
    *, connector: Connector, actor: Actor, changes: dict, reason: str = ""
) -> Connector:
    """Change url, headers (replaced as a whole), declared tools or enabled. A new URL
    disables the connector's tools until a human reviews them again. A new URL or new
    credential values are governed (gateway.governance routes them through the door)."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise _invalid("fields", f"Not changeable: {', '.join(unknown)}.")
    with transaction.atomic():
        connector = Connector.objects.select_for_update().get(pk=connector.pk)
        workspace = connector.workspace
        before = connector.snapshot()
        url_changed = False
        if "url" in changes:
            url = _check_url(changes["url"], workspace)
            url_changed = url != connector.url
            connector.url = url
        if "headers" in changes:
            clean_headers = _clean_headers(changes["headers"], workspace)
            _store_headers(connector, clean_headers)
        if "declared_tools" in changes:
            connector.declared_tools = _clean_declared_tools(changes["declared_tools"])
        if "enabled" in changes:
            connector.enabled = bool(changes["enabled"])
        connector.updated_at = timezone.now()
        connector.save()
        after = connector.snapshot()
        if "headers" in changes:
            # Values never enter the trail; that they changed does.
            after = {**after, "headers_replaced": True}
        _audit_connector(
            connector, workspace, actor, AuditAction.CONNECTOR_UPDATED, before, after, reason
        )
        if url_changed:
            _disable_tools(connector, actor, f"connector {connector.name}: URL changed")
    return connector


def connector_delete(*, connector: Connector, actor: Actor, reason: str = "") -> None:
    """Removes the connector and the tools imported from it (each audited)."""
    with transaction.atomic():
        connector = Connector.objects.select_for_update().get(pk=connector.pk)
        # The connector's own entry below refuses a blank reason, rolling all back.
        why = f"connector {connector.name} removed: {reason}"
        for tool in Tool.objects.filter(connector=connector):
            catalog.tool_delete(tool=tool, actor=actor, reason=why)
        before = connector.snapshot()
        pk = connector.pk
        connector.delete()
        connector.pk = pk
        _audit_connector(
            connector,
            connector.workspace,
            actor,
            AuditAction.CONNECTOR_DELETED,
            before,
            None,
            reason,
        )


def _upstream_tools(connector: Connector) -> list[upstream.UpstreamTool]:
    if connector.kind == Connector.Kind.HTTP:
        return [
            upstream.UpstreamTool(t["name"], t.get("description", ""), t["input_schema"])
            for t in connector.declared_tools or []
        ]
    try:
        target = outbound.check_url(connector.url, connector.workspace)
        return upstream.mcp_list_tools(connector.pk, target, _headers_for_call(connector))
    except (
        outbound.DestinationRefused,
        outbound.UpstreamError,
        credentials.CredentialError,
        crypto.SecretUnreadable,
    ) as exc:
        raise WardenError(
            "upstream_error", f"The catalog of {connector.name} could not be read: {exc}"
        ) from None


def proposed_policy(offer: upstream.UpstreamTool) -> dict[str, Any]:
    """Where a new imported tool starts, from what the upstream declares: a starting
    proposal a human reviews (the tool starts disabled), never looser than
    write + always unless the upstream says read-only. Destructive wins over read-only;
    open-world makes it external. The gate's sensitivity floor applies on top."""
    hints = offer.annotations
    destructive = hints.get("destructiveHint") is True
    read_only = hints.get("readOnlyHint") is True and not destructive
    open_world = hints.get("openWorldHint") is True
    if open_world:
        level = Tool.Level.EXTERNAL
    elif read_only:
        level = Tool.Level.READ
    else:
        level = Tool.Level.WRITE
    quiet = read_only and not open_world
    return {
        "level": level,
        "confirmation": Tool.Confirmation.NEVER if quiet else Tool.Confirmation.ALWAYS,
        "irreversible": destructive,
    }


def _unusable(offer: upstream.UpstreamTool) -> bool:
    name = offer.name
    return (
        not name
        or len(name) > 200
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or bool(schema_problem(offer.input_schema))
    )


def connector_sync(*, connector: Connector, actor: Actor) -> dict[str, list[str]]:
    """Import the upstream catalog: each upstream tool is bound, by the connector and its
    verbatim upstream name, to one catalog tool named `<connector>.<segment>`
    (gateway.naming) at creation; later syncs find it by that binding, never by its
    catalog name, so a rename neither re-points it nor lets another upstream tool take
    its place. New tools start disabled with the level and confirmation the upstream's
    annotations propose; a changed definition (description, schemas, annotations) is a
    version-log entry and disables the tool again; vanished tools go."""
    if not connector.enabled:
        raise WardenError("conflict", "This connector is disabled.")
    offered = _upstream_tools(connector)
    unusable = {t.name for t in offered if _unusable(t)}
    skipped = sorted(name[:200] for name in unusable)[:100]  # upstream text: bounded
    usable = {t.name: t for t in offered if t.name not in unusable}
    if len(usable) > MAX_TOOLS_PER_SYNC:
        raise WardenError("upstream_error", f"More than {MAX_TOOLS_PER_SYNC} tools upstream.")
    report: dict[str, list[str]] = {"created": [], "changed": [], "removed": []}
    # One policy version for the whole sync, in its transaction (not one per tool).
    with (
        transaction.atomic(),
        versions.recording(
            connector.workspace,
            source=PolicyVersion.Source.APPLIED,
            author=actor.label,
            reason=f"catalog sync of connector {connector.name}",
        ),
    ):
        connector = Connector.objects.select_for_update().get(pk=connector.pk)
        workspace = connector.workspace
        prefix = naming.catalog_prefix(connector.name) + "."
        # Tools bound to no upstream tool (a name the upgrade could not map) are left
        # alone: they never execute, and no upstream tool may adopt them.
        existing = {
            t.upstream_name: t
            for t in Tool.objects.filter(connector=connector).exclude(upstream_name="")
        }
        taken = set(Tool.objects.filter(workspace=workspace).values_list("name", flat=True))
        why = f"catalog sync of connector {connector.name}"
        # Names already valid come first, so `list_tickets` keeps its name and a
        # `list-tickets` beside it gets the suffix, whatever order the upstream lists.
        fresh = sorted(
            (n for n in usable if n not in existing),
            key=lambda n: (naming.catalog_segment(n) != n, n),
        )
        for name in fresh:
            offer = usable[name]
            segment = naming.catalog_segment(name)
            full = prefix + segment
            if full in taken:
                full = prefix + naming.disambiguated(segment, name)
            if full in taken or len(full) > 200:
                skipped.append(name[:200])
                continue
            taken.add(full)
            catalog.tool_create(
                workspace=workspace,
                actor=actor,
                reason=why,
                name=full,
                description=offer.description,
                input_schema=offer.input_schema,
                enabled=False,
                connector=connector,
                upstream_name=name,
                upstream_digest=offer.digest,
                output_schema=offer.output_schema,
                upstream_annotations=offer.annotations,
                **proposed_policy(offer),
            )
            report["created"].append(full)
        for name, tool in sorted(existing.items()):
            offer = usable.get(name)
            if offer is None:
                continue
            if tool.upstream_digest == offer.digest:
                continue
            definition = {
                "description": offer.description,
                "input_schema": offer.input_schema,
                "output_schema": offer.output_schema,
                "upstream_annotations": offer.annotations,
                "upstream_digest": offer.digest,
            }
            legacy = not tool.upstream_digest and (
                tool.description == offer.description and tool.input_schema == offer.input_schema
            )
            if legacy:
                # Imported before definitions were digested, and unchanged since: record
                # the digest of what was reviewed; nothing to review again.
                catalog.tool_update(
                    tool=tool,
                    actor=actor,
                    reason=f"{why}: definition recorded",
                    changes=definition,
                )
                continue
            catalog.tool_update(
                tool=tool,
                actor=actor,
                reason=f"{why}: changed upstream, disabled until reviewed",
                changes={**definition, "enabled": False},
            )
            report["changed"].append(tool.name)
        for name, tool in sorted(existing.items()):
            if name not in usable:
                catalog.tool_delete(tool=tool, actor=actor, reason=f"{why}: gone upstream")
                report["removed"].append(tool.name)
        report = {kind: sorted(names) for kind, names in report.items()}
        connector.last_synced_at = timezone.now()
        connector.save(update_fields=["last_synced_at"])
        audit_record(
            EVENTS[AuditAction.CONNECTOR_SYNCED].event(
                target_id=connector.pk,
                input={**report, "skipped": skipped},
                outcome="applied",
            ),
            workspace=workspace,
            actor=actor,
        )
    return {**report, "skipped": sorted(skipped)}


def connectors_to_sync() -> list:
    """Every enabled MCP connector (http connectors declare their tools in Warden)."""
    return list(
        Connector.objects.filter(enabled=True, kind=Connector.Kind.MCP).values_list("pk", flat=True)
    )


def connector_sync_scheduled(*, connector_id, actor: Actor) -> dict | None:
    """The scheduled sync of one connector. An unreachable upstream is recorded in the
    sync's place (the audit trail), never raised: the next run tries again."""
    connector = Connector.objects.filter(pk=connector_id, enabled=True).first()
    if connector is None:
        return None
    try:
        return connector_sync(connector=connector, actor=actor)
    except WardenError as error:
        audit_record(
            EVENTS[AuditAction.CONNECTOR_SYNCED].event(
                target_id=connector.pk,
                input={"created": [], "changed": [], "removed": [], "skipped": []},
                rationale=f"scheduled sync failed ({error.code}): {error.message}"[:500],
                outcome="failed",
            ),
            workspace=connector.workspace,
            actor=actor,
        )
        return None
