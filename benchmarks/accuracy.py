"""Accuracy check: ostoolkit's same-core net switch cost against a C harness of the same method.

Builds ``lat_pipe.c`` (gcc), then for each model alternates a C run and an ostoolkit run on
the same CPU, ``--runs`` times (10), so both see the same minute of this host, and counts the
runs whose ratio is within the band: ±10 % with the default settings, ±15 % with ``--quick``,
in 9 of 10 runs (issue 14). ``perf bench sched pipe`` is shown beside where installed (its
usecs/op is a round trip). Exit status 0 when both models meet it. Not a test.

    $ .venv/bin/python benchmarks/accuracy.py      # 2-CPU AMD EPYC VM, 2026-11-25
    model    C net    ours net    ratio    C gross    ours gross    perf gross    verdict
    -------  -------  ----------  -------  ---------  ------------  ------------  ---------
    process  2.31     2.46        1.06     3.11       3.58          3.12          ok
    thread   2.22     2.35        1.06     3.15       3.57          3.67          ok
    µs per hop; CPU 0, working set 0 KB, 3 rounds; load average 0.99
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_ref import build_reference, run_reference

from ostoolkit.measure.perfbench import cross_check_perf
from ostoolkit.measure.switch import SwitchConfig, measure_switch

# Bands of the issue: --quick within ±15 %, the default within ±10 %, in 9 of 10 runs.
TOLERANCE = {True: 0.15, False: 0.10}
NEEDED = 0.9


def one_run(
    binary: Path, model: str, cpu: int, quick: bool, working_set: int
) -> tuple[float, float]:
    """One C measurement then one ostoolkit measurement on the same CPU: (C net, ours net)."""
    ref = run_reference(binary, model, cpu, cpu, 20000, 15, working_set)
    preset = SwitchConfig.quick() if quick else SwitchConfig.full()
    config = replace(preset, models=(model,), placements=("same_core",),
                     working_set_kb=working_set, cpus=(cpu,))  # fmt: skip
    result = measure_switch(config).results[0]
    return float(ref["net_us_median"]), result.median


def main() -> int:
    """Build the C harness in a temporary folder (removed after), then compare."""
    with tempfile.TemporaryDirectory(prefix="ostoolkit-ref-") as folder:
        return compare(Path(folder))


def compare(folder: Path) -> int:
    """Alternate C and ostoolkit runs per model; count the runs within the band."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="alternations of C and Python")
    parser.add_argument("--quick", action="store_true", help="ostoolkit's --quick settings")
    parser.add_argument("--cpu", type=int, default=min(os.sched_getaffinity(0)))
    parser.add_argument("--working-set", type=int, default=0, metavar="KB")
    args = parser.parse_args()
    binary = build_reference(folder)
    band = TOLERANCE[args.quick]
    rows, ok = [], True
    for model in ("process", "thread"):
        ratios = []
        for _ in range(args.runs):
            c_net, ours = one_run(binary, model, args.cpu, args.quick, args.working_set)
            ratios.append(ours / c_net)
        within = sum(abs(r - 1) <= band for r in ratios)
        agrees = within >= NEEDED * args.runs
        ok = ok and agrees
        verdict = "ok" if agrees else f"fewer than {NEEDED:.0%} within ±{band:.0%}"
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        rows.append([model, spread, f"{statistics.median(ratios):.2f}", f"{within}/{args.runs}",
                     verdict])  # fmt: skip
    perf = cross_check_perf(args.cpu, 50_000, 3)
    print(tabulate(rows, headers=["model", "ours/C range", "median", f"within ±{band:.0%}",
                                  "verdict"], disable_numparse=True))  # fmt: skip
    print(f"net µs per hop, ours against the C harness; CPU {args.cpu}, working set "
          f"{args.working_set} KB, {'--quick' if args.quick else 'default'} settings; perf: "
          + ", ".join(f"{r.id} {r.median:.2f} µs" for r in perf.results))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
