"""Proof of ``compare``: how often it cries wolf on an unchanged host (A/A), how often it finds
a known change (A/B), with how many runs per host.

Runs ``ostoolkit report`` REPORTS times, one after the other, on this unchanged host (or reads
the reports a previous call left in --dir), then:

- A/A: compares consecutive groups of K reports (K = 1, 2, ...: pooled by label, so each
  side has K times the preset's runs) and counts the figures given a direction (anything but
  same and unclear) and the pairs whose gate, ``--fail-above 1.5``, would fail;
- A/B, known factor: the same pairs with every sample of the second group's figures ×1.1 and
  ×1.3 (the speed reference left as measured), and counts the sampled (not exact) figures
  called higher (slower, more, higher);
- A/B, real change (``--quota``): QUOTA_REPORTS more reports run under a CPU quota (cgroup
  ``cpu.max``, or ``cpu.cfs_quota_us`` on cgroup v1) of QUOTA_CPUS CPUs, compared with the
  unchanged ones: which sections moved.

It also says how often the 95 % interval alone (no band) leaves out 1 in A/A: about 5 % for
an interval as wide as the variation between the reports really is. Not a test: it takes
minutes and its figures are this host's. Exit status 0 when the issue's targets hold: at
most 1 % directional verdicts and no gate failure in A/A (K = 1), and at least 90 % of the
sampled figures of a copy of a report with every sample ×1.3 called higher.

    $ .venv/bin/python benchmarks/compare_check.py --reports 4 --preset quick
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ostoolkit.compare.engine import compare_reports
from ostoolkit.loader import load_report
from ostoolkit.report import Report, Result

ROOT = Path(__file__).resolve().parents[1]
OSTOOLKIT = ROOT / ".venv" / "bin" / "ostoolkit"
DIRECTIONAL = {"slower", "faster", "more", "less", "higher", "lower"}
UP = {"slower", "more", "higher"}
GATE = 1.5
FACTORS = (1.1, 1.3)
QUOTA_CPUS = 0.5
QUOTA_REPORTS = 2
MAX_FALSE_SHARE = 0.01
MIN_FOUND_SHARE = 0.90


def run_report(path: Path, preset: str, quota: bool = False) -> None:
    """One ``ostoolkit report`` into ``path``, under a CPU quota if asked."""
    argv = [str(OSTOOLKIT), "report", "--json", str(path), "--format", "json"]
    if preset != "default":
        argv.insert(2, f"--{preset}")
    started = time.monotonic()
    if quota:
        group = make_quota_group()
        try:
            shell = f'echo $$ > {group / "cgroup.procs"} && exec "$@"'
            subprocess.run(["sh", "-c", shell, "sh", *argv], check=True, stdout=subprocess.DEVNULL)
        finally:
            group.rmdir()
    else:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    print(f"  {path.name}: {time.monotonic() - started:.1f} s", file=sys.stderr)


def make_quota_group() -> Path:
    """A cgroup with a CPU quota of QUOTA_CPUS CPUs (v2 cpu.max, else v1 cfs_quota_us)."""
    period = 100_000
    quota = int(QUOTA_CPUS * period)
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists():
        group = v2 / f"ostoolkit-quota-{os.getpid()}"
        group.mkdir()
        (group / "cpu.max").write_text(f"{quota} {period}\n")
        return group
    group = Path("/sys/fs/cgroup/cpu") / f"ostoolkit-quota-{os.getpid()}"
    group.mkdir()
    (group / "cpu.cfs_period_us").write_text(f"{period}\n")
    (group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    return group


def scaled(report: Report, factor: float) -> Report:
    """The report with every figure's samples (and summary) multiplied by ``factor``."""

    def scale(result: Result) -> Result:
        return dataclasses.replace(
            result,
            samples=tuple(value * factor for value in result.samples),
            median=result.median * factor,
            p10=result.p10 * factor,
            p90=result.p90 * factor,
        )

    return dataclasses.replace(report, results=tuple(scale(r) for r in report.results))


def comparisons(a: Sequence[Report], b: Sequence[Report]) -> tuple[list[dict], bool]:
    """The other side's comparison objects of pooled group a vs group b, and the gate's fate."""
    labels = ["a"] * len(a) + ["b"] * len(b)
    data = compare_reports([*a, *b], labels, fail_above=GATE).data
    items = [item for item in data["comparisons"] if item["host"] == "b"]
    return items, bool(data["regressions"])


def sampled(item: dict) -> bool:
    """Whether a comparison's figure has samples on both sides (it is not exact)."""
    return not item["exact"] and item["verdict"] not in ("missing",)


def excluded_share(pairs: Sequence[tuple[Sequence[Report], Sequence[Report]]]) -> float:
    """How often the 95 % interval of an unchanged figure leaves out 1 (no band): about 5 %
    for an interval that is as wide as the variation between the reports really is."""
    excluded = total = 0
    for a, b in pairs:
        labels = ["a"] * len(a) + ["b"] * len(b)
        data = compare_reports([*a, *b], labels, threshold=1e-9).data
        for item in data["comparisons"]:
            judged = item["ci_low"] is not None and item["reason"] != "one run"
            if item["host"] == "b" and judged and not item["exact"]:
                total += 1
                excluded += item["ci_low"] > 1 or item["ci_high"] < 1
    return excluded / total if total else 0.0


