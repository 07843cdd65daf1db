"""Pinned mutants of the promise (docs/mutation.md): each one deletes or weakens a rule
the floor, four eyes, token binding or the guard rests on, and names the tests that
must kill it. `make mutation-ci` fails if any mutant survives, if a pinned snippet no
longer occurs exactly once in its module (update the pin with the code), or if the
named tests do not pass on the unmutated code.

Unlike `make mutation` (mutmut over whole modules, slow), this is a fixed, fast list
written as source edits rather than mutmut's numbered mutant names, which shift with
every edit of a module. It runs in a copy of the tree, never in the working copy.

Usage: python .ci/mutation_pins.py [PIN_ID ...]   (DATABASE_URL as for the tests)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "mutants", "node_modules", "test-output", "var", "__pycache__", "*.sqlite3"
)

FLOOR_API = "tests/approvals/test_floor_pins.py"
CONFIRM = "tests/approvals/test_confirmations.py"
GATE = "tests/approvals/test_gate.py"
KILLS = "tests/approvals/test_mutation_kills.py"
DOOR = "tests/approvals/test_mutation_kills_door.py"
EXPIRY = "tests/approvals/test_mutation_kills_expiry.py"


@dataclass(frozen=True)
class Pin:
    id: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


PINS = (
    # --- the sensitivity floor (approvals/gate.py) ------------------------------------
    Pin(
        "floor-irreversible",
        "approvals/gate.py",
        '    if tool.irreversible:\n        return "sensitivity floor: irreversible',
        '    if False:\n        return "sensitivity floor: irreversible',
        (f"{FLOOR_API}::test_an_irreversible_action_always_reaches_a_human",),
    ),
    Pin(
        "floor-sensitive-write",
        "approvals/gate.py",
        "if tool.level in WRITE_LEVELS and classes & SENSITIVE_WRITE_CLASSES:",
        "if False:",
        (f"{FLOOR_API}::test_a_write_or_external_effect_on_sensitive_data_reaches_a_human",),
    ),
    Pin(
        "floor-sensitive-read",
        "approvals/gate.py",
        "    if classes & SENSITIVE_READ_CLASSES:",
        "    if False:",
        (f"{FLOOR_API}::test_reading_secrets_or_regulated_data_reaches_a_human",),
    ),
    Pin(
        "floor-pii-rationale",
        "approvals/gate.py",
        'elif "pii" in (tool.data_classes or ()):',
        "elif False:",
        (f"{FLOOR_API}::test_reading_personal_data_is_allowed_and_recorded_as_such",),
    ),
    Pin(
        "floor-skipped-in-decide",
        "approvals/gate.py",
        "        floor = floor_reason(workspace, tool)\n",
        '        floor = ""\n',
        (f"{FLOOR_API}::test_an_irreversible_action_always_reaches_a_human",),
    ),
    Pin(
        "floor-hidden-from-tools-list",
        "approvals/gate.py",
        '    if rule != "always" and floor:\n',
        "    if False:\n",
        (f"{FLOOR_API}::test_reading_secrets_or_regulated_data_reaches_a_human",),
    ),
    Pin(
        "unattended-skips-platform",
        "approvals/gate.py",
        "if needs and key.unattended_mode and not platform:",
        "if needs and key.unattended_mode:",
        (f"{GATE}::test_unattended_key_never_skips_platform_operations",),
    ),
    Pin(
        "unattended-lifts-outbound",
        "approvals/gate.py",
        'if not needs and tool.level == "external" and not workspace.outbound_allowed:',
        "if False:",
        (f"{GATE}::test_unattended_key_does_not_lift_the_outbound_gate",),
    ),
    Pin(
        "tools-list-hides-always",
        "approvals/gate.py",
        '    if own == "always":\n',
        '    if own == "XXalwaysXX":\n',
        (f"{KILLS}::test_the_tools_list_names_each_tools_effective_rule_and_why",),
    ),
    # --- four eyes (approvals/confirmations.py) ------------------------------------------
    Pin(
        "four-eyes-off",
        "approvals/confirmations.py",
        "        elif is_answerable(action, user):\n",
        "        elif False:\n",
        (f"{CONFIRM}::test_key_owner_cannot_approve",),
    ),
    Pin(
        "four-eyes-ignores-custody",
        "approvals/confirmations.py",
        "        answerable |= set(key_custody(action.key))\n",
        "        pass\n",
        (f"{KILLS}::test_who_rotated_the_key_after_the_ask_cannot_approve_its_request",),
    ),
    Pin(
        "four-eyes-same-approver-twice",
        "approvals/confirmations.py",
        "elif ApprovalRecord.objects.filter(confirmation=locked, approver_user=user).exists():",
        "elif False:",
        (f"{CONFIRM}::test_two_approvals_for_irreversible",),
    ),
    Pin(
        "four-eyes-threshold-ignored",
        "approvals/confirmations.py",
        "elif approvals >= locked.approvals_required:",
        "elif approvals >= 1:",
        (f"{CONFIRM}::test_two_approvals_for_irreversible",),
    ),
    Pin(
        "four-eyes-machine-approves",
        "approvals/confirmations.py",
        "    if not actor.is_human:\n",
        "    if False:\n",
        (f"{CONFIRM}::test_services_refuse_machine_actors",),
    ),
    # --- token binding (approvals/confirmations.py, approvals/tokens.py) -----------------
    Pin(
        "token-ignores-params",
        "approvals/confirmations.py",
        "elif confirmation.params_digest != digest or (",
        "elif False and (",
        (f"{CONFIRM}::test_tampered_params_are_a_mismatch",),
    ),
    Pin(
        "token-ignores-tool",
        "approvals/confirmations.py",
        "action.tool_name != tool_name and not (",
        "False and not (",
        (f"{CONFIRM}::test_other_tool_is_a_mismatch",),
    ),
    Pin(
        "token-ignores-requester",
        "approvals/confirmations.py",
        "if confirmation is None or not _is_requester(action, key, accountable_user_id):",
        "if confirmation is None:",
        (f"{CONFIRM}::test_token_of_another_key_behaves_as_invalid",),
    ),
    Pin(
        "token-used-twice",
        "approvals/confirmations.py",
        "        elif status == S.USED:\n",
        "        elif False:\n",
        (f"{CONFIRM}::test_allowed_exactly_once_after_approval",),
    ),
    Pin(
        "token-pending-allowed",
        "approvals/confirmations.py",
        "        elif status == S.PENDING:\n",
        "        elif False:\n",
        (f"{CONFIRM}::test_pending_before_approval",),
    ),
    Pin(
        "token-not-peppered",
        "approvals/tokens.py",
        "        key_secrets.pepper(),\n",
        '        b"",\n',
        (f"{KILLS}::test_a_confirmation_token_depends_on_the_server_pepper",),
    ),
    Pin(
        "token-expired-by-sweep-accepted",
        "approvals/confirmations.py",
        '            error = _token_error("confirmation_expired")\n'
        "        elif confirmation.is_past_expiry(now):",
        "            error = None\n        elif confirmation.is_past_expiry(now):",
        (f"{EXPIRY}::test_an_approved_token_expired_by_the_sweep_is_refused",),
    ),
    # --- the door (approvals/door.py) -----------------------------------------------------
    Pin(
        "door-break-glass-for-anyone",
        "approvals/door.py",
        "if actor.key is not None or actor.user is not None:",
        "if actor.key is not None and actor.user is not None:",
        (f"{DOOR}::test_break_glass_is_refused_to_a_person_and_to_a_key",),
    ),
    Pin(
        "door-system-loosens-unasked",
        "approvals/door.py",
        'if actor.kind == "system" and actor.key is None and actor.user is None:',
        "if False:",
        (f"{DOOR}::test_a_system_actor_without_break_glass_cannot_loosen",),
    ),
    # --- the guard (approvals/guard.py) --------------------------------------------------
    Pin(
        "guard-never-refuses",
        "approvals/guard.py",
        "    if operations and not _covered(target, pk, operations):\n",
        "    if False:\n",
        (f"{KILLS}::test_a_loosening_save_without_a_grant_is_refused",),
    ),
    Pin(
        "guard-grant-covers-any-row",
        "approvals/guard.py",
        "grant.pk in (None, key)",
        "True",
        (f"{KILLS}::test_a_grant_for_one_row_does_not_cover_another",),
    ),
    Pin(
        "guard-grant-covers-any-operation",
        "approvals/guard.py",
        "and names <= grant.operations:",
        ":",
        (f"{KILLS}::test_a_grant_for_one_operation_does_not_cover_another",),
    ),
    Pin(
        "guard-ignores-bulk-update",
        "approvals/guard.py",
        "        check(target, row.pk, before, snapshot(row))\n",
        "        pass\n",
        (f"{KILLS}::test_a_loosening_bulk_update_is_refused",),
    ),
    Pin(
        "guard-bulk-update-ignores-row-grant",
        "approvals/guard.py",
        "check(target, row.pk, before,",
        "check(target, None, before,",
        (f"{KILLS}::test_the_door_grant_for_a_row_lets_its_bulk_update_through",),
    ),
    Pin(
        "guard-ignores-delete",
        "approvals/guard.py",
        "        check(target, instance.pk, snapshot(stored), None)\n",
        "        pass\n",
        (f"{KILLS}::test_deleting_a_protected_row_without_a_grant_is_refused",),
    ),
)


# Plugins none of the pinned tests use: a third of each run's start-up time.
UNUSED_PLUGINS = ("randomly", "schemathesis", "langsmith_plugin", "anyio")


def pytest(tree: Path, tests, *extra) -> subprocess.CompletedProcess:
    skip = [arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")]
    command = [sys.executable, "-m", "pytest", "-q", "-x", *skip, *extra, *tests]
    return subprocess.run(command, cwd=tree, capture_output=True, text=True)  # noqa: S603


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[-1] if lines else f"exit {result.returncode}"


def main(selected: list[str]) -> int:
    pins = [p for p in PINS if not selected or p.id in selected]
    unknown = sorted(set(selected) - {p.id for p in PINS})
    if unknown:
        print(f"unknown pins: {', '.join(unknown)}")
        return 2
    started = time.monotonic()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="warden-mutation-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(ROOT, tree, ignore=IGNORE)
        for pin in pins:
            count = (tree / pin.path).read_text().count(pin.before)
            if count != 1:
                problems.append(f"{pin.id}: snippet occurs {count} times in {pin.path}")
        if problems:
            print("\n".join(problems))
            return 1
        all_tests = sorted({t for p in pins for t in p.tests})
        baseline = pytest(tree, all_tests, "--create-db")
        if baseline.returncode != 0:
            print(baseline.stdout[-3000:], baseline.stderr[-3000:])
            print("the pinned tests fail on the unmutated code")
            return 1
        print(f"baseline: {last_line(baseline)}", flush=True)
        for pin in pins:
            module = tree / pin.path
            original = module.read_text()
            module.write_text(original.replace(pin.before, pin.after))
            try:
                result = pytest(tree, pin.tests, "--reuse-db")
            finally:
                module.write_text(original)
            # 1: tests ran and failed. Anything else (errors in collection, usage) is not
            # a kill: the mutant must be caught by an assertion, not by a crash.
            killed = result.returncode == 1
            print(f"{'killed  ' if killed else 'SURVIVED'} {pin.id}: {last_line(result)}")
            if not killed:
                problems.append(pin.id)
    print(
        f"{len(pins) - len(problems)}/{len(pins)} pinned mutants killed "
        f"in {time.monotonic() - started:.0f} s"
    )
    if problems:
        print("surviving: " + ", ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    sys.exit(main(sys.argv[1:]))
