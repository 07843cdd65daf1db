"""Stable error codes. Services raise WardenError; the API renders it as
{"error": {"code", "message", "detail"}} with the status registered here."""

from typing import Any

ERROR_STATUS: dict[str, int] = {
    "validation_error": 400,
    # A credential reference outside the workspace's own namespace (gateway.credentials).
    "credential_not_allowed": 400,
    # A configuration change without a reason (audit.services.require_reason): every
    # change's version log says why.
    "reason_required": 400,
    "parse_error": 400,
    # A policy document or policy tests file that fails its JSON Schema (each path named).
    "policy_invalid": 400,
    "invalid_params": 400,
    "workspace_required": 400,
    "not_authenticated": 401,
    "invalid_credentials": 401,
    "invalid_key": 401,
    "key_expired": 401,
    "key_revoked": 401,
    "invalid_token": 401,
    "forbidden_by_scope": 403,
    "permission_denied": 403,
    "tool_not_allowed": 403,
    "workspace_mismatch": 403,
    "writes_disabled": 403,
    "humans_only": 403,
    "keys_only": 403,
    "four_eyes": 403,
    "policy_error": 403,
    "denied_by_policy": 403,
    "approval_required": 403,
    "confirmation_denied": 403,
    "confirmation_mismatch": 403,
    "last_owner": 409,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "conflict": 409,
    # A governed policy change whose objects changed since it was proposed: plan again.
    "policy_base_moved": 409,
    # The upstream's definition of a tool no longer matches the one a human reviewed (a
    # rug pull): nothing was called; the tool is disabled until reviewed again.
    "upstream_tool_changed": 409,
    "confirmation_pending": 409,
    "confirmation_used": 409,
    "already_decided": 409,
    "confirmation_expired": 410,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    # A long-poll refused because the key's or the process's waits are all taken
    # (approvals.waiting); Retry-After says when to ask again.
    "too_many_waits": 429,
    "internal_error": 500,
    "upstream_error": 502,
    # A lock wait ran out or the database is momentarily unreachable: nothing was
    # written; repeat after Retry-After (docs: "Contention and faults").
    "unavailable": 503,
}


class WardenError(Exception):
    """A refusal with a stable, machine-readable code. Never put secrets in it."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None):
        if code not in ERROR_STATUS:
            raise ValueError(f"unregistered error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or {}

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]

    def as_payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "detail": self.detail}}


def error_payload(code: str, message: str, detail: dict[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "detail": detail or {}}}
