"""Compare saved reports across hosts: every figure's samples against the baseline host's.

Reports sharing a ``--label`` pool as one host's runs; ``stats.judge_shift`` judges each figure
and its direction is named here after its unit. All goes into ``data`` as numbers and fixed
words, drawn by ``render`` alone. The rule and its evidence: docs/comparing.md.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ostoolkit.compare.fleet import (
    VIEWS,
    chosen_view,
    far_out_hosts,
    fingerprint_groups,
    fleet_figure,
)
from ostoolkit.compare.hosts import host_differences, pool_reports, same_host, unique_labels
from ostoolkit.errors import InvalidRequest, ReportError
from ostoolkit.loader import load_report
from ostoolkit.payloads import (
    CompareSummary,
    Comparison,
    FigureFields,
    HostMoveFields,
    Regression,
    VerdictFields,
)
from ostoolkit.report import METHOD_CHANGED, Measurement, Report, Result
from ostoolkit.stats import (
    CONFIDENCE,
    RESAMPLES,
    Figure,
    HostMove,
    SampleSet,
    ShiftVerdict,
    finite,
    host_move,
    judge_shift,
    significant,
    strip_counts,
    strip_range,
)
from ostoolkit.stats.fleet import OUTER_FENCE

# The practical-equivalence band (a fraction of the baseline's median) and its widest setting.
DEFAULT_THRESHOLD = 0.05
MAX_THRESHOLD = 1.0
# A unit's verdict words (up, down) and its worse direction: up for times and sizes, down for a
# rate (per_s); other units (ratio, bool) have none, so they are never a regression.
WORDS = {
    **dict.fromkeys(("us", "ms"), ("slower", "faster", "up")),
    **dict.fromkeys(("bytes", "count", "number"), ("more", "less", "up")),
    "per_s": ("higher", "lower", "down"),
}
OTHER_WORDS = ("higher", "lower", None)
MISSING, BASELINE = "missing", "baseline"
# Reasons of the verdicts compare.py gives itself (the stats package gives the statistical ones).
MISSING_HERE = "missing here"
MISSING_IN_BASELINE = "missing in the baseline"
# A figure whose section's method version (report.METHODS) differs between the two reports:
# two methods' figures are not comparable, so it gets no verdict. A report without method
# versions (before 0.2.0) is judged as before: its methods are unknown, not different.
NOT_JUDGED = "not judged"
# The sections of the table, in order, each with the first parts of the ids it groups; an id of
# none of them is in "other".
SECTIONS = {
    "switch": ("switch", "roundtrip", "ring", "ref", "rate", "perf", "trace"),
    "spawn": ("spawn",),
    "forktree": ("forktree",),
    "states": ("sched",),
    "memory": ("memory",),
    "connections": ("conn",),
    "clone": ("clone",),
}
SECTION_ORDER = (*SECTIONS, "other")
_SECTION_OF = {prefix: section for section, prefixes in SECTIONS.items() for prefix in prefixes}
# The figures a CI reader looks at first: the article's claims (switch costs, creation costs,
# memory per worker, the time slice) and the connection models' throughput at 100 clients,
# a count both `report` and `report --full` measure.
HEADLINES = (
    "switch.process.same_core",
    "switch.thread.same_core",
    "spawn.fork",
    "spawn.thread",
    "memory.process.uss_per_worker",
    "memory.thread.uss_per_worker",
    "sched.timeslice",
    "conn.process.100.qps",
    "conn.thread.100.qps",
    "conn.pooled.100.qps",
)
# How a figure moves when the host's speed reference takes r times as long: a time by r,
# a rate by 1 / r (the exponent); other units not at all (not listed).
SPEED_EXPONENT = {"us": 1, "ms": 1, "per_s": -1}


def section_of(result_id: str) -> str:
    """The section of a figure: SECTIONS by the id's first part, else ``other``."""
    return _SECTION_OF.get(result_id.split(".", 1)[0], "other")


