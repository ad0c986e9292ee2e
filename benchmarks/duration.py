"""Wall-time check: ``measure-switch --quick`` within 4 s, the default within 25 s, the
other switch measurements within their budgets (rings and the working-set sweep 30 s each,
``--layer python`` 5 s quick and 15 s, ``switch-rate`` 5 s), and ``report``: its three runs
of every section (``--quick``) within 30 s, its five (the default) within 90 s. ``--report``
times only the two reports, once each.

fork at scale (issue 24): ``fork-tree --depth 9`` (1,022 processes) within 2 s in 4 of 5
runs, ``--depth 11`` (4,094) within 8 s once; each run's phases (data.phases_s) and floor
(data.floor) are printed below the verdicts. ``--fork-tree`` times only these.

Runs the installed entry point as a user would, a few times each, and prints the wall times
(fork-tree's with the load average before each run). Exit status 0 when every command met
its budget.
Not a test: timings belong here.

    $ .venv/bin/python benchmarks/duration.py
    command                             budget s    runs s            verdict
    ----------------------------------  ----------  ----------------  ---------
    ostoolkit measure-switch --quick    4           2.6               ok
    ostoolkit measure-switch            25          17.5              ok
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ENTRY = Path(sys.executable).with_name("ostoolkit")
BUDGETS = (
    # the default runs the C harness's blocks beside ours, perf bench, and (where permitted)
    # the kernel's counts: about 18 s here (issue 24); --quick counts only, about 2.5 s
    (["measure-switch", "--quick"], 4.0),
    (["measure-switch"], 25.0),
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
# fork at scale: (arguments, budget s, runs, how many runs must meet the budget). A shared
# 2-CPU VM has moments when another job takes a CPU: one run in five may miss.
FORK_TREE_BUDGETS = (
    (["fork-tree", "--depth", "9", "--breadth", "2", "--max-procs", "1100"], 2.0, 5, 4),
    (["fork-tree", "--depth", "11", "--breadth", "2", "--max-procs", "4096"], 8.0, 1, 1),
)


def timed(args: list[str]) -> float:
    """Run ostoolkit with ``args`` once; its wall time in seconds."""
    start = time.monotonic()
    subprocess.run([ENTRY, *args], check=True, capture_output=True, timeout=300)
    return time.monotonic() - start


def load() -> str:
    """The host's load before a run: the tasks running now besides this one (/proc/loadavg's
    fourth field, proc(5)), and the 1-minute average, which a big tree itself raises."""
    running = Path("/proc/loadavg").read_text().split()[3].partition("/")[0]
    return f"{int(running) - 1} now, {os.getloadavg()[0]:.1f} avg"


def fork_tree_rows(rows: list[list[str]]) -> bool:
    """Time the fork-tree cases; a verdict row per case into ``rows``, a row per run printed
    (wall, load, phases, floor). Whether every case met its budget often enough."""
    ok = True
    runs_table = []
    with tempfile.TemporaryDirectory(prefix="ostoolkit-duration-") as scratch:
        out = Path(scratch) / "tree.json"
        for args, budget, runs, needed in FORK_TREE_BUDGETS:
            times = []
            for run in range(1, runs + 1):
                before = load()
                times.append(timed([*args, "--json", str(out)]))
                data = json.loads(out.read_text())["data"]
                phases = ", ".join(f"{k} {v:.3f}" for k, v in data["phases_s"].items())
                floor = data["floor"]
                runs_table.append(
                    [
                        f"--depth {args[2]} #{run}",
                        f"{times[-1]:.2f}",
                        before,
                        phases,
                        f"{floor['floor_s']:.3f} ({floor['fork_us'] / 1000:.2f} ms × "
                        f"{floor['processes']} / {floor['cpus']})",
                    ]
                )
            met = sum(t <= budget for t in times)
            ok = ok and met >= needed
            rows.append(
                [
                    "ostoolkit " + " ".join(args),
                    f"{budget:g} ({needed} of {runs})",
                    ", ".join(f"{t:.2f}" for t in times),
                    "ok" if met >= needed else "over budget",
                ]
            )
    headers = ["fork-tree run", "wall s", "load", "phases s", "floor s"]
    print(tabulate(runs_table, headers=headers), end="\n\n")
    return ok


def main() -> int:
    """Time each command RUNS times against its budget (fork-tree: as FORK_TREE_BUDGETS says)."""
    rows: list[list[str]] = []
    ok = True
    if "--fork-tree" in sys.argv:
        budgets: tuple[tuple[list[str], float], ...] = ()
    elif "--report" in sys.argv:
        budgets = REPORT_BUDGETS
    else:
        budgets = BUDGETS + REPORT_BUDGETS
    for args, budget in budgets:
        times = [timed(args) for _ in range(RUNS)]
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
    if "--report" not in sys.argv:
        ok = fork_tree_rows(rows) and ok
    print(tabulate(rows, headers=["command", "budget s", "runs s", "verdict"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
