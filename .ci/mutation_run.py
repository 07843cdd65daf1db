"""`make mutation`: mutmut 3 over the modules the promise rests on, one module at a time,
each with the narrowest test selection that covers it (docs/mutation.md).

For each module it copies the tree to var/mutation/<name>/ (never the working copy),
narrows `[tool.mutmut]` there to that module and its tests, and runs
`mutmut run --max-children 1` on SQLite. A stopped run resumes where it stopped
(`MUTATION_FRESH=1` starts over). Then it prints mutmut's verdict per mutant and the
score per module (test-output/mutation-score.txt through the Makefile).

Usage: python .ci/mutation_run.py [MODULE ...] [-- MUTANT_GLOB ...]
       MODULE is a key of MODULES (gate, tokens, guard, ...); none means all.

Limits of mutmut's fork mode, read before trusting a "survived": see docs/mutation.md
(code run at import or AppConfig.ready is not re-run per mutant)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).with_name("mutmut")
WORK = ROOT / "var" / "mutation"
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "mutants", "node_modules", "test-output", "var", "__pycache__", "*.sqlite3"
)

A = "tests/approvals/"
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "tokens": ("approvals/tokens.py", (f"{A}test_confirmations.py", f"{A}test_mutation_kills.py")),
    "gate": (
        "approvals/gate.py",
        (
            f"{A}test_gate.py",
            f"{A}test_floor_pins.py",
            f"{A}test_tools_api.py",
            f"{A}test_mutation_kills.py",
        ),
    ),
    # decide and its helpers against the pure tests only (seconds per mutant, not minutes)
    "decide": ("approvals/gate.py", (f"{A}test_gate.py", f"{A}test_mutation_kills_gate.py")),
    "guard": ("approvals/guard.py", (f"{A}test_mutation_kills.py", f"{A}test_governance.py")),
    "confirmations": (
        "approvals/confirmations.py",
        (
            f"{A}test_confirmations.py",
            f"{A}test_subject_custody.py",
            f"{A}test_expiry.py",
            f"{A}test_mutation_kills_expiry.py",
            f"{A}test_mutation_kills.py",
            # a human's own re-call of a platform request (confirmations._is_requester)
            f"{A}test_governance.py::test_going_live_needs_a_second_owner",
            f"{A}test_governance.py::test_another_human_cannot_use_the_requesters_token",
        ),
    ),
    "door": (
        "approvals/door.py",
        (
            f"{A}test_mutation_kills_door.py",
            f"{A}test_governance.py",
            f"{A}test_subject_custody.py",
            f"{A}test_mutation_kills.py",
        ),
    ),
    "conditions": (
        "approvals/conditions.py",
        (f"{A}test_conditions_and_summary.py", f"{A}test_mutation_kills_conditions.py"),
    ),
    "effective": (
        "approvals/effective.py",
        (
            f"{A}test_mutation_kills_effective.py",
            f"{A}test_closed_world.py",
            f"{A}test_governance.py",
        ),
    ),
    "governance": (
        "approvals/governance.py",
        (f"{A}test_governance.py", f"{A}test_closed_world.py"),
    ),
    "chain": (
        "audit/chain.py",
        (
            "tests/audit/test_chain.py",
            "tests/audit/test_queue_forgery.py",
            "tests/audit/test_mutation_kills_chain.py",
        ),
    ),
    "verify": (
        "audit/verify.py",
        (
            "tests/audit/test_verify.py",
            "tests/audit/test_tamper_evidence.py",
            "tests/audit/test_queue_forgery.py",  # the group-commit queue's findings
            "tests/audit/test_retention.py",  # walks that start at a retention checkpoint
            "tests/audit/test_mutation_kills_verify.py",
        ),
    ),
}


def narrowed(pyproject: str, module: str, tests: tuple[str, ...]) -> str:
    listed = ", ".join(f'"{t}"' for t in tests)
    pyproject = re.sub(
        r"only_mutate = \[.*?\]", f'only_mutate = ["{module}"]', pyproject, flags=re.S
    )
    # the docs snippets some tests run (tests/docs.py reads README.md and docs/)
    pyproject = pyproject.replace("also_copy = [", 'also_copy = ["README.md", "docs/", ', 1)
    return re.sub(
        r"pytest_add_cli_args_test_selection = \[.*?\]",
        f"pytest_add_cli_args_test_selection = [{listed}]",
        pyproject,
        flags=re.S,
    )


def run(name: str, globs: list[str]) -> Counter:
    module, tests = MODULES[name]
    tree = WORK / name
    if os.environ.get("MUTATION_FRESH"):
        shutil.rmtree(tree, ignore_errors=True)
    mutants = tree / "mutants"
    kept = tree.with_name(f"{name}.mutants")
    if mutants.exists():  # keep mutmut's results across the refresh of the copy
        shutil.move(mutants, kept)
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(ROOT, tree, ignore=IGNORE)
    if kept.exists():
        shutil.move(kept, mutants)
    config = tree / "pyproject.toml"
    config.write_text(narrowed(config.read_text(), module, tests))
    env = {**os.environ, "DATABASE_URL": "", "REDIS_URL": ""}
    print(f"== {name}: {module} against {' '.join(tests)}", flush=True)
    with (tree / "mutmut.log").open("w") as log:  # mutmut's own progress and errors
        subprocess.run(  # noqa: S603
            [str(MUTMUT), "run", "--max-children", "1", *globs],
            cwd=tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    out = subprocess.run(  # noqa: S603
        [str(MUTMUT), "results", "--all", "true"], cwd=tree, capture_output=True, text=True
    ).stdout
    counts: Counter = Counter()
    for line in out.splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if "__mutmut_" in mutant:
            counts[status] += 1
            if status not in ("killed", "not checked"):
                print(f"   {mutant}: {status}")
    return counts


def main(argv: list[str]) -> int:
    names, globs = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        print(f"unknown modules: {', '.join(unknown)} (known: {', '.join(MODULES)})")
        return 2
    results = {name: run(name, globs) for name in names or MODULES}
    print(f"{'module':16} {'killed':>7} {'survived':>8} {'timeout':>7} {'not run':>7}  score")
    for name, c in results.items():
        decided = c["killed"] + c["survived"] + c["timeout"]
        score = f"{100 * (c['killed'] + c['timeout']) / decided:5.1f}%" if decided else "    -"
        other = sum(c.values()) - decided
        print(f"{name:16} {c['killed']:7} {c['survived']:8} {c['timeout']:7} {other:7}  {score}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
