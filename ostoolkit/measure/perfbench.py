"""--cross-check's reference tool: ``perf bench sched pipe``, pinned to our same-core CPU.

perf's "usecs/op" is one round trip of the token (two hops), so its per-hop figure is half of
it: the same definition as our *gross* figure. (The C harness of our own method runs inside
measure-switch, its blocks alternated with ours: measure/cref.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ostoolkit.children import pinned_main, run_program
from ostoolkit.measure.cref import MODELS
from ostoolkit.report import Measurement, Result, make_result

USECS_PER_OP = re.compile(r"([\d.]+)\s+usecs/op")
PERF_TIMEOUT_S = 60.0
# By --quick (True) or not: perf's loops per run and runs per model.
PERF_LOOPS = {True: 20_000, False: 100_000}
PERF_RUNS = {True: 3, False: 5}


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
    """Add a finding per model that sets perf's gross figure beside ostoolkit's."""
    by_id = {r.id: r for r in measurement.results}
    findings = []
    for model in MODELS:
        ours = by_id.get(f"switch.{model}.same_core")
        perf = by_id.get(f"perf.sched_pipe.{model}.same_core")
        if ours is None or perf is None:
            continue
        gross = float(ours.extra["gross_us"])
        findings.append(
            f"{model}, same core: perf bench sched pipe {perf.median:.2f} µs per hop "
            f"(gross), ostoolkit {gross:.2f} µs gross, {ours.median:.2f} µs net; the gross "
            "gap is Python's own cost per hop, which net subtracts"
        )
    return measurement + Measurement((), tuple(findings))


def cross_check(measurement: Measurement, quick: bool) -> Measurement:
    """Run perf on the CPU of the same-core figures (else the first allowed) and return
    ``measurement`` with its figures, warnings and findings added."""
    cpu = next(
        (r.extra["cpus"][0] for r in measurement.results if r.id.endswith("same_core")),
        min(os.sched_getaffinity(0)),
    )
    return add_perf_findings(
        measurement + cross_check_perf(cpu, PERF_LOOPS[quick], PERF_RUNS[quick])
    )
