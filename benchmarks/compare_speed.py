"""Speed check: ``ostoolkit compare`` of 100 default reports, as a ratio to a reference.

Builds 100 reports from the sample report (examples/reports/a-vm-2cpus.json, a default
``report``: five runs of every section), each host's samples resampled within their runs and
moved by a factor of its own for each figure (lognormal, 5 %), so that no two hosts are
copies and every verdict is really computed. Then it times, in one process, what the command
does: load and check the 100 files, compare them (hierarchical bootstrap intervals, host
moves, strips, and the fleet view's spread and far-out hosts) and render the fleet table.
The reference, timed in the same run, is what any reader of the files must do at least:
parse the 100 files' JSON with Python's json module.
Exit status 0 when compare takes at most BUDGET_RATIO times the reference: on a shared VM
that changes speed for minutes at a time, a ratio holds where seconds do not.

    $ .venv/bin/python benchmarks/compare_speed.py [REPORT.json]
    compare of 100 reports (88 figures each, 4,426 samples): 5.15 s in process, 38.2x the
    reference (json.loads of the files, 0.13 s; budget 40x): ok
      load 0.44 s, compare 4.70 s, render 0.01 s; as a command: 5.16 s
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ostoolkit.compare.engine import compare_reports, compared_hosts, load_all
from ostoolkit.render import render
from ostoolkit.report import build_report
from ostoolkit.stats import summarize

SAMPLE = Path(__file__).resolve().parents[1] / "examples/reports/a-vm-2cpus.json"
REPORTS = 100
BUDGET_RATIO = 40.0  # about 5 s on the development VM for a fleet of 100 reports
HOST_SPREAD = 0.05  # how far each host's figure moves from the sample's (lognormal sigma)


def host_report(sample: dict[str, Any], index: int) -> str:
    """One host's report: every figure's runs resampled and moved by its factor."""
    rng = random.Random(index)
    grown = []
    for result in sample["results"]:
        factor = rng.lognormvariate(0, HOST_SPREAD)
        runs = result.get("runs") or [len(result["samples"])]
        samples, start = [], 0
        for size in runs:  # within each run, so the runs stay apart
            run = result["samples"][start : start + size]
            samples += [rng.choice(run) * factor for _ in range(size)]
            start += size
        summary = summarize(samples)
        grown.append(
            {
                **result,
                "samples": samples,
                "median": summary.median,
                "p10": summary.p10,
                "p90": summary.p90,
            }
        )
    host = {**sample["host"], "hostname": f"host-{index:02d}"}
    return json.dumps({**sample, "host": host, "results": grown})


def main() -> int:
    """Time loading, comparing and rendering REPORTS default reports, in one process."""
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE  # another report to grow from
    sample = json.loads(source.read_text())
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for index in range(REPORTS):
            (folder / f"r{index:02d}.json").write_text(host_report(sample, index))
        texts = [path.read_text() for path in sorted(folder.glob("*.json"))]
        reference_start = time.perf_counter()
        for text in texts:
            json.loads(text)
        reference = time.perf_counter() - reference_start
        start = time.perf_counter()
        reports = load_all([folder])
        loaded = time.perf_counter()
        measurement = compare_reports(reports)
        compared = time.perf_counter()
        report = build_report("compare", [], measurement, compared_hosts(measurement), "", 0)
        text = render(report, "table")
        rendered = time.perf_counter()
        entry = Path(sys.executable).with_name("ostoolkit")
        command_start = time.perf_counter()
        done = subprocess.run([entry, "compare", folder], capture_output=True, timeout=300)
        command = time.perf_counter() - command_start
    elapsed = rendered - start
    ratio = elapsed / reference
    samples = sum(r.n for r in reports[0].results)
    verdict = "ok" if ratio <= BUDGET_RATIO else "over budget"
    print(
        f"compare of {REPORTS} reports ({len(reports[0].results)} figures each, "
        f"{samples:,} samples): {elapsed:.2f} s in process, {ratio:.1f}x the reference "
        f"(json.loads of the files, {reference:.2f} s; budget {BUDGET_RATIO:g}x): {verdict}"
    )
    print(
        f"  load {loaded - start:.2f} s, compare {compared - loaded:.2f} s, "
        f"render {rendered - compared:.2f} s; as a command: {command:.2f} s"
    )
    assert text
    assert done.returncode == 0, done.stderr
    return 0 if ratio <= BUDGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
