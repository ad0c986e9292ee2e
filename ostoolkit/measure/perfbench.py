"""--cross-check: ``perf bench sched pipe`` and the C harness (measure/cref.py) on our CPU.

Both run pinned to the CPU of our same-core run. perf's "usecs/op" is one round trip of the
token (two hops), so its per-hop figure is half of it: the same definition as our *gross*
figure. The C harness measures exactly our method, so its net figure is set beside our net.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ostoolkit.children import pinned_main, run_program
from ostoolkit.measure.cref import MODELS, cross_check_c
from ostoolkit.report import Measurement, Result, make_result
from ostoolkit.scratch import run_tempdir

USECS_PER_OP = re.compile(r"([\d.]+)\s+usecs/op")
PERF_TIMEOUT_S = 60.0
# By --quick (True) or not: perf's loops per run and runs per model; the C harness's round
# trips per repetition and repetitions per model (about 0.1 s and 1 s a model at 2 µs a trip).
PERF_LOOPS = {True: 20_000, False: 100_000}
PERF_RUNS = {True: 3, False: 5}
C_ITERATIONS = {True: 5_000, False: 20_000}
C_REPEAT = {True: 5, False: 15}


def parse_usecs_per_op(output: str) -> float | None:
    """Extract perf's usecs/op (one round trip) from its report."""
    match = USECS_PER_OP.search(output)
    return float(match.group(1)) if match else None


def cross_check_perf(cpu: int, loops: int, runs: int) -> Measurement:
    """Run perf's pipe benchmark for processes and for threads (-T), ``runs`` times each."""
    perf = shutil.which("perf")
    if perf is None:
        return Measurement(
            (), warnings=("--cross-check: perf is not installed; skipped (Debian: linux-perf)",)
        )
    results: list[Result] = []
    for model, flags in (("process", []), ("thread", ["-T"])):
        per_hop: list[float] = []
        for _ in range(runs):
            argv = [perf, "bench", "sched", "pipe", "-l", str(loops), *flags]
            try:
                with pinned_main(cpu):  # perf's two tasks inherit this single-CPU mask
                    done = run_program(argv, PERF_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                return Measurement((), warnings=("--cross-check: perf timed out; skipped",))
            usecs = parse_usecs_per_op(done.stdout)
            if done.returncode != 0 or usecs is None:
                reason = (done.stderr.strip().splitlines() or ["no usecs/op in its output"])[-1]
                return Measurement((), warnings=(f"--cross-check: perf failed: {reason}",))
            per_hop.append(usecs / 2)
        results.append(
            make_result(
                f"perf.sched_pipe.{model}.same_core",
                f"perf bench sched pipe{' -T' if flags else ''}, same core (gross)",
                "us",
                per_hop,
                extra={"cpus": [cpu, cpu], "loops": loops},
            )
        )
    return Measurement(tuple(results))


def add_perf_findings(measurement: Measurement) -> Measurement:
    """Add a finding per model that sets perf's gross figure, and the C harness's net figure,
    beside ostoolkit's (each where both figures are there)."""
    by_id = {r.id: r for r in measurement.results}
    findings = []
    for model in MODELS:
        ours = by_id.get(f"switch.{model}.same_core")
        if ours is None:
            continue
        perf = by_id.get(f"perf.sched_pipe.{model}.same_core")
        if perf is not None:
            gross = float(ours.extra["gross_us"])
            findings.append(
                f"{model}, same core: perf bench sched pipe {perf.median:.2f} µs per hop "
                f"(gross), ostoolkit {gross:.2f} µs gross, {ours.median:.2f} µs net; the gross "
                "gap is Python's own cost per hop, which net subtracts"
            )
        c_ref = by_id.get(f"ref.lat_pipe.{model}.same_core")
        if c_ref is not None and c_ref.median > 0:
            findings.append(
                f"{model}, same core: the C harness (same method, same CPU) {c_ref.median:.2f} "
                f"µs net, ostoolkit {ours.median:.2f} µs ({ours.median / c_ref.median:.2f}×); "
                "the difference is the Python path's own cost after each switch: its deeper "
                "calls and larger footprint find the branch predictors, TLB and caches cold, "
                "a cost a Python program pays and a C program does not"
            )
    return measurement + Measurement((), tuple(findings))


def cross_check(measurement: Measurement, quick: bool) -> Measurement:
    """Run perf and the C harness on the CPU of the same-core figures (else the first allowed)
    and return ``measurement`` with their figures, warnings and findings added."""
    cpu = next(
        (r.extra["cpus"][0] for r in measurement.results if r.id.endswith("same_core")),
        min(os.sched_getaffinity(0)),
    )
    perf = cross_check_perf(cpu, PERF_LOOPS[quick], PERF_RUNS[quick])
    with run_tempdir() as scratch:  # the harness builds in a folder of its own in there
        harness = cross_check_c(cpu, C_ITERATIONS[quick], C_REPEAT[quick], scratch)
    return add_perf_findings(measurement + perf + harness)
