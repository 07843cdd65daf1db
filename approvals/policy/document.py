"""The policy document: one file per workspace holding its catalog and safety settings.

    apiVersion: warden.dev/policy/v1
    workspace: <slug>
    settings: {<policy-bearing Workspace field>: value, ...}
    automation: {<WorkspaceAutomationSettings field>: value, ...}
    tools: [{name: ..., <every editable policy-bearing Tool field>: value}, ...]

The JSON Schema is generated from the models: every concrete field of each model the
document covers (the tool, the workspace, its automation and notification settings) is
either a property of the document or listed in `NOT_IN_DOCUMENT` with the reason, and
generation fails on any other, so a field added to a model later cannot be silently
left out of the document. The automation settings belong to `notifications`, a layer
above: their model is the one registered with the guard for that target (never
imported here), so the schema is generated once the apps are ready.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from django.db import models
from django.utils.dateparse import parse_datetime
from jsonschema import Draft202012Validator

from approvals import effective, guard, projection
from approvals.models import Tool
from common.errors import WardenError
from tenants.models import Workspace

API_VERSION = "warden.dev/policy/v1"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema.json"
MAX_TOOLS = 5000

# The tool fields a document holds, in the order Tool.snapshot() gives them.
TOOL_FIELDS: tuple[str, ...] = tuple(Tool().snapshot())
# The workspace settings a document holds (model field names; the duration in seconds).
SETTINGS_FIELDS: tuple[str, ...] = (
    "writes_enabled",
    "mode",
    "live_after",
    "outbound_allowed",
    "confirmation_ttl",
    "require_two_approvals_for_irreversible",
    "sensitivity_floor",
    "plan_rank",
    "audit_retention_days",
    "plain_copy_retention_days",
)
# The workspace's automation and notification settings a document holds (field names of
# notifications.WorkspaceAutomationSettings, named here, never imported: a layer above).
AUTOMATION_FIELDS: tuple[str, ...] = (
    "webhook_host_allowlist",
    "anomaly_auto_suspend",
    "email_notifications",
    "approval_remind_after_minutes",
    "approval_escalate_after_minutes",
    "approval_escalate_to",
    "approval_digest_minutes",
    "slack_enabled",
    "slack_team_id",
    "slack_channel",
    "slack_dm_approvers",
    "unreported_result_window_minutes",
)

# Fields of the covered models a document does not hold, each with the reason. Generating
# the schema fails for a field that is neither here nor in the document.
_BOOKKEEPING = "bookkeeping: decides nothing"
NOT_IN_DOCUMENT: dict[str, dict[str, str]] = {
    effective.TOOL: {
        "id": "identity: a tool is named by `name` in the document",
        "workspace": "the document's `workspace`; a tool never moves between workspaces",
        "connector": "bound once by a connector import (DESIGN.md 13); apply keeps it",
        "upstream_name": "bound once by a connector import (DESIGN.md 13); apply keeps it",
        "upstream_digest": "the reviewed upstream definition, set by connector imports only",
        "output_schema": "the reviewed upstream definition, set by connector imports only",
        "upstream_annotations": "the reviewed upstream definition, set by connector imports",
        "created_at": _BOOKKEEPING,
        "updated_at": _BOOKKEEPING,
    },
    effective.WORKSPACE: {
        "id": "identity: the document names its workspace by `workspace` (the slug)",
        "slug": "the document's `workspace` (its identity); renaming is not a policy change",
        "name": "a label for people; no rule, condition or summary reads it",
        "deleted_at": "deleting a workspace is its own governed operation, never a document",
        "created_at": _BOOKKEEPING,
        "policy_version": "the catalog counter, bumped by every change; recorded, not set",
    },
    effective.AUTOMATION: {
        "workspace": "the document's `workspace` (the row's identity)",
        "slack_bot_token_encrypted": "a secret (write-only, never exported: DESIGN.md 7); "
        "set it in the admin; apply keeps it",
        "updated_at": _BOOKKEEPING,
    },
}
# The document's top-level key of each object target that is a section of settings.
SECTIONS = {effective.WORKSPACE: "settings", effective.AUTOMATION: "automation"}


def automation_model() -> type[models.Model]:
    """The automation settings model (notifications), as registered with the guard."""
    model = guard.registered_model(effective.AUTOMATION)
    if model is None:  # pragma: no cover - notifications is part of every deployment
        raise LookupError("no automation settings model is registered (apps not ready?)")
    return model


def model_of(target: str) -> type[models.Model]:
    if target == effective.AUTOMATION:
        return automation_model()
    return {effective.TOOL: Tool, effective.WORKSPACE: Workspace}[target]


def document_fields(target: str) -> tuple[str, ...]:
    """The fields of `target` the document holds, in the document's order."""
    return DOCUMENT_FIELDS[target]


