"""The OpenAPI contract in one place, so that it cannot drift view by view.

- Every error status an operation can answer carries the one `Error` component: the
  credential statuses (400/401/403/404/429) on every authenticated operation, 413/415
  where a body is parsed, 409/410 where a governed operation may answer 202 (its
  confirmed re-call can find the token pending, used or expired), plus what a view
  adds in `schema_error_statuses` (method -> statuses).
- Per-operation security from the view's `principals`: keys-only operations list only
  `machineKey`, humans-only only the session cookie (with the CSRF header on unsafe
  methods), both where both apply.
- Gated DELETEs declare their JSON body (the confirmation fields).
- Serializers marked `closed_schema = True` forbid extra properties, which keeps the
  key and admin views of a tool apart in a `oneOf`; every request body built on
  `StrictSerializer` forbids them too (the server refuses unknown fields).
- What the parser refuses in any body and the middleware in any query string is stated
  on every request string: no NUL, no unpaired surrogate (`TEXT_PATTERN`, added by the
  `declare_text_rules` postprocessing hook where a field has no stricter rule).
- A body whose `confirmed` flag needs its `confirmation_token` (and only then) says so
  in `x-warden-requires` and its description (`couples_confirmation = True` on the
  serializer); so does a field the server takes only alone (`x-warden-sent-alone`,
  `sent_alone = ("field", (fields allowed beside it))`).
"""

import copy

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from common.api.serializers import StrictSerializer
from common.api.views import KEY, USER
from common.errors import ERROR_STATUS

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CREDENTIAL_ERRORS = frozenset({400, 401, 403, 404, 429})
BODY_ERRORS = frozenset({400, 413, 415})
CONFIRMATION_ERRORS = frozenset({409, 410})
CSRF_HEADER = "X-CSRFToken"
# Text the API stores and renders: no NUL, no unpaired surrogate (common.text.has_unstorable).
TEXT_PATTERN = "^[^\\u0000\\ud800-\\udfff]*$"
# The same, for a field DRF strips of surrounding whitespace and refuses when blank.
_TEXT = "[^\\u0000\\ud800-\\udfff]"
# Spelled out: what str.strip() strips (str.isspace); ECMA's \\s differs.
_SPACE = (
    "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
NONBLANK_TEXT_PATTERN = f"^{_TEXT}*[^{_SPACE}\\u0000\\ud800-\\udfff]{_TEXT}*$"
# `confirmed: true` exactly when a confirmation token is sent (approvals.asking._decide).
COUPLING_MARK = "x-warden-confirmation-coupled"
ALONE_MARK = "x-warden-sent-alone"
# Couplings between fields are stated as vendor extensions, not as an object-level
# anyOf: generated clients (openapi-python-client) turn such an anyOf into a union of
# its branches and drop the body's other fields (tests/contract/test_generated_client.py).
# `x-warden-requires` reads like JSON Schema's dependentRequired (not in OpenAPI 3.0).
CONFIRMATION_COUPLING = {"confirmed": ["confirmation_token"], "confirmation_token": ["confirmed"]}


def codes_for_status(status: int) -> list[str]:
    return sorted(code for code, known in ERROR_STATUS.items() if known == status)


def _known_codes() -> str:
    return ", ".join(f"`{code}` ({status})" for code, status in ERROR_STATUS.items())


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text=(
            "Stable machine-readable code. An open set: clients must accept codes they "
            f"do not know yet (treat them by HTTP status). Known today: {_known_codes()}."
        )
    )
    message = serializers.CharField(help_text="For people; may change between versions.")
    detail = serializers.DictField(
        help_text="Machine-readable context, e.g. field errors for validation_error, "
        "`required_scope` for forbidden_by_scope, `retry_after` for rate_limited."
    )


class ErrorSerializer(serializers.Serializer):
    """Every error answer of the API: {"error": {"code", "message", "detail"}}."""

    error = ErrorBodySerializer()


def results_of(item, *, name: str) -> type[serializers.Serializer]:
    """The `{"results": [...]}` envelope of an unpaginated list, for the schema."""
    field = item(many=True) if isinstance(item, type) else item
    return type(f"{name}Serializer", (serializers.Serializer,), {"results": field})


