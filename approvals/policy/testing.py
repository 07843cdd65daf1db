"""Policy tests: cases of `given` (a key, a tool, params, the workspace mode) and `expect`
(allowed / requires_confirmation with how many approvals / denied with a code), decided
by the pure gate (approvals.gate.decide, then the argument check, as every ask is) over
unsaved objects built from a policy document: the workspace's current one or a proposed
one. Nothing is written.

    cases:
      - name: small refunds need nobody
        given:
          key: {scopes: [actions:write], allowlist: ["billing.*"], unattended: false}
          tool: billing.refund
          params: {amount: 50, customer_id: c1}
          mode: live            # optional: the workspace's mode for this case
        expect: {outcome: allowed, dry_run: false}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jsonschema import Draft202012Validator

from approvals import arguments, gate
from approvals.models import Tool
from approvals.policy.document import PolicyDocument, _path, load_text
from common.errors import WardenError
from keys.models import MachineKey
from tenants.models import Workspace

OUTCOMES = ("allowed", "requires_confirmation", "denied")
MAX_CASES = 2000

CASES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["cases"],
    "properties": {
        "apiVersion": {"const": "warden.dev/policy-tests/v1"},
        "workspace": {"type": "string"},
        "cases": {
            "type": "array",
            "maxItems": MAX_CASES,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["given", "expect"],
                "properties": {
                    "name": {"type": "string", "maxLength": 300},
                    "given": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["key", "tool"],
                        "properties": {
                            "key": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "scopes": {"type": "array", "items": {"type": "string"}},
                                    "allowlist": {"type": "array", "items": {"type": "string"}},
                                    "unattended": {"type": "boolean"},
                                },
                            },
                            "tool": {"type": "string"},
                            "params": {"type": "object"},
                            "mode": {"enum": ["dry_run", "live"]},
                        },
                    },
                    "expect": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["outcome"],
                        "properties": {
                            "outcome": {"enum": list(OUTCOMES)},
                            "approvals": {"type": "integer", "minimum": 1},
                            "code": {"type": "string"},
                            "dry_run": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(CASES_SCHEMA)


@dataclass(frozen=True)
class CaseResult:
    index: int
    name: str
    expected: dict[str, Any]
    got: dict[str, Any]
    rule: str
    reason: str

    @property
    def passed(self) -> bool:
        return all(self.got.get(k) == v for k, v in self.expected.items())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "expected": self.expected,
            "got": self.got,
            "rule": self.rule,
            "reason": self.reason,
        }

    def report(self) -> str:
        """A readable diff: each expected key against what the gate answered."""
        lines = [f"FAIL  {self.name}"]
        for key in self.expected:
            mark = " " if self.got.get(key) == self.expected[key] else "!"
            lines.append(
                f"  {mark} {key}: expected {json.dumps(self.expected[key])}, "
                f"got {json.dumps(self.got.get(key))}"
            )
        lines.append(f"    decided by rule {self.rule!r}: {self.reason}")
        return "\n".join(lines)


@dataclass(frozen=True)
class PolicyTestRun:
    results: tuple[CaseResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": len(self.results),
            "failed": len(self.failures),
            "cases": [r.as_dict() for r in self.results],
        }

    def report(self) -> str:
        lines = [r.report() if not r.passed else f"ok    {r.name}" for r in self.results]
        lines.append(
            f"{len(self.results) - len(self.failures)} passed, {len(self.failures)} failed"
        )
        return "\n".join(lines)


def parse_cases(source: str | bytes | dict) -> list[dict[str, Any]]:
    data = (
        load_text(source.decode() if isinstance(source, bytes) else source)
        if isinstance(source, str | bytes)
        else source
    )
    problems = [
        {"path": _path(list(e.absolute_path)), "code": str(e.validator), "message": e.message[:300]}
        for e in _VALIDATOR.iter_errors(data)
    ]
    if problems:
        raise WardenError(
            "policy_invalid",
            f"The policy tests are not valid: {problems[0]['path']}: {problems[0]['message']}",
            {"errors": problems[:50]},
        )
    return data["cases"]


def _workspace(document: PolicyDocument, base: Workspace, mode: str | None) -> Workspace:
    """An unsaved copy of the workspace with the document's settings."""
    copy = Workspace(
        **{f.attname: getattr(base, f.attname) for f in Workspace._meta.concrete_fields}
    )
    for name, value in document.settings.items():
        if name == "confirmation_ttl":
            value = timedelta(seconds=int(value))
        setattr(copy, name, value)
    if mode:
        copy.mode = mode
    return copy


def _key(given: dict[str, Any]) -> MachineKey:
    return MachineKey(
        name=given.get("name", "policy-test"),
        scopes=list(given.get("scopes") or []),
        tool_allowlist=list(given.get("allowlist") or []),
        unattended_mode=bool(given.get("unattended", False)),
    )


def run_cases(
    workspace: Workspace, document: PolicyDocument, cases: list[dict[str, Any]]
) -> PolicyTestRun:
    tools = {entry["name"]: Tool(**entry) for entry in document.tools}
    results = []
    for index, case in enumerate(cases):
        given, expected = case["given"], dict(case["expect"])
        ws = _workspace(document, workspace, given.get("mode"))
        tool = tools.get(given["tool"])
        params = given.get("params", {})
        decision = gate.decide(_key(given.get("key") or {}), ws, tool, params, 0)
        decision = arguments.check(decision, tool, params)
        got: dict[str, Any] = {"outcome": decision.outcome}
        if decision.denied:
            got["code"] = decision.code
        if decision.requires_confirmation:
            two = decision.irreversible and ws.require_two_approvals_for_irreversible
            got["approvals"] = 2 if two else 1
        if decision.allowed:
            got["dry_run"] = ws.mode != Workspace.Mode.LIVE
        results.append(
            CaseResult(
                index,
                case.get("name") or f"case {index + 1}",
                expected,
                got,
                decision.rule,
                decision.reason,
            )
        )
    return PolicyTestRun(tuple(results))
