"""Credential-shaped values in parameters nobody declared secret.

`mask` runs where params are prepared for storage (approvals.params.store_params):
any string that looks like a credential (common.credentials) is replaced by an HMAC
digest with the server pepper, marked `credential-hmac-sha256:`, before anything
is stored, audited, shown to an approver or sent in a notification. The digest is
deterministic, so the confirmation binding and an approved re-call still match.

`record_findings` runs in the transaction that records the request: if its stored
params carry masked values, it opens an exception record (kind
credential_in_params) naming the request, the tool and where the values were, never
the values."""

from __future__ import annotations

import json
from typing import Any

from audit.models import AuditAction, ExceptionRecord
from audit.services import exception_record
from common.actor import Actor
from common.credentials import credential_type
from keys import secrets as key_secrets
from tenants.models import Workspace

CREDENTIAL_PREFIX = "credential-hmac-sha256:"
MAX_DEPTH = 64
MAX_PATHS_RECORDED = 50


def mask(value: Any, *, shown_as: str | None = None, depth: int = 0) -> Any:
    """`value` with every credential-shaped string (at any depth) replaced by its
    digest, or by `shown_as` where it is displayed (approver summaries)."""
    if isinstance(value, str):
        if credential_type(value) is None:
            return value
        return shown_as if shown_as is not None else CREDENTIAL_PREFIX + key_secrets.digest(value)
    if depth >= MAX_DEPTH:
        # Deeper than any API body may be (common.api.parsers): judge the subtree whole.
        text = json.dumps(value, sort_keys=True, default=str)
        if credential_type(text) is None:
            return value
        return shown_as if shown_as is not None else CREDENTIAL_PREFIX + key_secrets.digest(text)
    if isinstance(value, dict):
        return {
            name: mask(item, shown_as=shown_as, depth=depth + 1) for name, item in value.items()
        }
    if isinstance(value, list):
        return [mask(item, shown_as=shown_as, depth=depth + 1) for item in value]
    return value


def masked_paths(value: Any, path: str = "params", depth: int = 0) -> list[str]:
    """Where `value` holds masked credentials, as dotted paths (params.auth.token)."""
    if isinstance(value, str):
        return [path] if value.startswith(CREDENTIAL_PREFIX) else []
    found: list[str] = []
    if depth >= MAX_DEPTH:
        return found  # mask() never nests a digest deeper
    if isinstance(value, dict):
        for name, item in value.items():
            found += masked_paths(item, f"{path}.{name}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += masked_paths(item, f"{path}[{index}]", depth + 1)
    return found


def record_findings(workspace: Workspace, actor: Actor, action) -> ExceptionRecord | None:
    """Open an exception for a request whose stored params had credentials masked.
    Call inside the transaction that records the request."""
    paths = masked_paths(action.params)
    if not paths:
        return None
    return exception_record(
        workspace=workspace,
        actor=actor,
        kind=ExceptionRecord.Kind.CREDENTIAL_IN_PARAMS,
        severity=ExceptionRecord.Severity.HIGH,
        what=f"Credential-shaped value in parameters of {action.tool_name}"[:300],
        why=(
            "A parameter not declared secret looked like a credential (a provider key, "
            "token, private key or password in a URL). Warden stored only its digest; "
            "the agent holding it may be leaking a secret."
        ),
        evidence={
            "action_request": str(action.pk),
            "tool": action.tool_name,
            "paths": paths[:MAX_PATHS_RECORDED],
            "params_sha256": action.params_digest,
        },
        mitigation=(
            "Rotate the credential if it is real; declare the parameter secret on the "
            "tool if it is meant to carry one; keep credentials out of agent parameters "
            "(use a connector, whose credentials Warden holds encrypted)."
        ),
        subject=actor.label,
        action=AuditAction.CREDENTIAL_IN_PARAMS,
    )
