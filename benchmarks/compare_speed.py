"""Speed check: ``ostoolkit compare`` of 50 full reports within 1 s (load, compare, render).

Copies the sample report 50 times into a temporary folder and times the whole compare, as
the CLI does it, in-process. Exit status 0 within budget. Not a test: timings belong here.

    $ .venv/bin/python benchmarks/compare_speed.py
    compare of 50 reports (78 ids each): 0.10 s (budget 1 s): ok
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from ostoolkit.compare import compare_reports, load_all
from ostoolkit.render import render
from ostoolkit.report import build_report

SAMPLE = Path(__file__).resolve().parents[1] / "examples/reports/a-vm-2cpus.json"
REPORTS = 50
BUDGET_S = 1.0


def main() -> int:
    """Time loading, comparing and rendering REPORTS copies of the sample report."""
    with tempfile.TemporaryDirectory() as folder:
        for index in range(REPORTS):
            shutil.copy(SAMPLE, Path(folder) / f"r{index:02d}.json")
        start = time.perf_counter()
        reports = load_all([Path(folder)])
        measurement = compare_reports(reports)
        text = render(build_report("compare", [], measurement, {}, "", 0), "table")
        elapsed = time.perf_counter() - start
    ids = len(reports[0].results)
    verdict = "ok" if elapsed <= BUDGET_S else "over budget"
    print(f"compare of {REPORTS} reports ({ids} ids each): {elapsed:.2f} s (budget 1 s): {verdict}")
    assert text
    return 0 if elapsed <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