def collect_paths(paths: Sequence[Path]) -> list[Path]:
    """Expand folders into the ``*.json`` entries they hold, sorted; keep other paths as given.
    An unreadable or empty folder or a file named twice is refused: skipped, it drops a host."""
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
    seen: dict[str, Path] = {}
    for path in found:
        real = os.path.realpath(path)
        if real in seen:
            first = seen[real]
            also = "" if str(first) == str(path) else f" (also as {_shown(first)})"
            raise InvalidRequest(f"the report {_shown(path)} is given twice{also}")
        seen[real] = path
    return found


def load_all(paths: Sequence[Path]) -> list[Report]:
    """Load every report and check it can be compared; problems become one line, exit 2
    (compare_reports refuses fewer than two)."""
    reports = []
    for path in collect_paths(paths):
        try:
            report = load_report(path)
        except ReportError as err:
            raise InvalidRequest(str(err)) from None
        check_comparable(report, _shown(path))
        reports.append(report)
    return reports


def check_comparable(report: Report, name: str) -> None:
    """Refuse a report whose results cannot be compared from their samples, naming the field:
    each needs its samples, as many as ``n`` says and ``runs`` add up to, and a unique id."""
    ids: set[str] = set()
    for index, result in enumerate(report.results):
        where = f"{name}: results[{index}] ({result.id})"
        if not result.samples:
            raise InvalidRequest(f"{where} has no samples; compare draws its verdicts from them")
        if result.n != len(result.samples):
            raise InvalidRequest(
                f"{where}: n is {result.n} but it holds {len(result.samples)} samples"
            )
        if result.runs and sum(result.runs) != result.n:
            raise InvalidRequest(
                f"{where}: its runs add up to {sum(result.runs)} samples, but n is {result.n}"
            )
        if result.id in ids:
            raise InvalidRequest(f"{where}: the id is given twice in the report")
        ids.add(result.id)


def compare_reports(
    reports: Sequence[Report],
    labels: Sequence[str] = (),
    baseline: str | None = None,
    fail_above: float | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    changed_only: bool = False,
    view: str = "auto",
) -> Measurement:
    """Compare every figure of the reports with the baseline's; all of it goes into ``data``.
    ``threshold`` is the band's half-width (0.05: ±5 %); ``fail_above`` the ratio beyond which a
    worse figure is a regression (without it, every worse verdict is); ``view`` one of VIEWS
    (a fleet's spread and far-out hosts are computed for the fleet view only)."""
    if len(reports) < 2:
        raise InvalidRequest(f"compare needs at least two reports; found {len(reports)}")
    if not 0 < threshold <= MAX_THRESHOLD:
        raise InvalidRequest(f"the threshold must be within 0..{MAX_THRESHOLD:g}, not {threshold}")
    if fail_above is not None and not (math.isfinite(fail_above) and fail_above > 1):
        raise InvalidRequest(f"--fail-above must be a finite ratio above 1, not {fail_above}")
    if view not in VIEWS:
        raise InvalidRequest(f"--view must be one of {', '.join(VIEWS)}, not {view!r}")
    all_names = unique_labels(reports, labels)
    for name, report in zip(all_names, reports, strict=True):
        check_comparable(report, name)
    names, reports, pooled = pool_reports(reports, all_names)
    if len(names) < 2:
        raise InvalidRequest(f"every report has the label {names[0]!r}: nothing to compare with")
    if baseline is not None and baseline not in names:
        raise InvalidRequest(f"--baseline {baseline!r} is none of the labels: {', '.join(names)}")
    base_index = names.index(baseline) if baseline is not None else 0
    by_host = [{r.id: r for r in report.results} for report in reports]
    ids = list(dict.fromkeys(i for host in [by_host[base_index], *by_host] for i in host))
    if not any(sum(i in host for host in by_host) > 1 for i in ids):
        raise InvalidRequest("the reports have no result id in common")
    # by section (SECTION_ORDER), headline figures first, else in the reports' order
    ids.sort(key=lambda i: (SECTION_ORDER.index(section_of(i)), i not in HEADLINES))
    same = [same_host(reports[base_index], report) for report in reports]
    methods = [report.methods for report in reports]
    shown = chosen_view(view, len(names))
    differences = host_differences(reports)
    groups = fingerprint_groups(names, differences) if shown == "fleet" else []
    comparisons: list[Comparison] = []
    figures = []
    for result_id in ids:
        items, sets = _compare_figure(
            result_id, by_host, names, base_index, threshold, fail_above, same, methods
        )
        comparisons += items
        if shown == "fleet":
            results = [host.get(result_id) for host in by_host]
            section, headline = section_of(result_id), result_id in HEADLINES
            figure = fleet_figure(
                result_id, section, headline, results, sets, names, groups, threshold
            )
            figures += [figure] if figure is not None else []
    base_name = names[base_index]
    summary: CompareSummary = {
        name: dict(Counter(item["verdict"] for item in comparisons if item["host"] == name))
        for name in names
        if name != base_name
    }
    regressions = [  # each regressed comparison in short: the keys of payloads.Regression
        {key: item.get(key) for key in Regression.__annotations__}
        for item in comparisons
        if item["regressed"]
    ]
    data: dict[str, Any] = {
        "hosts": names,
        "baseline": base_name,
        "reports": dict(zip(names, pooled, strict=True)),
        "threshold": threshold,
        "confidence": CONFIDENCE,
        "resamples": RESAMPLES,
        "fail_above": fail_above,
        "changed_only": changed_only,
        "comparisons": comparisons,
        "summary": summary,
        "regressions": regressions,
        "host_differences": differences,
        "same_host": dict(zip(names, same, strict=True)),
        "view": shown,
        "fleet": None
        if shown != "fleet"
        else {
            "fence_iqr": OUTER_FENCE,
            "groups": groups,
            "figures": figures,
            "far_out_hosts": far_out_hosts(figures),
        },
    }
    return Measurement((), data=data)


