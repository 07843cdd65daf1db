"""Executing an approved call: Warden calls the upstream itself with the credentials it
holds (DESIGN.md 11), records the execution and the output it observed, and refuses a
tool whose upstream definition changed since it was reviewed. Audit entries in the same
transaction; header values never in any entry, error or log line. The connector
lifecycle is gateway/services.py."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from approvals import catalog, minimisation, personal_data, projection
from approvals.asking import action_submit, tool_lookup
from approvals.models import ActionRequest, Tool
from approvals.outcome import Outcome
from approvals.signals import announce_action_decided
from audit.events import EVENTS
from audit.models import AuditAction, ExceptionRecord
from audit.services import (
    audit_record,
    audit_record_with,
    exception_record,
)
from common import telemetry
from common.actor import Actor
from common.errors import WardenError
from common.sql import insert_once, update_row
from gateway import credentials, crypto, outbound, upstream
from gateway.models import Connector, Execution
from gateway.selectors import connector_with_hosts
from gateway.services import _headers_for_call
from keys import secrets as key_secrets
from tenants.models import Workspace

# --- execution -------------------------------------------------------------------------


@dataclass
class GatewayAnswer:
    """The gate's answer, and what Warden did with it."""

    outcome: Outcome
    tool: Tool | None = None
    execution: Execution | None = None
    result: dict | None = None  # the upstream's CallToolResult, when it ran now
    connector: Connector | None = None


def action_execute(
    *,
    key,
    actor: Actor,
    tool_name: str,
    params: Any,
    reason: str = "",
    idempotency_key: str = "",
    confirmation_token: str = "",
) -> GatewayAnswer:
    """Ask the gate (approvals.asking.action_submit: one gate, one trail); when the
    outcome is allowed and the tool has a connector, execute it upstream, once.

    The decision and the execution's first write (`started`) commit together, before
    the upstream is called; the outcome, the action's result and the one audit entry
    for both commit together after it. Two transactions, so a crash between them
    leaves a `started` row that nothing ever executes again."""
    _, tool = tool_lookup(workspace=key.workspace, name=tool_name)
    token = confirmation_token
    refused = None
    with transaction.atomic():
        try:
            outcome = action_submit(
                key=key,
                tool_name=tool_name,
                params=params,
                actor=actor,
                reason=reason,
                idempotency_key="" if token else idempotency_key,
                confirmed=bool(token),
                confirmation_token=token,
                # MCP clients call again with the same arguments instead of a token.
                run_approved=True,
            )
        except WardenError as error:
            # Raised after what it recorded (a confirmation found expired, voided...):
            # that record commits, as it would without this transaction around it.
            refused = error
        else:
            found = GatewayAnswer(outcome=outcome, tool=tool)
            if not outcome.allowed or tool is None or tool.connector_id is None:
                return found
            action = outcome.action
            connector = connector_for_call(action.workspace, tool.connector_id)
            if connector is None:
                return found
            found.connector = connector
            dry_run = outcome.dry_run
            execution, fresh = _start(action, tool, connector, actor, dry_run=dry_run)
    if refused is not None:
        raise refused
    found.execution = execution
    if fresh and execution.status == Execution.Status.STARTED:
        with telemetry.traced(
            "warden.execute",
            workspace=action.workspace.slug,
            tool=tool.name,
            connector=connector.name,
            upstream_tool=execution.upstream_tool,
            action_id=action.pk,
        ) as span:
            found.execution, found.result = _finish(
                action, tool, connector, execution, params, actor
            )
            span.set(outcome=found.execution.status, latency_ms=found.execution.latency_ms)
    return found


def connector_for_call(workspace: Workspace, connector_id) -> Connector | None:
    """The tool's connector as it is now, with the workspace's outbound host allowlist
    read in the same statement (gateway.selectors.connector_with_hosts)."""
    connector = connector_with_hosts(workspace=workspace, pk=connector_id)
    if connector is not None:
        connector.workspace = workspace  # the decision's workspace, read fresh for it
    return connector


def _start(action: ActionRequest, tool, connector, actor, *, dry_run: bool):
    """The execution's first write, in the caller's transaction: `started` (or the dry
    run's whole record). (execution, True) when this call wrote it; (the first
    attempt, False) when the request was attempted before (a retry, a replay, a race):
    the one-to-one link refuses a second row, so nothing ever calls upstream twice."""
    execution = Execution(
        workspace_id=action.workspace_id,
        action_request=action,
        connector=connector,
        # The upstream tool bound at import, never derived from the catalog name.
        upstream_tool=tool.upstream_name,
        status=Execution.Status.DRY_RUN if dry_run else Execution.Status.STARTED,
    )
    if dry_run:
        execution.finished_at = execution.started_at
    # A conflict leaves the transaction (and the decision in it) usable: no savepoint.
    if not insert_once(execution):
        return Execution.objects.select_related("connector").get(action_request=action), False
    if dry_run:
        _audit_execution(action, tool, connector, execution, actor)
    return execution, True


