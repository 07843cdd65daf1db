"""Every error code the Warden server answers, with its HTTP status.

Kept equal to the server's `common.errors.ERROR_STATUS` by a test in the server's
suite (tests/test_sdk_codes.py), so the two lists cannot drift."""

ERROR_CODES: dict[str, int] = {
    "validation_error": 400,
    "parse_error": 400,
    "workspace_required": 400,
    "not_authenticated": 401,
    "invalid_key": 401,
    "key_expired": 401,
    "key_revoked": 401,
    "forbidden_by_scope": 403,
    "permission_denied": 403,
    "tool_not_allowed": 403,
    "workspace_mismatch": 403,
    "writes_disabled": 403,
    "humans_only": 403,
    "keys_only": 403,
    "four_eyes": 403,
    "policy_error": 403,
    "confirmation_denied": 403,
    "confirmation_mismatch": 403,
    "last_owner": 409,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "conflict": 409,
    "confirmation_pending": 409,
    "confirmation_used": 409,
    "already_decided": 409,
    "confirmation_expired": 410,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal_error": 500,
}
