"""The mutation score per module from mutmut's results (`make mutation` writes it to
test-output/mutation-score.txt; docs/mutation.md records the last run)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

MUTMUT = Path(sys.executable).with_name("mutmut")


def main() -> int:
    out = subprocess.run(  # noqa: S603
        [str(MUTMUT), "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    by_module: dict[str, Counter] = defaultdict(Counter)
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if "__mutmut_" not in name:
            continue
        module = name.split(".x_")[0].split(".xǁ")[0]
        by_module[module][status] += 1
    total = Counter()
    print(f"{'module':28} {'killed':>7} {'survived':>8} {'timeout':>7} {'other':>6}  score")
    for module in sorted(by_module):
        counts = by_module[module]
        total.update(counts)
        print(row(module, counts))
    print(row("total", total))
    return 0


def row(label: str, counts: Counter) -> str:
    killed, survived, timeout = counts["killed"], counts["survived"], counts["timeout"]
    other = sum(counts.values()) - killed - survived - timeout
    decided = killed + survived + timeout
    score = f"{100 * (killed + timeout) / decided:5.1f}%" if decided else "    -"
    return f"{label:28} {killed:7} {survived:8} {timeout:7} {other:6}  {score}"


if __name__ == "__main__":
    sys.exit(main())
