"""Accuracy check: ostoolkit's same-core net switch cost against a C harness of the same method.

Builds ``lat_pipe.c`` (gcc), then for each model alternates C and ostoolkit runs on the same
CPU, ROUNDS times, so both see the same minute of this host. The medians of the per-round
figures must agree within ±25 % (the issue's target); with perf installed, ``perf bench sched
pipe`` is shown beside them (its usecs/op is a round trip, so its per-hop figure is half).
Exit status 0 when every model agrees, 1 otherwise. Not a test: timings belong here.

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
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_ref import build_reference, run_reference

from ostoolkit.measure.perfbench import cross_check_perf
from ostoolkit.measure.switch import SwitchConfig, measure_switch

TOLERANCE = 0.25


def main() -> int:
    """Run the comparison and print one row per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternations of C and Python")
    parser.add_argument("--cpu", type=int, default=min(os.sched_getaffinity(0)))
    parser.add_argument("--working-set", type=int, default=0, metavar="KB")
    args = parser.parse_args()
    binary = build_reference(Path(tempfile.mkdtemp(prefix="ostoolkit-ref-")))
    rows, ok = [], True
    for model in ("process", "thread"):
        c_net, c_gross, py_net, py_gross = [], [], [], []
        for _ in range(args.rounds):
            ref = run_reference(binary, model, args.cpu, args.cpu, 20000, 15, args.working_set)
            c_net.append(ref["net_us_median"])
            c_gross.append(ref["gross_us_median"])
            config = SwitchConfig(
                models=(model,),
                placements=("same_core",),
                repeat=15,
                working_set_kb=args.working_set,
                cpus=(args.cpu,),
            )
            result = measure_switch(config).results[0]
            py_net.append(result.median)
            py_gross.append(float(result.extra["gross_us"]))
        perf = cross_check_perf(args.cpu, 50_000, 3)
        perf_gross = next(
            (r.median for r in perf.results if r.id == f"perf.sched_pipe.{model}.same_core"), None
        )
        ratio = statistics.median(py_net) / statistics.median(c_net)
        agrees = abs(ratio - 1) <= TOLERANCE
        ok = ok and agrees
        rows.append(
            [
                model,
                f"{statistics.median(c_net):.2f}",
                f"{statistics.median(py_net):.2f}",
                f"{ratio:.2f}",
                f"{statistics.median(c_gross):.2f}",
                f"{statistics.median(py_gross):.2f}",
                f"{perf_gross:.2f}" if perf_gross is not None else "no perf",
                "ok" if agrees else f"outside ±{TOLERANCE:.0%}",
            ]
        )
    headers = ["model", "C net", "ours net", "ratio", "C gross", "ours gross", "perf gross",
               "verdict"]  # fmt: skip
    print(tabulate(rows, headers=headers, disable_numparse=True))
    print(f"µs per hop; CPU {args.cpu}, working set {args.working_set} KB, {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
