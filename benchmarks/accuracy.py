"""Accuracy check: the C harness against perf, and the steadiness of Python's share.

Over ``--runs`` (10) default runs of measure-switch's same-core pairs, each with the C harness
of our method alternated block by block with ours (``python_share``: ours − C, measured in the
run), then ``perf bench sched pipe`` (and ``-T``) on the same CPU:

- the C harness's gross figure (round trip / 2) against perf's (usecs/op / 2): both are C
  programs of the same method, so they must agree: within ±10 % in 9 of 10 runs;
- the run-to-run spread of ``switch.<model>.python_share``: p90 − p10 of the runs' medians
  within 0.1 µs.

Nothing is subtracted by hand. Exit status 0 when both models meet both targets; without perf
or a compiler, it says so and exits 2. Not a test (it takes a few minutes).

    $ .venv/bin/python benchmarks/accuracy.py        # see docs/method.md, "Accuracy"
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import replace

from tabulate import tabulate

from ostoolkit.measure.perfbench import PERF_LOOPS, PERF_RUNS, cross_check_perf
from ostoolkit.measure.switch import MODELS, SwitchConfig, measure_switch

BAND = 0.10  # C harness against perf, both C: within ±10 %...
NEEDED = 0.9  # ...in 9 of 10 runs
SHARE_SPREAD_US = 0.1  # p90 - p10 of the runs' python_share medians


def one_run(cpu: int) -> dict[str, dict[str, float]]:
    """One default same-core run with the C harness beside, then perf on the same CPU: per
    model the C gross, perf's gross, ours and C net, and Python's share (µs)."""
    config = replace(SwitchConfig.full(), placements=("same_core",), cpus=(cpu,), c_harness=True)
    measured = measure_switch(config)
    perf = cross_check_perf(cpu, PERF_LOOPS[False], PERF_RUNS[False])
    by_id = {r.id: r for r in (*measured.results, *perf.results)}
    found: dict[str, dict[str, float]] = {}
    for model in MODELS:
        c_ref = by_id.get(f"ref.lat_pipe.{model}.same_core")
        share = by_id.get(f"switch.{model}.python_share")
        ours = by_id.get(f"switch.{model}.same_core")
        perf_gross = by_id.get(f"perf.sched_pipe.{model}.same_core")
        if c_ref is None or share is None or ours is None or perf_gross is None:
            missing = [*measured.warnings, *perf.warnings] or ["a figure is missing"]
            raise SystemExit(f"{model}: cannot check: {'; '.join(missing)}")
        found[model] = {
            "c_gross": float(c_ref.extra["gross_us"]),
            "perf_gross": perf_gross.median,
            "c_net": c_ref.median,
            "ours_net": ours.median,
            "share": share.median,
        }
    return found


def main() -> int:
    """Run, then print one row per model and whether it met the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="default runs (each with perf)")
    parser.add_argument("--cpu", type=int, default=min(os.sched_getaffinity(0)))
    args = parser.parse_args()
    runs = []
    for number in range(1, args.runs + 1):
        runs.append(one_run(args.cpu))
        line = "; ".join(
            f"{model}: C {run['c_gross']:.2f} / perf {run['perf_gross']:.2f} µs gross, "
            f"ours {run['ours_net']:.2f} / C {run['c_net']:.2f} µs net, share {run['share']:.2f}"
            for model, run in runs[-1].items()
        )
        print(f"run {number}: {line}", flush=True)
    rows, ok = [], True
    for model in MODELS:
        ratios = [run[model]["c_gross"] / run[model]["perf_gross"] for run in runs]
        shares = sorted(run[model]["share"] for run in runs)
        within = sum(abs(ratio - 1) <= BAND for ratio in ratios)
        deciles = statistics.quantiles(shares, n=10, method="inclusive")
        spread = deciles[8] - deciles[0]
        agrees = within >= NEEDED * len(runs)
        steady = spread <= SHARE_SPREAD_US
        ok = ok and agrees and steady
        rows.append(
            [
                model,
                f"{min(ratios):.2f}–{max(ratios):.2f}",
                f"{within}/{len(runs)}",
                f"{statistics.median(shares):.2f} µs",
                f"{spread:.3f} µs",
                "ok" if agrees and steady else "missed",
            ]
        )
    headers = ["model", "C/perf gross", "within ±10 %", "share (median)", "share p90−p10", ""]
    print(tabulate(rows, headers=headers, disable_numparse=True))
    print(
        f"CPU {args.cpu}; targets: C/perf within ±{BAND:.0%} in {NEEDED:.0%} of runs, "
        f"Python's share steady within {SHARE_SPREAD_US} µs (p90 − p10 of the runs)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
