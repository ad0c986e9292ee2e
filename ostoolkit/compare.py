"""Compare saved reports across hosts: one row per result id, one column per host.

Each figure is set against the baseline host's (the first, or ``--baseline LABEL``) with a
noise-aware verdict: when the two p10–p90 ranges overlap the hosts are "≈ same"; otherwise
the ratio of medians says how much slower or faster. A figure that either report marked noisy
or bimodal is "inconclusive", never slower. Above the table, only the host fields that differ.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ostoolkit.errors import InvalidRequest
from ostoolkit.render import format_value
from ostoolkit.report import Measurement, Report, ReportError, Result, load_report

# Units where a larger figure is worse (time, memory); per_s is better when larger.
LOWER_IS_BETTER = ("us", "ms", "bytes")
HIGHER_IS_BETTER = ("per_s",)
HOST_FIELDS = (
    "hostname", "cpu_model", "cpus_logical", "cpus_allowed", "kernel", "preemption",
    "tlb_tagging", "virtualization", "mitigations", "clocksource", "governor", "python",
)  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """One host's figure for one id, and how it compares with the baseline's."""

    result: Result | None
    ratio: float | None
    verdict: str
    regressed: bool


def collect_paths(paths: Sequence[Path]) -> list[Path]:
    """Expand folders into the ``*.json`` entries they hold, sorted; keep other paths as given.

    Entries are only listed here, never opened: every path, given or found, goes through the
    one loader, ``report.load_report``, which reads regular files only. So a FIFO, a device, a
    directory or a broken symlink named ``x.json`` is refused in one line naming it (exit
    status 2) instead of hanging compare; it is not skipped, since skipping would silently drop
    a host from the comparison. A folder that cannot be listed, or holds no ``*.json``
    entry (most likely the wrong folder), is refused the same way.
    """
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        try:
            with os.scandir(path) as entries:
                names = sorted(entry.name for entry in entries if entry.name.endswith(".json"))
        except OSError as err:
            raise InvalidRequest(f"cannot list the folder {path}: {err.strerror}") from None
        if not names:
            raise InvalidRequest(f"the folder {path} holds no *.json report")
        found += [path / name for name in names]
    return found


def load_all(paths: Sequence[Path]) -> list[Report]:
    """Load every report; the loader's one-line errors (they name the file) become exit 2."""
    reports = []
    for path in collect_paths(paths):
        try:
            reports.append(load_report(path))
        except ReportError as err:
            raise InvalidRequest(str(err)) from None
    if len(reports) < 2:
        raise InvalidRequest(f"compare needs at least two reports; found {len(reports)}")
    return reports


def host_label(report: Report) -> str:
    """A short name for a host: hostname, CPU model's first words and kernel release."""
    host = report.host
    cpu = " ".join(
        str(host.get("cpu_model", "?")).replace("(R)", "").replace("(TM)", "").split()[:3]
    )
    kernel = str(host.get("kernel", "?")).split("-")[0]
    return f"{host.get('hostname', '?')} ({cpu}, {kernel})"


def unique_labels(reports: Sequence[Report], given: Sequence[str]) -> list[str]:
    """Labels for the columns: the user's, else built from the host, made unique."""
    if given and len(given) != len(reports):
        raise InvalidRequest(f"--label was given {len(given)} times for {len(reports)} reports")
    labels = list(given) or [host_label(r) for r in reports]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(
            label if seen[label] == 1 and labels.count(label) == 1 else f"{label} #{seen[label]}"
        )
    return unique


def host_differences(reports: Sequence[Report]) -> list[dict[str, Any]]:
    """Only the host fields whose values differ between the reports, flattened."""
    rows = []
    for key in HOST_FIELDS:
        values = [r.host.get(key, "unknown") for r in reports]
        if isinstance(values[0], dict):
            subkeys = sorted({k for v in values if isinstance(v, dict) for k in v})
            for sub in subkeys:
                subvalues = [v.get(sub, "—") if isinstance(v, dict) else "—" for v in values]
                if len({str(v) for v in subvalues}) > 1:
                    rows.append({"field": f"{key}.{sub}", "values": [str(v) for v in subvalues]})
        elif len({str(v) for v in values}) > 1:
            rows.append({"field": key, "values": [str(v) for v in values]})
    return rows


