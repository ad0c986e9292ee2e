"""Wall-time check: ``measure-switch --quick`` within 3 s, the default within 15 s, the
other switch measurements within their budgets (rings and the working-set sweep 30 s each,
``--layer python`` 5 s quick and 15 s, ``switch-rate`` 5 s), and ``report``: its three runs
of every section (``--quick``) within 30 s, its five (the default) within 90 s. ``--report``
times only the two reports, once each.

Runs the installed entry point as a user would, a few times each, and prints the wall times.
Exit status 0 when every run met its budget. Not a test: timings belong here.

    $ .venv/bin/python benchmarks/duration.py
    command                             budget s    runs s            verdict
    ----------------------------------  ----------  ----------------  ---------
    ostoolkit measure-switch --quick    3           1.5, 1.4, 1.4     ok
    ostoolkit measure-switch            15          7.6, 7.5, 7.7     ok
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

ENTRY = Path(sys.executable).with_name("ostoolkit")
BUDGETS = (
    (["measure-switch", "--quick"], 3.0),
    (["measure-switch"], 15.0),
    (["measure-switch", "--layer", "python", "--quick"], 5.0),
    (["measure-switch", "--layer", "python"], 15.0),
    (["measure-switch", "--tasks", "2,8,32,128,512"], 30.0),
    (["measure-switch", "--sizes", "0,4,16,64,256,1024,4096"], 30.0),
    (["switch-rate"], 5.0),
)
REPORT_BUDGETS = (
    (["report", "--quick"], 30.0),
    (["report"], 90.0),
)
RUNS = 3 if "--once" not in sys.argv and "--report" not in sys.argv else 1


def main() -> int:
    """Time each command RUNS times against its budget."""
    rows, ok = [], True
    budgets = REPORT_BUDGETS if "--report" in sys.argv else BUDGETS + REPORT_BUDGETS
    for args, budget in budgets:
        times = []
        for _ in range(RUNS):
            start = time.monotonic()
            subprocess.run([ENTRY, *args], check=True, capture_output=True, timeout=300)
            times.append(time.monotonic() - start)
        within = max(times) <= budget
        ok = ok and within
        rows.append(
            [
                "ostoolkit " + " ".join(args),
                f"{budget:g}",
                ", ".join(f"{t:.1f}" for t in times),
                "ok" if within else "over budget",
            ]
        )
    print(tabulate(rows, headers=["command", "budget s", "runs s", "verdict"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
