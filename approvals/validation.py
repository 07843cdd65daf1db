"""Tool catalog validation, shared by the admin (Tool.clean) and the services."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from approvals.arguments import schema_problem
from approvals.conditions import ConditionError, compile_condition
from approvals.projection import projection_problem

TOOL_NAME_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_PREFIX = "warden."


def tool_field_errors(tool) -> dict[str, list[str]]:
    """Field -> messages for an unsaved or changed Tool; empty when valid. The choices
    come from the instance's class, so this module does not import the models."""
    Tool = type(tool)
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    name = tool.name or ""
    if not TOOL_NAME_RE.match(name) or len(name) > 200:
        add("name", "Use dotted lowercase names like crm.update_stage.")
    elif name.startswith(RESERVED_PREFIX) or name == "warden":
        add("name", "Names under warden. are reserved for the platform's own operations.")
    if tool.level not in Tool.Level.values:
        add("level", f"One of {', '.join(Tool.Level.values)}.")
    if tool.confirmation not in Tool.Confirmation.values:
        add("confirmation", f"One of {', '.join(Tool.Confirmation.values)}.")
    classes = tool.data_classes
    if not isinstance(classes, list) or any(c not in Tool.DATA_CLASSES for c in classes):
        add("data_classes", f"A list of: {', '.join(Tool.DATA_CLASSES)}.")
    secret = tool.secret_params
    if not isinstance(secret, list) or not all(
        isinstance(p, str) and PARAM_NAME_RE.match(p) for p in secret
    ):
        add("secret_params", "A list of parameter names.")
    condition = (tool.condition or "").strip()
    if tool.confirmation == Tool.Confirmation.CONDITIONAL and not condition:
        add("condition", "A conditional confirmation needs a condition.")
    if condition:
        try:
            compile_condition(condition)
        except ConditionError as exc:
            add("condition", str(exc))
    shadow = getattr(tool, "shadow_confirmation", "") or ""
    shadow_condition = (getattr(tool, "shadow_condition", "") or "").strip()
    if shadow and shadow not in Tool.Confirmation.values:
        add("shadow_confirmation", f"Empty or one of {', '.join(Tool.Confirmation.values)}.")
    if shadow == Tool.Confirmation.CONDITIONAL and not shadow_condition:
        add("shadow_condition", "A conditional shadow rule needs a condition.")
    if shadow_condition:
        try:
            compile_condition(shadow_condition)
        except ConditionError as exc:
            add("shadow_condition", str(exc))
    shadow_deny = (getattr(tool, "shadow_deny_condition", "") or "").strip()
    if shadow_deny:
        try:
            compile_condition(shadow_deny)
        except ConditionError as exc:
            add("shadow_deny_condition", str(exc))
    elif (getattr(tool, "shadow_deny_reason", "") or "").strip():
        add("shadow_deny_reason", "A shadow deny reason needs a shadow deny condition.")
    deny = (getattr(tool, "deny_condition", "") or "").strip()
    if deny:
        try:
            compile_condition(deny)
        except ConditionError as exc:
            add("deny_condition", str(exc))
    if len(tool.summary_template or "") > 2000:
        add("summary_template", "At most 2000 characters.")
    if tool.input_schema and (problem := schema_problem(tool.input_schema)):
        add("input_schema", problem)
    if problem := projection_problem(getattr(tool, "output_projection", None)):
        add("output_projection", problem)
    return errors


def clean_tool_fields(tool) -> None:
    errors = tool_field_errors(tool)
    if errors:
        raise ValidationError(errors)