def self_copy_found(reports: Sequence[Report], factor: float) -> float:
    """The issue's test: each report against a copy of itself with every sample x factor."""
    found = total = 0
    for report in reports:
        items, _ = comparisons([report], [scaled(report, factor)])
        for item in items:
            if sampled(item):
                total += 1
                found += item["verdict"] in UP
    return found / total if total else 0.0


def analyse(reports: list[Report], group: int) -> dict[str, float]:
    """A/A and A/B figures for groups of ``group`` reports per side."""
    pairs = [
        (reports[i : i + group], reports[i + group : i + 2 * group])
        for i in range(0, len(reports) - 2 * group + 1, group)
    ]
    out: dict[str, float] = {"pairs": len(pairs)}
    if not pairs:
        return out
    directional = compared = gate_failures = 0
    by_section: Counter[str] = Counter()
    wolves: Counter[str] = Counter()
    for a, b in pairs:
        items, failed = comparisons(a, b)
        gate_failures += failed
        for item in items:
            if item["verdict"] == "missing":
                continue
            compared += 1
            by_section[item["section"]] += 1
            if item["verdict"] in DIRECTIONAL:
                directional += 1
                wolves[f"{item['id']} {item['verdict']} {item['ratio']}"] += 1
    out["aa_directional"] = directional
    out["aa_compared"] = compared
    out["aa_share"] = directional / compared if compared else 0.0
    out["aa_gate_failures"] = gate_failures
    for wolf, count in wolves.most_common(10):
        print(f"    A/A directional: {wolf} (x{count})", file=sys.stderr)
    out["calibration"] = excluded_share(pairs)
    for factor in FACTORS:
        found = total = 0
        missed: Counter[str] = Counter()
        for a, b in pairs:
            items, _ = comparisons(a, [scaled(report, factor) for report in b])
            for item in items:
                if sampled(item):
                    total += 1
                    found += item["verdict"] in UP
                    if item["verdict"] not in UP:
                        missed[item["reason"]] += 1
        out[f"found_{factor}"] = found / total if total else 0.0
        reasons = ", ".join(f"{reason} {count}" for reason, count in missed.most_common(4))
        print(f"    x{factor}: missed by reason: {reasons}", file=sys.stderr)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=4, help="unchanged reports to take")
    parser.add_argument("--preset", choices=("quick", "default"), default="quick")
    parser.add_argument("--dir", type=Path, default=ROOT / "benchmarks" / "build" / "compare")
    parser.add_argument("--reuse", action="store_true", help="reuse the reports already there")
    parser.add_argument("--quota", action="store_true", help="also run A/B under a CPU quota")
    args = parser.parse_args()
    folder = args.dir / args.preset
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"aa-{index}.json" for index in range(args.reports)]
    for path in paths:
        if not (args.reuse and path.exists()):
            run_report(path, args.preset)
    reports = [load_report(path) for path in paths]
    runs = reports[0].results[0].run_count
    print(f"{args.preset} report: {runs} runs of its first figure (a switch block is a run)")
    ok = True
    copies = {factor: self_copy_found(reports, factor) for factor in FACTORS}
    print(
        "a copy of each report with every sample x1.1 / x1.3: found "
        + " / ".join(f"{share:.0%}" for share in copies.values())
    )
    print("per side  pairs  A/A directional  gate fails  interval misses 1  found x1.1  x1.3")
    for group in (1, 2, 4):
        out = analyse(reports, group)
        if not out.get("pairs"):
            continue
        print(
            f"{group:>2} report(s) {int(out['pairs']):>5}  "
            f"{int(out['aa_directional']):>4}/{int(out['aa_compared'])} "
            f"({out['aa_share']:.1%})  {int(out['aa_gate_failures']):>6}  "
            f"{out['calibration']:>17.1%}  {out['found_1.1']:>10.0%}  {out['found_1.3']:>4.0%}"
        )
        if group == 1:
            ok = (
                out["aa_share"] <= MAX_FALSE_SHARE
                and out["aa_gate_failures"] == 0
                and copies[1.3] >= MIN_FOUND_SHARE
            )
    if args.quota:
        quota_paths = [folder / f"quota-{index}.json" for index in range(QUOTA_REPORTS)]
        for path in quota_paths:
            if not (args.reuse and path.exists()):
                run_report(path, args.preset, quota=True)
        quota = [load_report(path) for path in quota_paths]
        items, failed = comparisons(reports[:QUOTA_REPORTS], quota)
        moved = Counter(item["section"] for item in items if item["verdict"] in DIRECTIONAL)
        total = Counter(item["section"] for item in items if item["verdict"] != "missing")
        words = ", ".join(f"{section} {moved[section]}/{total[section]}" for section in total)
        print(f"under a {QUOTA_CPUS} CPU quota: moved {words}; gate failed: {failed}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