@sensitive_variables("headers")
def _finish(action: ActionRequest, tool, connector, execution: Execution, params, actor):
    """Call the upstream, then record in one transaction what was observed: the
    execution's outcome, the action's result (executed / failed) and one audit entry
    for both. The action is updated only while it is still allowed without a result."""
    upstream_name = execution.upstream_tool
    headers: dict[str, str] = {}
    result, error = None, ""
    started = time.monotonic()
    changed: str = ""
    try:
        if not connector.enabled:
            raise outbound.UpstreamError(f"The connector {connector.name} is disabled.")
        if not upstream_name or tool.connector_id != connector.pk:
            raise outbound.UpstreamError("This tool is bound to no upstream tool.")
        target = outbound.check_url(
            connector.url, connector.workspace, hosts=getattr(connector, "outbound_hosts", None)
        )
        headers = _headers_for_call(connector)
        changed = _definition_changed(connector, tool, target, headers)
        if changed:
            raise outbound.UpstreamError(f"upstream_tool_changed: {changed}")
        call = (
            upstream.mcp_call_tool
            if connector.kind == Connector.Kind.MCP
            else upstream.http_call_tool
        )
        outcome = call(connector.pk, target, headers, upstream_name, params)
        result = outcome.result
        status = Execution.Status.TOOL_ERROR if outcome.is_error else Execution.Status.SUCCEEDED
    except (
        outbound.DestinationRefused,
        outbound.UpstreamError,
        credentials.CredentialError,
        crypto.SecretUnreadable,
    ) as exc:
        status, error = Execution.Status.FAILED, _redact(str(exc), headers)
    latency_ms = int((time.monotonic() - started) * 1000)
    # The digest is of what the upstream returned (what Warden observed); the copy kept
    # is what the agent receives: the tool's output projection applied.
    sha, size = _digest(result) if result is not None else ("", 0)
    result, execution.withheld = _project(tool, result)
    execution.status = status
    execution.error = error
    execution.output_sha256 = sha
    execution.output_bytes = size
    shown_size = size if execution.withheld is None else _digest(result)[1]
    # The copy is personal data: sealed under the request's data key, erased with it.
    copy = minimisation.output_copy(connector.workspace, result, shown_size)
    execution.output = None
    execution.sealed_output = "" if copy is None else action.seal_value(copy)
    execution.latency_ms = latency_ms
    execution.finished_at = timezone.now()
    succeeded = status == Execution.Status.SUCCEEDED
    if not succeeded:
        action_status = ActionRequest.Status.FAILED
    elif action.dry_run:
        action_status = ActionRequest.Status.SIMULATED
    else:
        action_status = ActionRequest.Status.EXECUTED
    with transaction.atomic():
        # One prepared statement for both rows (common.sql.update_row): the ORM spent
        # more building two UPDATEs than the database running them.
        finished = {
            "status": status,
            "error": error,
            "output_sha256": sha,
            "output_bytes": size,
            "output": None,
            "sealed_output": execution.sealed_output,
            "withheld": execution.withheld,
            "latency_ms": latency_ms,
            "finished_at": execution.finished_at,
        }
        reported = update_row(
            ActionRequest,
            action.pk,
            {
                "status": action_status,
                "result_status": "succeeded" if succeeded else "failed",
                "result_output": {
                    "execution": str(execution.pk),
                    "outcome": status,
                    "output_sha256": sha,
                    "output_bytes": size,
                },
                "result_reported_at": execution.finished_at,
                "data_key": action.data_key,
            },
            where="status = %s AND result_reported_at IS NULL",
            where_params=[ActionRequest.Status.ALLOWED],
            along=(Execution, execution.pk, finished),
        )
        if reported:
            action.status = action_status
        # Group commit: when another transaction holds the chain head, the entry is
        # committed with this change and chained right after, instead of waiting for
        # that transaction's commit flush (audit.services.audit_record_with).
        _audit_execution(action, tool, connector, execution, actor, group_commit=True)
        # Read with the connector: a workspace without webhook endpoints has no one to
        # tell, and the call is spared the after-commit lookup.
        if reported and action_status == ActionRequest.Status.EXECUTED and connector.has_webhooks:
            announce_action_decided(action, "action.executed")
    if changed:
        _rug_pulled(tool, connector, execution, changed)
    return execution, result


