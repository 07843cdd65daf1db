"""`manage.py policy export|plan|apply|test|versions|rollback` (docs: "Policy as code").

At a shell the actor is the operator (`system:cli`): parts that narrow apply at once;
a document with any governed part is refused whole (nothing is applied) unless
`--break-glass "reason"` applies it as an override. File governed changes through
`POST /api/v1/policy/apply` (a human approves them) instead."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from approvals.policy.document import dump, export_document, load_text, parse_document
from approvals.policy.planning import plan
from approvals.policy.selectors import policy_version_list
from approvals.policy.services import policy_apply, policy_rollback
from approvals.policy.testing import parse_cases, run_cases
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Workspace


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}") from None


def _workspace(slug: str) -> Workspace:
    workspace = Workspace.objects.active().filter(slug=slug).first()
    if workspace is None:
        raise CommandError(f"No workspace {slug!r}.")
    return workspace


def _error(exc: WardenError) -> CommandError:
    lines = [f"{exc.code}: {exc.message}"]
    for problem in (exc.detail or {}).get("errors", [])[:20]:
        lines.append(f"  {problem['path']}: {problem['message']}")
    if exc.detail.get("operations"):
        lines.append(f"  governed operations: {', '.join(exc.detail['operations'])}")
    return CommandError("\n".join(lines))


class Command(BaseCommand):
    help = "Policy as code: export, plan, apply, test, list versions, roll back."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="Print the workspace's policy document.")
        export.add_argument("workspace")
        export.add_argument("--format", choices=("yaml", "json"), default="yaml")
        plan_ = sub.add_parser("plan", help="What applying FILE would change.")
        plan_.add_argument("file")
        plan_.add_argument("--json", action="store_true")
        apply = sub.add_parser("apply", help="Apply FILE (narrowing parts only, or break-glass).")
        apply.add_argument("file")
        apply.add_argument("--reason", required=True)
        apply.add_argument("--break-glass", default="", metavar="REASON")
        test = sub.add_parser("test", help="Run policy tests; exit 1 when a case fails.")
        test.add_argument("file")
        test.add_argument("--proposed", default="", metavar="POLICYFILE")
        test.add_argument("--workspace", default="")
        versions = sub.add_parser("versions", help="List the workspace's policy versions.")
        versions.add_argument("workspace")
        rollback = sub.add_parser("rollback", help="Propose an earlier version again.")
        rollback.add_argument("workspace")
        rollback.add_argument("version", type=int)
        rollback.add_argument("--reason", required=True)
        rollback.add_argument("--break-glass", default="", metavar="REASON")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except WardenError as exc:
            raise _error(exc) from None

    def _export(self, workspace, format, **_):
        self.stdout.write(dump(export_document(_workspace(workspace)), format), ending="")

    def _plan(self, file, json: bool = False, **_):
        document = parse_document(_read(file))
        result = plan(_workspace(document.workspace), document)
        if json:
            self.stdout.write(_json(result.as_dict()))
            return
        self.stdout.write(_plan_text(result))

    def _apply(self, file, reason, break_glass, **_):
        document = parse_document(_read(file))
        result = policy_apply(
            workspace=_workspace(document.workspace),
            document=document,
            actor=Actor.system("cli"),
            reason=reason,
            break_glass=break_glass,
        )
        if not result.applied:
            self.stdout.write("No changes: the workspace already has this policy.")
            return
        for label in result.applied:
            self.stdout.write(f"applied {label}")
        self.stdout.write(f"policy version {result.version.number}")

    def _test(self, file, proposed, workspace, **_):
        source = parse_document(_read(proposed)) if proposed else None
        cases_text = _read(file)
        cases = parse_cases(cases_text)
        slug = workspace or (source.workspace if source else "") or _named(cases_text)
        if not slug:
            raise CommandError("Name the workspace: --workspace, or `workspace:` in FILE.")
        ws = _workspace(slug)
        document = source or parse_document(export_document(ws))
        run = run_cases(ws, document, cases)
        self.stdout.write(run.report())
        if not run.passed:
            raise CommandError(f"{len(run.failures)} policy test(s) failed.", returncode=1)

    def _versions(self, workspace, **_):
        for v in policy_version_list(workspace=_workspace(workspace))[:200]:
            approvers = ", ".join(v.approvers) or "-"
            self.stdout.write(
                f"{v.number}\t{v.created_at:%Y-%m-%d %H:%M}\t{v.source}\t{v.author}\t"
                f"approvers: {approvers}\t{len(v.diff)} change(s)"
            )

    def _rollback(self, workspace, version, reason, break_glass, **_):
        result = policy_rollback(
            workspace=_workspace(workspace),
            number=version,
            actor=Actor.system("cli"),
            reason=reason,
            break_glass=break_glass,
        )
        if not result.applied:
            self.stdout.write("No changes: the workspace already has this policy.")
            return
        self.stdout.write(f"policy version {result.version.number}")


def _named(text: str) -> str:
    data = load_text(text)
    return data.get("workspace", "") if isinstance(data, dict) else ""


def _json(data) -> str:
    return json.dumps(data, indent=2, default=str)


def _plan_text(result) -> str:
    if result.empty:
        return "No changes: the workspace already has this policy."
    lines = []
    for change in result.changes:
        if change.narrows:
            mark = "narrows (applies at once)"
        else:
            mark = f"GOVERNED ({', '.join(change.operations)}; {change.approvals} approval(s))"
        lines.append(f"{change.verb} {change.label}: {mark}")
        if change.verb == "update":
            for name, c in change.diff().items():
                flag = "*" if name in change.governed else " "
                lines.append(
                    f"  {flag} {name}: {json.dumps(c['before'])} -> {json.dumps(c['after'])}"
                )
    governed = len(result.governed)
    lines.append(
        f"{len(result.changes)} object(s) change; {governed} need a second human"
        + (f" ({', '.join(result.operations)})" if governed else "")
    )
    impact = result.impact
    if impact:
        lines.append(
            f"impact on the last {impact['days']} days: {impact['headline']} "
            f"({impact['changed']} of {impact['scanned']} decisions change)"
        )
        lines += [f"  {t['from']} -> {t['to']}: {t['count']}" for t in impact["transitions"]]
    return "\n".join(lines)