DOCUMENT_FIELDS = {
    effective.TOOL: TOOL_FIELDS,
    effective.WORKSPACE: SETTINGS_FIELDS,
    effective.AUTOMATION: AUTOMATION_FIELDS,
}
COVERED = tuple(DOCUMENT_FIELDS)


# --- the JSON Schema, generated -------------------------------------------------------------


def _field_schema(model: type[models.Model], name: str) -> dict[str, Any]:
    f = model._meta.get_field(name)
    if name == "data_classes":
        return {
            "type": "array",
            "items": {"enum": list(Tool.DATA_CLASSES)},
            "uniqueItems": True,
        }
    if name == "secret_params":
        return {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    if name == "output_projection":
        return {
            "type": ["array", "null"],
            "items": {"type": "string", "pattern": projection.PATH_PATTERN},
            "maxItems": projection.MAX_PATHS,
            "uniqueItems": True,
            "description": str(f.help_text),
        }
    if isinstance(f, models.JSONField):
        if f.default is list:  # host lists, e-mail addresses
            return {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
        return {"type": "object"}
    if isinstance(f, models.BooleanField):
        schema: dict[str, Any] = {"type": "boolean"}
    elif isinstance(f, models.DurationField):
        schema = {"type": "integer", "minimum": 1, "description": "seconds"}
    elif isinstance(f, models.DateTimeField):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(f, models.IntegerField):
        schema = {"type": "integer", "minimum": 0}
        for validator in f._validators:  # declared ones (not the backend's range)
            if getattr(validator, "code", "") == "max_value":
                schema["maximum"] = validator.limit_value
    elif isinstance(f, models.CharField | models.TextField):
        schema = {"type": "string"}
        if f.choices:
            values = [value for value, _ in f.choices]
            schema = {"enum": [*values, ""] if f.blank and "" not in values else values}
        elif f.max_length:
            schema["maxLength"] = f.max_length
    else:  # pragma: no cover - a new kind of field must be described here first
        raise TypeError(f"no JSON Schema for {model.__name__}.{name}")
    if f.null and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if f.help_text:
        schema["description"] = str(f.help_text)
    return schema


def model_fields(target: str) -> list[str]:
    """Every concrete field of the target's model (classified or inert alike)."""
    return [f.name for f in model_of(target)._meta.concrete_fields]


def _object_schema(target: str) -> dict[str, Any]:
    model = model_of(target)
    held = document_fields(target)
    missing = [
        name
        for name in model_fields(target)
        if name not in held and name not in NOT_IN_DOCUMENT[target]
    ]
    if missing:
        raise LookupError(f"policy-bearing {target} fields missing from the document: {missing}")
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: _field_schema(model, name) for name in held},
    }


def generate_schema() -> dict[str, Any]:
    tool = _object_schema(effective.TOOL)
    tool["required"] = ["name"]
    tool["properties"]["name"] = {"type": "string", "minLength": 1, "maxLength": 200}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://warden.dev/policy/v1/schema.json",
        "title": "Warden policy document",
        "description": "A workspace's tool catalog and safety settings (docs: Policy as "
        "code). A tool missing from `tools` is deleted on apply; a setting missing from "
        "`settings` or `automation` is left as it is; a tool field missing takes the "
        "model default.",
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "workspace", "tools"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "workspace": {"type": "string", "minLength": 1, "maxLength": 63},
            "settings": _object_schema(effective.WORKSPACE),
            "automation": _object_schema(effective.AUTOMATION),
            "tools": {"type": "array", "maxItems": MAX_TOOLS, "items": tool},
        },
    }


def schema_text() -> str:
    return json.dumps(generate_schema(), indent=2, sort_keys=True) + "\n"


def published_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def _validator() -> Draft202012Validator:
    """Built on first use: the automation model is registered once the apps are ready."""
    return Draft202012Validator(generate_schema())


# --- values as the document holds them ----------------------------------------------------


def _canonical(value: Any) -> Any:
    """JSON values with object keys sorted (PostgreSQL's jsonb keeps no key order)."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str):
        return str(value)  # choices (TextChoices members) as their plain value
    return value


def _instant(value: Any) -> str | None:
    if value in (None, ""):
        return None
    when = value if isinstance(value, datetime) else parse_datetime(str(value))
    if when is None:
        raise ValueError(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def tool_entry(tool: Tool) -> dict[str, Any]:
    snap = tool.snapshot()
    return {name: _canonical(snap[name]) for name in TOOL_FIELDS}


def settings_entry(workspace: Workspace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in SETTINGS_FIELDS:
        value = getattr(workspace, name)
        if isinstance(value, timedelta):
            value = int(value.total_seconds())
        elif isinstance(value, datetime):
            value = _instant(value)
        values[name] = _canonical(value)
    return values


def automation_row(workspace: Workspace) -> models.Model:
    """The workspace's automation settings row (unsaved, with the defaults, when none)."""
    model = automation_model()
    row = model._default_manager.filter(workspace=workspace).first()
    return row if row is not None else model(workspace=workspace)


