"""Accuracy check: ostoolkit's same-core net switch cost against a C harness of the same method.

Builds ``lat_pipe.c`` (gcc), then for each model alternates a C run and an ostoolkit run on
the same CPU, ``--runs`` times (10), so both see the same minute of this host, and counts the
runs whose ratio is within the band: ±10 % with the default settings, ±15 % with ``--quick``,
in 9 of 10 runs (issue 14). ``perf bench sched pipe`` is shown beside where installed (its
usecs/op is a round trip). Exit status 0 when both models meet it. Not a test.

    $ .venv/bin/python benchmarks/accuracy.py      # 2-CPU Intel Xeon VM, 2026-12-03
    model    ours/C range    median    within ±10%    verdict
    -------  --------------  --------  -------------  --------------------------
    process  1.17-1.22       1.20      0/10           fewer than 90% within ±10%
    thread   1.10-1.15       1.11      1/10           fewer than 90% within ±10%

The ratios are tight but sit above 1 by a constant 0.15-0.2 µs per switch: the Python side's
own path after each switch (docs/method.md, "Accuracy"); in the VM's slow state, where a
switch costs 2.3 µs, the same gap made 1.06 and 1.07.
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
    config = replace(
        preset, models=(model,), placements=("same_core",), working_set_kb=working_set, cpus=(cpu,)
    )
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
        rows.append(
            [model, spread, f"{statistics.median(ratios):.2f}", f"{within}/{args.runs}", verdict]
        )
    perf = cross_check_perf(args.cpu, 50_000, 3)
    print(
        tabulate(
            rows,
            headers=["model", "ours/C range", "median", f"within ±{band:.0%}", "verdict"],
            disable_numparse=True,
        )
    )
    print(
        f"net µs per hop, ours against the C harness; CPU {args.cpu}, working set "
        f"{args.working_set} KB, {'--quick' if args.quick else 'default'} settings; perf: "
        + ", ".join(f"{r.id} {r.median:.2f} µs" for r in perf.results)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