def _direction(unit: str) -> int:
    """+1 when a larger figure is worse, -1 when it is better, 0 when neither."""
    if unit in LOWER_IS_BETTER:
        return 1
    if unit in HIGHER_IS_BETTER:
        return -1
    return 0


def judge(base: Result, other: Result, fail_above: float | None) -> Cell:
    """Compare one figure with the baseline's, allowing for each one's spread."""
    if base.median == 0:
        return Cell(other, None, "baseline is 0", False)
    ratio = other.median / base.median
    if base.status != "ok" or other.status != "ok":
        return Cell(other, ratio, "inconclusive: noisy", False)
    if other.p10 <= base.p90 and base.p10 <= other.p90:
        return Cell(other, ratio, "≈ same", False)
    direction = _direction(other.unit)
    worse = (ratio > 1) if direction >= 0 else (ratio < 1)
    factor = ratio if ratio >= 1 else 1 / ratio
    if direction == 0:
        words = "higher" if ratio > 1 else "lower"
    elif other.unit in ("us", "ms", "per_s"):
        words = "slower" if worse else "faster"
    else:
        words = "more" if ratio > 1 else "less"
    slower = worse and direction != 0
    regressed = fail_above is not None and slower and factor > fail_above
    return Cell(other, ratio, f"{factor:.2f}× {words}", regressed)


def compare_reports(
    reports: Sequence[Report],
    labels: Sequence[str] = (),
    baseline: str | None = None,
    fail_above: float | None = None,
) -> Measurement:
    """Compare every result id across the reports; the table and host block go in ``data``."""
    names = unique_labels(reports, labels)
    if baseline is not None and baseline not in names:
        raise InvalidRequest(f"--baseline {baseline!r} is none of the labels: {', '.join(names)}")
    base_index = names.index(baseline) if baseline else 0
    by_host = [{r.id: r for r in report.results} for report in reports]
    ids = list(dict.fromkeys(i for host in by_host for i in host))
    shared = [i for i in ids if sum(i in host for host in by_host) > 1]
    if not shared:
        raise InvalidRequest("the reports have no result id in common")
    rows: list[dict[str, Any]] = []
    regressions: list[str] = []
    for result_id in ids:
        base = by_host[base_index].get(result_id)
        row: dict[str, Any] = {"id": result_id}
        for name, host in zip(names, by_host, strict=True):
            other = host.get(result_id)
            row[name] = _cell_text(base, other, fail_above, name == names[base_index], regressions)
        rows.append(row)
    table = {
        "columns": [["id", "text"], *([name, "text"] for name in names)],
        "rows": rows,
        "replaces_results": True,
        "note": f"baseline: {names[base_index]}; ≈ same: the p10–p90 ranges overlap",
    }
    data = {
        "table": table,
        "hosts": names,
        "host_differences": host_differences(reports),
        "regressions": regressions,
    }
    findings = [f"{len(ids)} result ids, {len(shared)} in more than one report"]
    warnings = [f"{r} is beyond --fail-above {fail_above}" for r in regressions]
    return Measurement((), tuple(findings), tuple(warnings), data)


def _cell_text(
    base: Result | None,
    other: Result | None,
    fail_above: float | None,
    is_base: bool,
    regressions: list[str],
) -> str:
    """The text of one cell: the figure, and beside it the ratio and verdict."""
    if other is None:
        return "—"
    value = format_value(other.median, other.unit)
    if is_base or base is None:
        return value
    cell = judge(base, other, fail_above)
    if cell.regressed:
        regressions.append(f"{other.id}: {cell.verdict}")
    return f"{value} ({cell.verdict})"