def compared_hosts(measurement: Measurement) -> dict[str, Any]:
    """The compare report's host block: the hosts compared, by label (nothing is measured)."""
    return {"compared": list(measurement.data.get("hosts", []))}


def _compare_figure(
    result_id: str,
    by_host: Sequence[dict[str, Result]],
    names: Sequence[str],
    base_index: int,
    threshold: float,
    fail_above: float | None,
    same: Sequence[bool],
    methods: Sequence[dict[str, int] | None],
) -> tuple[list[Comparison], dict[int, SampleSet]]:
    """The comparison objects of one figure, one per host in the order of ``names``. ``same``:
    per host, whether it is the baseline's host configured the same (only then may the host's
    move withhold a verdict); ``methods``: per host, its report's method versions (None:
    unknown). Also the hosts' sample sets, by index, for the fleet view."""
    section = section_of(result_id)
    versions = [None if known is None else known.get(section) for known in methods]
    results = [host.get(result_id) for host in by_host]
    sets = {
        index: SampleSet(result.samples, f"{result_id}\0{names[index]}", result.runs)
        for index, result in enumerate(results)
        if result is not None
    }
    present = list(sets.values())
    shared = strip_range(present)
    strips = dict(zip(sets, strip_counts(present, *shared), strict=True)) if shared else {}
    base = results[base_index]
    known = base or next(result for result in results if result is not None)
    items: list[Comparison] = []
    for index, result in enumerate(results):
        if result is None:
            verdict = _no_verdict(MISSING, MISSING_HERE)
        elif index == base_index:
            verdict = _no_verdict(BASELINE, BASELINE)
        elif base is None:
            verdict = _no_verdict(MISSING, MISSING_IN_BASELINE)
        elif None not in (versions[index], versions[base_index]) and (
            versions[index] != versions[base_index]
        ):
            verdict = _no_verdict(NOT_JUDGED, METHOD_CHANGED)
        else:
            move = _host_move(result_id, base, result, names[index], same[index])
            withholding = move if same[index] and move and move.draws is not None else None
            shift = judge_shift(
                Figure(sets[base_index], base.exact, base.resolution),
                Figure(sets[index], result.exact, result.resolution),
                threshold,
                withholding,
            )
            verdict = _verdict_fields(shift, result.unit, fail_above, move)
        items.append(
            {
                "id": result_id,
                "label": (result or known).label,
                "unit": (result or known).unit,
                "section": section,
                "headline": result_id in HEADLINES,
                "host": names[index],
                "baseline": names[base_index],
                "method": versions[index],
                **_figure_fields(result, sets.get(index), strips.get(index)),
                **verdict,
            }
        )
    return items, sets