def automation_entry(row: models.Model) -> dict[str, Any]:
    return {
        name: _canonical(effective.json_value(getattr(row, name))) for name in AUTOMATION_FIELDS
    }


def automation_values(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The document's view of the row's own snapshot() (the guard's, the audit's)."""
    return {name: _canonical(snapshot.get(name)) for name in AUTOMATION_FIELDS}


def export_document(workspace: Workspace) -> dict[str, Any]:
    """The workspace's policy as a document (tools sorted by name)."""
    tools = Tool.objects.filter(workspace=workspace).order_by("name")
    return {
        "apiVersion": API_VERSION,
        "workspace": workspace.slug,
        "settings": settings_entry(workspace),
        "automation": automation_entry(automation_row(workspace)),
        "tools": [tool_entry(t) for t in tools],
    }


# libyaml's safe loader and dumper where present (the same safe constructors as
# yaml.safe_load / safe_dump, in C: about 10x faster on a 1,000-tool policy).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(document: dict[str, Any], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(document, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)


# --- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyDocument:
    workspace: str
    settings: dict[str, Any]  # only the settings the document names
    tools: tuple[dict[str, Any], ...] = field(default_factory=tuple)  # full, sorted by name
    # Each tool's index in the file as written, for error paths ($.tools[i]).
    positions: dict[str, int] = field(default_factory=dict, compare=False)
    automation: dict[str, Any] = field(default_factory=dict)  # only the ones named

    def as_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "workspace": self.workspace,
            "settings": dict(self.settings),
            "automation": dict(self.automation),
            "tools": [dict(t) for t in self.tools],
        }


def _path(parts) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _problems(data: Any) -> list[dict[str, str]]:
    problems = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.path))):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - allowed):
                problems.append(
                    {
                        "path": _path([*path, extra]),
                        "code": "unknown_field",
                        "message": f"Unknown field {extra!r}.",
                    }
                )
            continue
        problems.append(
            {"path": _path(path), "code": str(error.validator), "message": error.message[:300]}
        )
    return problems


def invalid(problems: list[dict[str, str]]) -> WardenError:
    first = problems[0]
    return WardenError(
        "policy_invalid",
        f"The policy document is not valid: {first['path']}: {first['message']}",
        {"errors": problems[:50]},
    )


def load_text(text: str) -> Any:
    """YAML (JSON is YAML too), with the safe loader only."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # not JSON after all: YAML's flow style, or an error YAML names
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - the safe loader only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise WardenError(
            "policy_invalid",
            f"The policy document is not valid YAML or JSON{where}.",
            {"errors": [{"path": "$", "code": "parse_error", "message": f"unreadable{where}"}]},
        ) from None


def parse_document(source: str | bytes | dict[str, Any]) -> PolicyDocument:
    """Validate against the published schema; raise `policy_invalid` listing each problem
    with its JSON path (an unknown field is named with its own path)."""
    data = (
        load_text(source.decode() if isinstance(source, bytes) else source)
        if isinstance(source, str | bytes)
        else source
    )
    problems = _problems(data)
    if problems:
        raise invalid(problems)
    tools = []
    seen: dict[str, int] = {}
    defaults = Tool().snapshot()
    for index, entry in enumerate(data["tools"]):
        if entry["name"] in seen:
            problems.append(
                {
                    "path": _path(["tools", index, "name"]),
                    "code": "duplicate",
                    "message": f"Tool {entry['name']!r} is listed twice.",
                }
            )
        seen[entry["name"]] = index
        tools.append({name: _canonical(entry.get(name, defaults[name])) for name in TOOL_FIELDS})
    settings = dict(data.get("settings") or {})
    if "live_after" in settings:
        try:
            settings["live_after"] = _instant(settings["live_after"])
        except ValueError:
            problems.append(
                {
                    "path": "$.settings.live_after",
                    "code": "format",
                    "message": "An ISO 8601 date and time.",
                }
            )
        if settings["live_after"] is None:
            problems.append(
                {"path": "$.settings.live_after", "code": "type", "message": "Required value."}
            )
    if problems:
        raise invalid(problems)
    tools.sort(key=lambda t: t["name"])
    return PolicyDocument(
        workspace=data["workspace"],
        settings=settings,
        tools=tuple(tools),
        positions=seen,
        automation={k: _canonical(v) for k, v in (data.get("automation") or {}).items()},
    )