def page_of(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The cursor-paginated envelope `{"next", "previous", "results"}` of a list."""
    name = item.__name__.removesuffix("Serializer") + "PageSerializer"
    return type(
        name,
        (serializers.Serializer,),
        {
            "next": serializers.URLField(
                allow_null=True, help_text="The next page (its `cursor`), or null."
            ),
            "previous": serializers.URLField(
                allow_null=True, help_text="The previous page (its `cursor`), or null."
            ),
            "results": item(many=True),
        },
    )


def _principals(auto_schema) -> tuple[str, ...]:
    return getattr(auto_schema.view, "principals", (KEY, USER))


class SessionScheme(OpenApiAuthenticationExtension):
    """A human session: the cookie from `POST /api/v1/session`, and on unsafe methods
    the CSRF token it returned, sent back in the `X-CSRFToken` header."""

    target_class = "rest_framework.authentication.SessionAuthentication"
    name = ["cookieAuth", "csrfToken"]
    priority = 1  # over drf-spectacular's own cookie-only scheme

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "cookie",
                "name": settings.SESSION_COOKIE_NAME,
                "description": "A human session from POST /api/v1/session (or the admin "
                "login). Name the workspace in X-Warden-Workspace when you belong to several.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": CSRF_HEADER,
                "description": "Required with the session cookie on POST/PATCH/DELETE: "
                "the csrf_token returned by POST /api/v1/session (also in the csrftoken "
                "cookie). Over HTTPS the Referer must be this site too.",
            },
        ]

    def get_security_requirement(self, auto_schema):
        if USER not in _principals(auto_schema):
            return None
        if auto_schema.method in UNSAFE_METHODS:
            return {"cookieAuth": [], "csrfToken": []}
        return {"cookieAuth": []}


class WardenAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error_ref = self.resolve_serializer(ErrorSerializer, "response").ref
        responses = operation["responses"]
        for status in sorted(self._error_statuses(operation)):
            declared = responses.get(str(status), {})
            if "content" in declared:
                continue
            codes = ", ".join(f"`{c}`" for c in codes_for_status(status)) or "see `code`"
            description = declared.get("description") or f"Error: {codes}."
            responses[str(status)] = {
                "description": description,
                "content": {"application/json": {"schema": error_ref}},
            }
        return operation

    def _error_statuses(self, operation) -> set[int]:
        statuses: set[int] = set()
        if any(operation.get("security", [])):
            statuses |= CREDENTIAL_ERRORS
        if "requestBody" in operation:
            statuses |= BODY_ERRORS
        if "202" in operation["responses"]:
            statuses |= CONFIRMATION_ERRORS
        extra = getattr(self.view, "schema_error_statuses", {})
        statuses |= set(extra.get(self.method, ()))
        return statuses

    def _get_request_body(self, direction="request"):
        # drf-spectacular documents bodies only on PUT/PATCH/POST; gated DELETEs take
        # the confirmation fields as JSON, so a declared serializer is documented too.
        if self.method != "DELETE" or self.get_request_serializer() is None:
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

    def _get_request_for_media_type(self, serializer, direction="request"):
        # drf-spectacular documents every PATCH body as partial; a serializer validated
        # whole on PATCH (`patch_is_partial = False`) keeps its required fields.
        if self.method != "PATCH" or getattr(serializer, "patch_is_partial", True):
            return super()._get_request_for_media_type(serializer, direction)
        self.method = "POST"
        try:
            return super()._get_request_for_media_type(serializer, direction)
        finally:
            self.method = "PATCH"

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request":
            schema.update(getattr(field, "schema_extra", {}))
            if (
                isinstance(field, serializers.CharField)
                and not field.allow_blank
                and field.trim_whitespace
                and schema.get("type") == "string"
                and not {"pattern", "enum", "format"} & set(schema)
            ):
                schema["pattern"] = NONBLANK_TEXT_PATTERN  # DRF strips, then refuses ""
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if getattr(serializer, "closed_schema", False) or (
            direction == "request" and isinstance(serializer, StrictSerializer)
        ):
            schema["additionalProperties"] = False
        if direction == "request" and getattr(serializer, "couples_confirmation", False):
            # Added by declare_text_rules, after drf-spectacular's enum hook (which
            # would turn the one-value enums into a shared component).
            schema[COUPLING_MARK] = True
        if direction == "request" and (alone := getattr(serializer, "sent_alone", None)):
            field, beside = alone
            schema[ALONE_MARK] = {field: sorted(beside)}
        return schema


def _declare_text(node) -> None:
    """TEXT_PATTERN on every string without a pattern, format or enum of its own, in a
    request schema (nested ones too)."""
    if isinstance(node, list):
        for item in node:
            _declare_text(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not {"pattern", "format", "enum"} & set(node):
        node["pattern"] = TEXT_PATTERN
    for key, value in node.items():
        if key not in ("enum", "default", "example", "examples", "description"):
            _declare_text(value)


def declare_text_rules(result, generator, request, public):
    """drf-spectacular postprocessing hook: request bodies (the `...Request` components
    of COMPONENT_SPLIT_REQUEST) and query/path parameters declare TEXT_PATTERN; marked
    bodies state their couplings."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _declare_text(component)
        if component.pop(COUPLING_MARK, False):
            component["x-warden-requires"] = copy.deepcopy(CONFIRMATION_COUPLING)
            component["description"] = (
                component.get("description", "") + " Send `confirmed: true` together with "
                "`confirmation_token`, and neither without the other."
            ).strip()
        if alone := component.pop(ALONE_MARK, None):
            ((field, beside),) = alone.items()
            component["x-warden-sent-alone"] = alone
            component["description"] = (
                component.get("description", "") + f" Send `{field}` alone (beside it only "
                f"{', '.join(f'`{name}`' for name in beside)})."
            ).strip()
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                for parameter in operation.get("parameters", ()):
                    _declare_text(parameter.get("schema"))
    return result