def _host_move(
    result_id: str, base: Result, other: Result, name: str, same: bool
) -> HostMove | None:
    """How far the host's speed reference moved from the baseline's run to another's, for a
    unit that depends on the host's speed; with an interval only on the baseline's own host
    (``same``), where the move may withhold a verdict (between hosts it is context)."""
    if base.unit not in SPEED_EXPONENT:
        return None
    before, after = _references(base), _references(other)
    if not before or not after:
        return None
    key = f"{result_id}\0reference\0"
    return host_move(
        SampleSet(before, key + "baseline"),
        SampleSet(after, key + name),
        SPEED_EXPONENT[base.unit],
        interval=same,
    )


def _references(result: Result) -> list[float]:
    """A result's speed reference samples (finite numbers), or its one median, or none."""
    samples = result.extra.get("reference_samples_us")
    if isinstance(samples, list):
        found = [finite(sample) for sample in samples]
        if found and all(value is not None for value in found):
            return [value for value in found if value is not None]
    median = finite(result.extra.get("reference_us"))
    return [] if median is None else [median]


def _host_fields(move: HostMove | None) -> HostMoveFields:
    """The host's move as a comparison carries it: the ratio and its interval, or nulls."""
    ratio, low, high = (None, None, None) if move is None else (move.ratio, move.low, move.high)
    return {
        "host_ratio": significant(ratio),
        "host_ci_low": significant(low),
        "host_ci_high": significant(high),
    }


def _figure_fields(
    result: Result | None, samples: SampleSet | None, strip: list[int] | None
) -> FigureFields:
    """One host's own numbers for a figure: its distribution, status, strip, and the context
    shown beside, never a verdict: the interference and the host's speed reference."""
    if result is None or samples is None:
        return {
            "median": None,
            "p10": None,
            "p90": None,
            "spread": None,
            "n": 0,
            "runs": 0,
            "exact": False,
            "resolution": None,
            "status": None,
            "other_cpu_share": None,
            "steal_share": None,
            "reference_us": None,
            "strip": None,
        }
    return {
        "median": samples.median,
        "p10": samples.p10,
        "p90": samples.p90,
        "n": samples.n,
        "runs": samples.run_count,
        "exact": result.exact,
        "resolution": result.resolution,
        "spread": samples.spread,
        "status": result.status,
        "other_cpu_share": finite(result.extra.get("other_cpu_share")),
        "steal_share": finite(result.extra.get("steal_share")),
        "reference_us": finite(result.extra.get("reference_us")),
        "strip": strip,
    }


def _no_verdict(verdict: str, reason: str) -> VerdictFields:
    """The verdict fields of a figure not compared (the baseline's own, a missing one, or one
    measured by another method)."""
    return {
        "ratio": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        **_host_fields(None),
        "verdict": verdict,
        "reason": reason,
        "regressed": False,
    }


def _verdict_fields(
    shift: ShiftVerdict, unit: str, fail_above: float | None, move: HostMove | None
) -> VerdictFields:
    """The verdict fields of a compared figure: the word for its unit, the gate, the host's move."""
    up, down, worse = WORDS.get(unit, OTHER_WORDS)
    word = {"up": up, "down": down}.get(shift.direction, shift.direction)
    regressed = False
    low, high = shift.ci_low, shift.ci_high  # a direction always comes with its interval
    if worse is not None and shift.direction == worse and low is not None and high:
        near = low if worse == "up" else 1 / high  # the end nearest 1
        regressed = fail_above is None or near > fail_above
    return {
        "ratio": significant(shift.ratio),
        "ci_low": significant(shift.ci_low),
        "ci_high": significant(shift.ci_high),
        "p_value": None if shift.p_value is None else float(f"{shift.p_value:.3g}"),
        "verdict": word,
        "reason": shift.reason,
        "regressed": regressed,
        **_host_fields(move),
    }


def _shown(value: object) -> str:
    """A path or label as a message shows it: as is, JSON-quoted if it holds a newline or such."""
    text = str(value)
    return text if text.isprintable() and text.strip() == text and text else json.dumps(text)