@sensitive_variables("headers")
def _definition_changed(connector: Connector, tool: Tool, target, headers) -> str:
    """Why the upstream's current definition of the tool is not the one reviewed ('' when
    it is). MCP connectors only: an http connector's tools are declared in Warden."""
    if connector.kind != Connector.Kind.MCP:
        return ""
    current = upstream.mcp_current_definition(
        connector.pk,
        target,
        headers,
        tool.upstream_name,
        ttl=settings.WARDEN_UPSTREAM_DEFINITION_TTL,
    )
    if current is None:
        return f"the upstream no longer offers {tool.upstream_name!r}"
    if tool.upstream_digest:
        same = current.digest == tool.upstream_digest
    else:  # imported before digests: compare what was imported then
        same = (current.description, current.input_schema) == (
            tool.description,
            tool.input_schema,
        )
    return "" if same else f"the upstream changed its definition of {tool.upstream_name!r}"


def _rug_pulled(tool: Tool, connector: Connector, execution: Execution, why: str):
    """Disable the tool (the catalog service: audited, policy version bumped) and open an
    exception record, together; then refuse the call with a stable code. Warden acts
    here, not the key whose call found the change."""
    actor = Actor.system("gateway.definition_check")
    with transaction.atomic():
        current = Tool.objects.filter(pk=tool.pk, enabled=True).first()
        if current is not None:
            catalog.tool_update(
                tool=current,
                actor=actor,
                changes={"enabled": False},
                reason=f"{why}: disabled until a human reviews it again",
            )
        exception_record(
            workspace=connector.workspace,
            actor=actor,
            kind=ExceptionRecord.Kind.ANOMALY,
            severity=ExceptionRecord.Severity.HIGH,
            what=f"Upstream tool changed after review: {tool.name}"[:300],
            why=f"Connector {connector.name}: {why}. The call was refused and the tool disabled.",
            evidence={
                "tool": tool.name,
                "connector": connector.name,
                "upstream_tool": tool.upstream_name,
                "reviewed_digest": tool.upstream_digest,
                "execution": str(execution.pk),
            },
            mitigation="Sync the connector, review the new definition, enable it again.",
            subject=f"connector:{connector.pk}",
        )
    raise WardenError(
        "upstream_tool_changed",
        f"The upstream's definition of {tool.name} changed since it was reviewed: nothing "
        "was called, and the tool is disabled until a human reviews it again.",
        {"tool": tool.name},
    )


def withheld_digest(text: str) -> str:
    """Keyed (the server pepper), like secret parameters: a short withheld value (a
    yes/no, a small number) cannot be recovered by guessing from its digest."""
    return SECRET_DIGEST_PREFIX + key_secrets.digest(text)


SECRET_DIGEST_PREFIX = "hmac-sha256:"


def _project(tool: Tool, result: Any) -> tuple[Any, dict | None]:
    """(what the agent may read of `result`, what was withheld or None): the tool's
    output projection (approvals.projection), applied before anything reaches the agent
    or the stored copy."""
    paths = tool.output_projection
    if paths is None or not isinstance(result, dict):
        return result, None
    shown = projection.project_tool_result(result, list(paths), withheld_digest)
    return shown.value, shown.record()


def _digest(value: Any) -> tuple[str, int]:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(encoded).hexdigest(), len(encoded)


@sensitive_variables("headers")
def _redact(text: str, headers: dict[str, str]) -> str:
    for value in headers.values():
        if len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return text[:500]


def _audit_execution(
    action, tool, connector, execution: Execution, actor: Actor, *, group_commit: bool = False
) -> None:
    event = EVENTS[AuditAction.EXECUTION_RECORDED].event(
        target_id=execution.pk,
        tool=tool.name,
        input={
            "action_request": str(action.pk),
            # Personal data: the chain keeps the digest; the values stay sealed on the row.
            "params_sha256": personal_data.digest(action.params),
            "connector": connector.name,
            "upstream_tool": execution.upstream_tool,
            "output_sha256": execution.output_sha256,
            "output_bytes": execution.output_bytes,
            "latency_ms": execution.latency_ms,
            "error": execution.error,
            # Digests and sizes only (approvals.projection): never a withheld value.
            **({"withheld": execution.withheld} if execution.withheld is not None else {}),
        },
        decision="allowed",
        rationale="executed by Warden through the connector"
        if execution.status != Execution.Status.DRY_RUN
        else "dry run: nothing was called",
        policy_version=action.policy_version,
        outcome=execution.status,
    )
    if group_commit:
        audit_record_with(None, event, workspace=connector.workspace, actor=actor)
    else:
        audit_record(event, workspace=connector.workspace, actor=actor)
