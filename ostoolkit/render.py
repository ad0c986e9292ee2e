"""Turn a Report into a table, JSON or markdown; shared by every command, never forks.

Rendering is pure: it reads the Report it is given (numbers stay numbers until here) and
measures nothing. The compare report (``data.comparisons``) has its own layout, below
``render_compare_table``: grouped by section, one column per host, a strip per figure, and
a summary line per host; it fits TABLE_WIDTH columns for three hosts.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from ostoolkit.report import Report, Result
from ostoolkit.stats import HOST_MOVED, OTHER_CPU_LIMIT, STEAL_LIMIT

FORMATS = ("table", "json", "markdown")
UNIT_SUFFIX = {
    "us": " µs",
    "ms": " ms",
    "count": "",
    "per_s": "/s",
    "ratio": "×",
    "bool": "",
    "number": "",
}
# A ratio of two hosts' figures ("factor", as a cell shows it) and an interval's ends
# ("factor_bound", inside brackets): two decimals around 1, so 1.00× and 0.99× line up.
FACTOR_SUFFIX = {"factor": "×", "factor_bound": ""}
# Extra fields a command may put in results that deserve a column, in this order, when present.
EXTRA_COLUMNS = (
    ("gross_us", "gross", "us"),
    ("baseline_us", "baseline", "us"),
    ("switches_per_hop", "kernel switches/hop", "number"),
    ("vmpte_per_worker_bytes", "page tables/worker", "bytes"),
)


def format_value(value: float | None, unit: str) -> str:
    """Format a figure with its unit at a precision that suits its size."""
    if value is None:
        return ""
    if unit == "bytes":
        return _format_bytes(value)
    if unit in ("count", "bool") and float(value).is_integer():
        return f"{int(value)}"
    magnitude = abs(value)
    if unit in FACTOR_SUFFIX:  # a ratio between hosts: 1.07×, 0.84×, 12.5×; bare in intervals
        digits = 3 if magnitude < 0.1 else 2 if magnitude < 10 else 1 if magnitude < 100 else 0
        return f"{value:,.{digits}f}{FACTOR_SUFFIX[unit]}"
    if unit == "percent":  # a fraction shown as a percentage: 0.05 -> "5 %"
        percent = value * 100
        digits = 0 if abs(percent) >= 10 or round(percent, 1).is_integer() else 1
        return f"{percent:.{digits}f} %"
    digits = 0 if magnitude >= 1000 else 1 if magnitude >= 100 else 2 if magnitude >= 1 else 3
    return f"{value:,.{digits}f}{UNIT_SUFFIX.get(unit, ' ' + unit)}"


def _format_bytes(value: float) -> str:
    """Bytes in binary units (KiB, MiB, GiB)."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GiB"  # pragma: no cover - the loop always returns


def host_line(host: dict[str, Any]) -> str:
    """One line that identifies the host, for the head of a table."""
    virt = host.get("virtualization", {})
    if isinstance(virt, dict):
        kinds = [
            "VM" if virt.get("hypervisor") is True else "",
            f"container: {virt['container']}"
            if virt.get("container") not in (None, "none")
            else "",
        ]
        virt_text = ", ".join(k for k in kinds if k) or "bare metal?"
    else:
        virt_text = str(virt)
    allowed = host.get("cpus_allowed", "unknown")
    allowed_text = ",".join(map(str, allowed)) if isinstance(allowed, list) else str(allowed)
    load = host.get("loadavg", "unknown")
    load_text = f"{load[0]:.2f}" if isinstance(load, list) else str(load)
    return (
        f"host {host.get('hostname', '?')}: {host.get('cpu_model', 'unknown')}, "
        f"{host.get('cpus_logical', '?')} CPUs (allowed {allowed_text}), "
        f"Linux {host.get('kernel', '?')} (preempt {host.get('preemption', '?')}), {virt_text}, "
        f"clocksource {host.get('clocksource', '?')}, load {load_text}, "
        f"{host.get('python', '?')}"
    )


def _results_table(results: Sequence[Result]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for results; extra and claim columns appear only when used."""
    extras = [c for c in EXTRA_COLUMNS if any(c[0] in r.extra for r in results)]
    with_claims = any(r.claim for r in results)
    headers = ["figure", "median", "p10", "p90", "n", "status"]
    headers += [title for _, title, _ in extras]
    if with_claims:
        headers += ["article", "verdict"]
    rows = []
    for r in results:
        row = [r.label, *(format_value(v, r.unit) for v in (r.median, r.p10, r.p90))]
        row += [str(r.n), r.status]
        row += [format_value(r.extra.get(key), unit) for key, _, unit in extras]
        if with_claims:
            row += [r.claim or "", r.verdict or ""]
        rows.append(row)
    return headers, rows


def _host_rows(host: dict[str, Any]) -> list[list[str]]:
    """Host fingerprint as field/value rows, nested dicts flattened with dots."""
    rows = []
    for key, value in host.items():
        if isinstance(value, dict):
            rows += [[f"{key}.{k}", str(v)] for k, v in value.items()] or [[key, "none"]]
        elif isinstance(value, list):
            rows.append([key, ", ".join(map(str, value))])
        else:
            rows.append([key, str(value)])
    return rows


def _node_text(node: dict[str, Any]) -> str:
    """One tree node as pstree -p writes it, plus state, memory and creation times."""
    words = [
        f"{node['name']}({node['pid']})",
        node["status"],
        f"rss {format_value(node['rss'], 'bytes')}",
    ]
    if node.get("uss") is not None:
        words.append(f"uss {format_value(node['uss'], 'bytes')}")
    if node.get("fork_us") is not None:
        words.append(f"fork {format_value(node['fork_us'], 'us')}")
    if node.get("exec_us") is not None:
        words.append(f"fork+exec {format_value(node['exec_us'], 'us')}")
    return " ".join(words)


def draw_tree(tree: dict[str, Any]) -> str:
    """Draw a nested process tree with box-drawing branches, like pstree."""
    lines = [_node_text(tree)]

    def walk(node: dict[str, Any], prefix: str) -> None:
        kids = node["children"]
        for index, kid in enumerate(kids):
            last = index == len(kids) - 1
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{_node_text(kid)}")
            walk(kid, prefix + ("   " if last else "│  "))

    walk(tree, "")
    return "\n".join(lines)


TIMELINE_HEADERS = ["t", "article's state", "pid", "psutil status", "/proc state", "what happened"]


def _timeline_rows(timeline: list[dict[str, Any]]) -> list[list[str]]:
    """One row per observed state change, in the order they happened."""
    return [
        [
            format_value(step["t_ms"], "ms"),
            step["article_state"],
            str(step["pid"]),
            step["psutil_status"],
            step["proc_state"],
            step["detail"],
        ]
        for step in timeline
    ]


def _summary(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """A command's own summary table (data.table): columns with units, rows of values."""
    columns = table["columns"]
    headers = [name for name, _ in columns]
    rows = [
        [
            str(row[name]) if unit == "text" else format_value(row[name], unit)
            for name, unit in columns
        ]
        for row in table["rows"]
    ]
    return headers, rows


def _replaces_results(report: Report) -> bool:
    """Whether the command's own table already shows every result (the JSON has them all)."""
    return bool(report.data.get("table", {}).get("replaces_results"))


def _host_differences(report: Report) -> tuple[list[str], list[list[str]]]:
    """The compared hosts' differing fields: one row per field, one column per host."""
    headers = ["host field", *report.data["hosts"]]
    return headers, [[row["field"], *row["values"]] for row in report.data["host_differences"]]


def render_table(report: Report, full_host: bool = False) -> str:
    """Plain-text table for terminals and CI logs."""
    if is_compare(report):
        return render_compare_table(report)
    parts = [f"ostoolkit {report.command}", host_line(report.host), ""]
    if full_host:
        parts += [tabulate(_host_rows(report.host), headers=["field", "value"]), ""]
    if "tree" in report.data:
        parts += [draw_tree(report.data["tree"]), ""]
    if "timeline" in report.data:
        rows = _timeline_rows(report.data["timeline"])
        parts += [tabulate(rows, headers=TIMELINE_HEADERS, disable_numparse=True), ""]
    if report.data.get("host_differences"):
        headers, rows = _host_differences(report)
        parts += [tabulate(rows, headers=headers, disable_numparse=True), ""]
    if "table" in report.data:  # the command's own summary; every result is in the JSON
        headers, rows = _summary(report.data["table"])
        parts += [tabulate(rows, headers=headers, disable_numparse=True)]
        parts += [report.data["table"].get("note", ""), ""]
    if report.results and not _replaces_results(report):
        headers, rows = _results_table(report.results)
        parts += [tabulate(rows, headers=headers, disable_numparse=True), ""]
    parts += [f"* {finding}" for finding in report.findings]
    parts += [f"warning: {warning}" for warning in report.warnings]
    return "\n".join(parts).rstrip() + "\n"


def render_markdown(report: Report, full_host: bool = False) -> str:
    """GitHub-flavoured markdown, for step summaries and issues."""
    if is_compare(report):
        return render_compare_markdown(report)
    parts = [f"### ostoolkit {report.command}", "", f"_{host_line(report.host)}_", ""]
    if full_host:
        parts += [
            tabulate(_host_rows(report.host), headers=["field", "value"], tablefmt="github"),
            "",
        ]
    if "tree" in report.data:
        parts += ["```text", draw_tree(report.data["tree"]), "```", ""]
    if "timeline" in report.data:
        rows = _timeline_rows(report.data["timeline"])
        table = tabulate(rows, headers=TIMELINE_HEADERS, tablefmt="github", disable_numparse=True)
        parts += [table, ""]
    if report.data.get("host_differences"):
        headers, rows = _host_differences(report)
        parts += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    if "table" in report.data:
        headers, rows = _summary(report.data["table"])
        parts += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
        parts += [report.data["table"].get("note", ""), ""]
    if report.results and not _replaces_results(report):
        headers, rows = _results_table(report.results)
        parts += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    parts += [f"- {finding}" for finding in report.findings]
    parts += [f"- ⚠️ {warning}" for warning in report.warnings]
    return "\n".join(parts).rstrip() + "\n"


# -- compare: the report of `ostoolkit compare` -------------------------------------------------
# Its figures arrive as numbers in data.comparisons (one object per figure and host, see
# docs/results.md); every word and number of text about them is made here.

TABLE_WIDTH = 120  # a CI log: the table fits this many columns for up to three hosts
# A strip: one character per bin of a figure's samples, binned over a range all hosts share,
# so a shifted, wide or two-humped distribution is seen. An empty bin is the floor character,
# so the strip's frame stays visible; a filled bin is at least one step above it.
SPARK_FLOOR = "▁"
SPARK_LEVELS = "▂▃▄▅▆▇█"
SECTION_TITLES = {
    "switch": "context switches",
    "spawn": "creating processes and threads",
    "forktree": "fork tree",
    "states": "process states and time slice",
    "memory": "memory per worker",
    "connections": "connections",
    "clone": "clone",
    "other": "other",
}
# The verdict words in the order a summary line counts them.
VERDICTS = ("slower", "faster", "more", "less", "higher", "lower", "same", "unclear", "missing")
QUIET_VERDICTS = ("same", "baseline")  # rows of only these are hidden by --changed
# Context beside a figure, never its verdict: its samples' status and the interference the
# measurement saw (the CPU time other tasks took on its CPUs, and the hypervisor's steal).
NOISY_MARK = "~"
BIMODAL_MARK = "²"
INTERFERENCE_MARK = "!"
# The host's own speed reference moved as far as the figure (stats.HOST_MOVED): unclear.
HOST_MARK = "↕"
# "!" is shown beyond the limits that make a figure noisy (stats.judge_noise): other tasks'
# share of the measured CPUs' time above OTHER_CPU_LIMIT, or the steal share above STEAL_LIMIT.

# Why a verdict came out as it did, as compare.py and stats.judge_shift word it, and as a cell
# says it: only where it adds to what the cell shows. A reason that merely restates the verdict
# or the interval ("interval outside the band", "wide interval") is left out; so is every
# reason of a figure with an interval, which shows its width itself.
REASON_TEXT = {
    "interval outside the band": "",
    "interval inside the band": "",
    "wide interval": "",
    "interval at the band's edge": "",
    "baseline": "",
    "missing here": "",
    "missing in the baseline": "no baseline",
    "not positive": "median ≤ 0",
    "both zero": "both 0",
    "one sample": "one sample",
    "few samples": "few samples",  # "3 samples" when the counts are known
}
# The parts of a host's cell, in order; "interval" holds the reason when there is no interval.
# Parts that no row of a column has are left out; when the table would be wider than
# TABLE_WIDTH, later detail levels leave out more (the baseline column always shows its value
# and strip).
CELL_PARTS = ("value", "ratio", "interval", "verdict", "strip", "marks")
RIGHT_ALIGNED = ("value", "ratio")
DETAIL_LEVELS = (
    CELL_PARTS,
    ("value", "ratio", "verdict", "strip", "marks"),
    ("ratio", "verdict", "strip", "marks"),
)
BASELINE_PARTS = ("value", "strip", "marks")
LABEL_COMFORT = 36  # a figure column this wide (or as wide as the longest label) is preferred
LABEL_MIN = 24  # ... and one narrower than this is accepted only when nothing else fits
HEADER_MIN = 12  # a host column is at least this wide, so its header wraps in few lines
HEADER_LINES = 3  # a host label longer than this many lines is cut with "…"
ROW_INDENT = "  "  # figures sit under their section's title


def is_compare(report: Report) -> bool:
    """Whether this is a compare report carrying its comparisons as data."""
    return isinstance(report.data.get("comparisons"), list)


def sparkline(counts: Sequence[Any] | None) -> str:
    """Bin counts as a strip of block characters, scaled to the fullest bin; "" without bins.

    ``[0, 1, 4, 8, 2, 0, 0, 1]`` gives ``"▁▃▅█▄▁▁▃"``: an empty bin is the floor, any filled one
    stands above it, so one sample in a bin is never lost. Anything not a count is empty.
    """
    if not isinstance(counts, (list, tuple)) or not counts:
        return ""
    values = [_finite(count) or 0.0 for count in counts]
    top = max(values)
    if top <= 0:
        return SPARK_FLOOR * len(values)
    steps = len(SPARK_LEVELS) - 1
    return "".join(
        SPARK_LEVELS[int(value / top * steps + 0.5)] if value > 0 else SPARK_FLOOR
        for value in values
    )


def _finite(value: Any) -> float | None:
    """A finite number as float, or None (for null, a bool, text, NaN...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _text(item: Mapping[str, Any], key: str) -> str:
    """A string field, or "" when it is absent or not a string."""
    value = item.get(key)
    return value if isinstance(value, str) else ""


def _marks(item: Mapping[str, Any]) -> str:
    """The context marks of one host's figure: noisy or bimodal samples, interference."""
    status = _text(item, "status")
    marks = NOISY_MARK if status == "noisy" else BIMODAL_MARK if status == "bimodal" else ""
    other = _finite(item.get("other_cpu_share"))
    steal = _finite(item.get("steal_share"))
    if (other is not None and other > OTHER_CPU_LIMIT) or (
        steal is not None and steal > STEAL_LIMIT
    ):
        marks += INTERFERENCE_MARK
    if _text(item, "reason") == HOST_MOVED:
        marks += HOST_MARK
    return marks


def reason_text(item: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> str:
    """The reason of a verdict as a cell shows it (REASON_TEXT): "" when it adds nothing.

    "few samples" names the smaller count when the baseline's comparison is given: "3 samples".
    """
    reason = _text(item, "reason")
    if reason == HOST_MOVED:  # said even beside an interval: it is why there is no verdict
        host = format_value(_finite(item.get("host_ratio")), "factor")
        return f"host {host}" if host else reason
    if _finite(item.get("ci_low")) is not None and _finite(item.get("ci_high")) is not None:
        return ""
    if reason == "few samples":
        counts = [_finite(c.get("n")) for c in (item, base) if c is not None]
        known = [int(n) for n in counts if n is not None and n > 0]
        return f"{min(known)} samples" if known else reason
    return REASON_TEXT.get(reason, reason)


def compare_cell_parts(
    item: Mapping[str, Any] | None, is_baseline: bool, base: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The text of one host's figure, part by part (CELL_PARTS); "" where a part is unknown.

    A host without the figure shows "—". The baseline's verdict (``baseline``) is not
    repeated in its cells: its column says so. ``base`` is the baseline's comparison of the
    same figure, for the reason's sample count. Without an interval, its part holds the
    reason, if one adds anything ("one sample", "3 samples").
    """
    parts = dict.fromkeys([*CELL_PARTS, "reason"], "")
    if item is None:
        parts["value"] = "—"
        return parts
    unit = _text(item, "unit")
    median = _finite(item.get("median"))
    parts["value"] = "—" if median is None else format_value(median, unit)
    parts["strip"] = sparkline(item.get("strip"))
    parts["marks"] = _marks(item)
    if is_baseline:
        return parts
    ratio = _finite(item.get("ratio"))
    low, high = _finite(item.get("ci_low")), _finite(item.get("ci_high"))
    parts["ratio"] = format_value(ratio, "factor")
    parts["reason"] = reason_text(item, base)
    if low is not None and high is not None:
        bounds = (format_value(low, "factor_bound"), format_value(high, "factor_bound"))
        parts["interval"] = f"[{bounds[0]}–{bounds[1]}]"
    else:
        parts["interval"] = parts["reason"]
    verdict = _text(item, "verdict")
    parts["verdict"] = "" if verdict == "baseline" else verdict
    return parts


def compare_cell(
    item: Mapping[str, Any] | None,
    is_baseline: bool = False,
    base: Mapping[str, Any] | None = None,
) -> str:
    """One host's figure as one short text: "2.62 µs 1.07× [1.03–1.11] slower ▁▂▇█▃▁▁▁ ~"."""
    parts = compare_cell_parts(item, is_baseline, base)
    return " ".join(parts[name] for name in CELL_PARTS if parts[name])


@dataclass(frozen=True)
class CompareRow:
    """One figure across the hosts: its label, section, and each host's comparison object."""

    id: str
    label: str
    section: str
    headline: bool
    cells: dict[str, Mapping[str, Any]]

    def changed(self, hosts: Sequence[str]) -> bool:
        """Whether any host's verdict is other than same/baseline (an absent one counts)."""
        return any(
            host not in self.cells or _text(self.cells[host], "verdict") not in QUIET_VERDICTS
            for host in hosts
        )


@dataclass(frozen=True)
class CompareView:
    """What the compare rendering shows, read defensively from a compare report's data."""

    hosts: list[str]
    baseline: str
    threshold: float | None
    confidence: float | None
    changed_only: bool
    rows: list[CompareRow]  # every figure, grouped by section, headline figures first
    summary: dict[str, dict[str, int]]
    regressions: list[Mapping[str, Any]]
    host_differences: list[tuple[str, list[str]]]
    fail_above: float | None
    host_moved: dict[str, int] = field(default_factory=dict)  # unclear as the host moved

    @property
    def shown(self) -> list[CompareRow]:
        """The rows the tables show: all of them, or with --changed the changed ones."""
        if not self.changed_only:
            return self.rows
        return [row for row in self.rows if row.changed(self.hosts)]

    def sections(self) -> list[tuple[str, list[CompareRow]]]:
        """The shown rows by section title, in the order of the rows."""
        grouped: dict[str, list[CompareRow]] = {}
        for row in self.shown:
            grouped.setdefault(row.section, []).append(row)
        return [(SECTION_TITLES.get(key, key), rows) for key, rows in grouped.items()]


def compare_view(data: Mapping[str, Any]) -> CompareView:
    """Read a compare report's data; a missing or ill-typed field is empty, never a crash."""
    items = [c for c in data.get("comparisons") or [] if isinstance(c, Mapping)]
    given = data.get("hosts")
    hosts = [h for h in given if isinstance(h, str)] if isinstance(given, list) else []
    for item in items:  # hosts named only by their comparisons come after the given ones
        host = _text(item, "host")
        if host and host not in hosts:
            hosts.append(host)
    baseline = data.get("baseline")
    if not isinstance(baseline, str) or not baseline:
        baseline = next((_text(c, "host") for c in items if _text(c, "verdict") == "baseline"), "")
        baseline = baseline or (hosts[0] if hosts else "")
    threshold = _finite(data.get("threshold"))
    return CompareView(
        hosts=hosts,
        baseline=baseline,
        threshold=threshold,
        confidence=_finite(data.get("confidence")),
        changed_only=data.get("changed_only") is True,
        rows=_compare_rows(items),
        summary=_summary_counts(data.get("summary"), items, hosts, baseline),
        regressions=[r for r in data.get("regressions") or [] if isinstance(r, Mapping)],
        host_differences=_differences(data.get("host_differences"), len(hosts)),
        fail_above=_finite(data.get("fail_above")),
        host_moved={
            host: sum(_text(c, "host") == host and _text(c, "reason") == HOST_MOVED for c in items)
            for host in hosts
        },
    )


def _compare_rows(items: Sequence[Mapping[str, Any]]) -> list[CompareRow]:
    """One row per figure id: sections in SECTION_TITLES order (others after), headline first."""
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        by_id.setdefault(_text(item, "id") or "?", []).append(item)
    rows = []
    for result_id, group in by_id.items():

        def first(key: str, group: list[Mapping[str, Any]] = group) -> str:
            return next((_text(c, key) for c in group if _text(c, key)), "")

        cells: dict[str, Mapping[str, Any]] = {}
        for item in group:
            cells.setdefault(_text(item, "host"), item)
        rows.append(
            CompareRow(
                id=result_id,
                label=first("label") or result_id,
                section=first("section") or "other",
                headline=any(c.get("headline") is True for c in group),
                cells=cells,
            )
        )
    order = {key: index for index, key in enumerate(SECTION_TITLES)}
    seen = {row.section: index for index, row in reversed(list(enumerate(rows)))}
    return sorted(
        rows,
        key=lambda row: (
            order.get(row.section, len(order)),
            seen[row.section],
            not row.headline,
        ),
    )  # sorted() is stable: within those keys, the engine's order stays


def _summary_counts(
    given: Any, items: Sequence[Mapping[str, Any]], hosts: Sequence[str], baseline: str
) -> dict[str, dict[str, int]]:
    """Verdict counts per non-baseline host: data.summary, else counted from the comparisons."""
    counts: dict[str, dict[str, int]] = {}
    for host in hosts:
        if host == baseline:
            continue
        words = given.get(host) if isinstance(given, Mapping) else None
        if isinstance(words, Mapping):
            counts[host] = {
                w: int(n) for w, n in words.items() if isinstance(w, str) and _finite(n)
            }
            continue
        tally: dict[str, int] = {}
        for item in items:
            if _text(item, "host") == host and _text(item, "verdict"):
                tally[_text(item, "verdict")] = tally.get(_text(item, "verdict"), 0) + 1
        counts[host] = tally
    return counts


def _differences(given: Any, hosts: int) -> list[tuple[str, list[str]]]:
    """The host block's rows: a readable field name and one text per host."""
    rows = []
    for row in given if isinstance(given, list) else []:
        if not isinstance(row, Mapping):
            continue
        values = row.get("values")
        texts = [_plain(v) for v in values] if isinstance(values, list) else []
        rows.append((_plain(row.get("field")), (texts + [""] * hosts)[:hosts]))
    return rows


def _plain(value: Any) -> str:
    """A host field's value as text: lists joined with commas, null as "—"."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(map(_plain, value))
    return str(value)


def summary_line(host: str, baseline: str, counts: Mapping[str, int], moved: int = 0) -> str:
    """ "b vs a: 3 slower, 1 faster, 20 same, 4 unclear": verdicts in VERDICTS order.

    ``moved`` of the unclear ones are so because the host's own speed moved as far:
    "4 unclear (3 as the host moved ↕)".
    """
    words = [w for w in VERDICTS if counts.get(w)]
    words += sorted(w for w in counts if w not in VERDICTS and w != "baseline" and counts[w])
    texts = [f"{counts[w]} {w}" for w in words]
    if moved and "unclear" in words:
        texts[words.index("unclear")] += f" ({moved} as the host moved {HOST_MARK})"
    text = ", ".join(texts) or "no figure compared"
    return f"{host} vs {baseline}: {text}"


def _regression_line(regression: Mapping[str, Any], view: CompareView) -> str:
    """One regression: the figure, the host, its ratio, interval and verdict (its id apart)."""
    result_id = _text(regression, "id")
    host = _text(regression, "host")
    label = _text(regression, "label") or result_id or "?"
    verdict = _text(regression, "verdict")
    if not verdict:  # not given: the figure's own comparison says it
        row = next((r for r in view.rows if r.id == result_id), None)
        verdict = _text(row.cells.get(host, {}), "verdict") if row else ""
    ratio = format_value(_finite(regression.get("ratio")), "factor")
    low = format_value(_finite(regression.get("ci_low")), "factor_bound")
    high = format_value(_finite(regression.get("ci_high")), "factor_bound")
    where = f" on {host or '?'}" if len(view.hosts) > 2 else ""  # the one other host: said once
    text = f"{label}{where}: {ratio or '?'}"
    text += f" [{low}–{high}]" if low and high else ""
    text += f" {verdict}" if verdict else ""
    return text


def _regressions_title(view: CompareView) -> str:
    """The head of the regressions block: how many, and what made them regressions."""
    count = len(view.regressions)
    noun = "regression" if count == 1 else "regressions"
    gate = format_value(view.fail_above, "factor")
    if gate:
        return f"{count} {noun}: worse than {view.baseline} by more than --fail-above {gate}"
    band = format_value(view.threshold, "percent")
    beyond = f" beyond ±{band}" if band else ""
    noun = "figure" if count == 1 else "figures"  # no gate: worse, but no regression to fail on
    return f"{count} {noun} worse than {view.baseline}{beyond}"


def _compared(view: CompareView, hidden: int) -> str:
    """What is compared with what; with --changed, how many unchanged figures are hidden."""
    others = [host for host in view.hosts if host != view.baseline]
    text = f"{', '.join(others) or 'no other host'} against {view.baseline}"
    if view.changed_only:
        noun = "figure" if hidden == 1 else "figures"
        text += f" (--changed: {hidden} {noun} the same everywhere not shown)"
    return text


def _legend(view: CompareView, rows: Sequence[CompareRow]) -> str:
    """How to read a cell, and the marks that appear."""
    items = [item for row in rows for item in row.cells.values()]
    marks = "".join(_marks(item) for item in items)
    band = format_value(view.threshold, "percent")
    level = format_value(view.confidence, "percent") or "95 %"
    words = [
        f"cell: median, ratio to {view.baseline}, [its {level} interval] or why none, verdict"
        + (
            f" (same: the interval lies within ±{band}; slower, more…: wholly outside it)"
            if band
            else ""
        )
    ]
    if any(sparkline(item.get("strip")) for item in items):
        words.append("strip: the samples over a range the hosts share")
    if NOISY_MARK in marks:
        words.append(f"{NOISY_MARK} noisy")
    if BIMODAL_MARK in marks:
        words.append(f"{BIMODAL_MARK} bimodal (two clusters)")
    if HOST_MARK in marks:
        words.append(
            f"{HOST_MARK} the host's own speed moved as far (its reference task, timed beside "
            "the figure, changed as much): the runs cannot tell which moved"
        )
    if INTERFERENCE_MARK in marks:
        other = format_value(OTHER_CPU_LIMIT, "percent")
        steal = format_value(STEAL_LIMIT, "percent")
        words.append(
            f"{INTERFERENCE_MARK} other tasks took over {other} of its CPUs' time, "
            f"or the hypervisor stole over {steal}"
        )
    return "; ".join(words)


# -- the terminal table


def _pad(text: str, width: int, right: bool = False) -> str:
    return text.rjust(width) if right else text.ljust(width)


@dataclass(frozen=True)
class _Column:
    """One host's column at one detail level: its lines per row, header lines and width."""

    cells: list[str]
    header: list[str]
    width: int


def _host_column(
    host: str, view: CompareView, rows: Sequence[CompareRow], parts: Sequence[str]
) -> _Column:
    """Lay one host's cells out: each part padded to its widest, parts no row has left out."""
    is_base = host == view.baseline
    texts = [
        compare_cell_parts(row.cells.get(host), is_base, row.cells.get(view.baseline))
        for row in rows
    ]
    used = [p for p in (BASELINE_PARTS if is_base else parts) if any(t[p] for t in texts)]
    widths = {p: max(len(t[p]) for t in texts) for p in used}
    cells = [
        " ".join(_pad(t[p], widths[p], p in RIGHT_ALIGNED) for p in used).rstrip() for t in texts
    ]
    content = sum(widths.values()) + max(len(used) - 1, 0)
    width = max(content, min(len(host), HEADER_MIN))
    if not is_base or len(view.hosts) < 2:
        return _Column(cells, _wrap(host, width, HEADER_LINES), width)
    header = _wrap(f"{host} (baseline)", width, HEADER_LINES)
    if not header[-1].endswith("(baseline)"):  # cut short: keep the word that matters
        header = [*_wrap(host, width, HEADER_LINES - 1), "(baseline)"]
    return _Column(cells, header, width)


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """Wrap text to width in at most ``lines`` lines, the last cut with "…" when it overflows."""
    wrapped = textwrap.wrap(text, width) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1].rstrip() + "…"
    return wrapped


def _layout(view: CompareView, rows: Sequence[CompareRow]) -> tuple[int, list[_Column]]:
    """The figure column's width and the host columns at the richest level that fits."""
    longest = max((len(ROW_INDENT + row.label) for row in rows), default=0)
    want = max(min(longest, LABEL_COMFORT), len("figure"))
    fallback: tuple[int, list[_Column]] | None = None
    for parts in DETAIL_LEVELS:
        columns = [_host_column(host, view, rows, parts) for host in view.hosts]
        room = TABLE_WIDTH - sum(2 + c.width for c in columns)
        if room >= want:
            return min(room, max(longest, len("figure"))), columns
        if fallback is None and room >= LABEL_MIN:
            fallback = room, columns
    if fallback is not None:
        return fallback
    return max(room, LABEL_MIN), columns  # many hosts: wider than TABLE_WIDTH, labels readable


def _compare_grid(view: CompareView) -> list[str]:
    """The grouped table: header, then each section's title and its figures' rows."""
    rows = view.shown
    if not rows:
        return ["no figure changed: every one is the same within the band"]
    label_width, columns = _layout(view, rows)
    depth = max((len(c.header) for c in columns), default=1)
    lines = []
    for line in range(depth):
        words = [_pad("figure" if line == depth - 1 else "", label_width)]
        for column in columns:
            header = [""] * (depth - len(column.header)) + column.header
            words.append(_pad(header[line], column.width))
        lines.append("  ".join(words).rstrip())
    lines.append("  ".join("-" * w for w in [label_width, *(c.width for c in columns)]))
    section = None
    for index, row in enumerate(rows):
        if row.section != section:
            lines += [] if section is None else [""]
            lines.append(SECTION_TITLES.get(row.section, row.section))
            section = row.section
        label = textwrap.wrap(
            row.label,
            label_width,
            initial_indent=ROW_INDENT,
            subsequent_indent=ROW_INDENT * 2,
            break_on_hyphens=False,
        ) or [ROW_INDENT]
        cells = [_pad(column.cells[index], column.width) for column in columns]
        lines.append("  ".join([_pad(label[0], label_width), *cells]).rstrip())
        lines += label[1:]
    return lines


def _differences_grid(view: CompareView) -> list[str]:
    """The host fields that differ: one row per field, one column per host, wrapped to fit."""
    if not view.host_differences:
        return []
    field_width = max(len("host field"), *(len(field) for field, _ in view.host_differences))
    field_width = min(field_width, 30)
    count = max(len(view.hosts), 1)
    room = (TABLE_WIDTH - field_width - 2 * count) // count
    widths = [
        min(room, max(len(host), *(len(values[i]) for _, values in view.host_differences)))
        for i, host in enumerate(view.hosts)
    ]
    widths = [max(w, 1) for w in widths]

    def row(cells: Sequence[str]) -> list[str]:
        wrapped = [_wrap(cells[0], field_width, 3)] + [
            textwrap.wrap(text, width) or [""]
            for text, width in zip(cells[1:], widths, strict=True)
        ]
        out = []
        for line in range(max(len(w) for w in wrapped)):
            words = [
                _pad(w[line] if line < len(w) else "", width)
                for w, width in zip(wrapped, [field_width, *widths], strict=True)
            ]
            out.append("  ".join(words).rstrip())
        return out

    lines = row(["host field", *view.hosts])
    lines.append("  ".join("-" * w for w in [field_width, *widths]))
    for name, values in view.host_differences:
        lines += row([name, *values])
    return lines


def render_compare_table(report: Report) -> str:
    """The compare report for a terminal or a CI log, within TABLE_WIDTH columns."""
    view = compare_view(report.data)
    shown = view.shown
    title = f"ostoolkit compare: {_compared(view, len(view.rows) - len(shown))}"
    parts = textwrap.wrap(title, TABLE_WIDTH, subsequent_indent="  ")
    differences = _differences_grid(view)
    parts += ["", *differences] if differences else []
    parts += ["", *_compare_grid(view)]
    legend = _legend(view, shown)
    parts += ["", *textwrap.wrap(legend, TABLE_WIDTH)] if legend else []
    parts += [""]
    for host, counts in view.summary.items():
        line = summary_line(host, view.baseline, counts, view.host_moved.get(host, 0))
        parts += textwrap.wrap(line, TABLE_WIDTH, subsequent_indent="  ")
    if view.regressions:
        parts += ["", _regressions_title(view) + ":"]
        for regression in view.regressions:
            result_id = _text(regression, "id")
            parts += textwrap.wrap(
                _regression_line(regression, view) + (f" ({result_id})" if result_id else ""),
                TABLE_WIDTH,
                initial_indent="  ✗ ",
                subsequent_indent="    ",
            )
    parts += [""]
    parts += [f"* {finding}" for finding in report.findings]
    parts += [f"warning: {warning}" for warning in report.warnings]
    return "\n".join(parts).rstrip() + "\n"


# -- markdown


def _md(text: str) -> str:
    """Text for a markdown table cell: one line, characters markdown would act on escaped."""
    text = " ".join(text.split())
    for char in "\\`*_~|<":
        text = text.replace(char, "\\" + char)
    return text


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub markdown table of already escaped cells."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def compare_cell_markdown(
    item: Mapping[str, Any] | None,
    is_baseline: bool = False,
    base: Mapping[str, Any] | None = None,
) -> str:
    """One host's figure for a markdown table: a verdict other than same in bold, its reason."""
    parts = compare_cell_parts(item, is_baseline, base)
    verdict = parts["verdict"]
    if verdict and verdict != "same":
        verdict = f"**{verdict}**"
    if parts["reason"]:
        verdict += f" ({_md(parts['reason'])})"
    interval = "" if parts["interval"] == parts["reason"] else parts["interval"]
    words = [
        _md(parts["value"]),
        _md(parts["ratio"]),
        _md(interval),
        verdict,
        parts["strip"],
        _md(parts["marks"]),
    ]
    return " ".join(word for word in words if word)


def _chart_text(text: str, limit: int = 48) -> str:
    """Text inside a mermaid string: no double quotes or backticks, one line, cut to limit."""
    text = " ".join(text.replace('"', "'").replace("`", "'").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _chart_number(value: float) -> str:
    """A number as mermaid's grammar takes it: plain decimals, no exponent, no separators."""
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def mermaid_chart(view: CompareView, host: str) -> list[str]:
    """A mermaid xychart of one host's headline figures relative to the baseline (= 1).

    Horizontal bars, one per headline figure with a ratio, and a line at 1 for the baseline;
    [] when the host has no headline figure with a ratio. One chart per host, since
    xychart-beta draws no legend that could tell several hosts' bars apart.
    """
    points = []
    for row in view.rows:
        ratio = _finite(row.cells.get(host, {}).get("ratio")) if row.headline else None
        if ratio is not None:
            points.append((row.label, ratio))
    if not points:
        return []
    top = max(1.0, *(ratio for _, ratio in points))
    upper = math.ceil(top * 1.1 * 4) / 4  # room beyond the longest bar, in steps of 0.25
    labels = ", ".join(f'"{_chart_text(label)}"' for label, _ in points)
    base = _chart_text(view.baseline, 60)
    return [
        "```mermaid",
        "xychart-beta horizontal",
        f'    title "{_chart_text(host, 60)}: headline figures"',
        f"    x-axis [{labels}]",
        f'    y-axis "ratio to {base} (= 1)" 0 --> {_chart_number(upper)}',
        f"    bar [{', '.join(_chart_number(ratio) for _, ratio in points)}]",
        f"    line [{', '.join('1' for _ in points)}]",
        "```",
    ]


def render_compare_markdown(report: Report) -> str:
    """The compare report in GitHub markdown: summary, regressions, charts, grouped tables."""
    view = compare_view(report.data)
    shown = view.shown
    parts = ["### ostoolkit compare", ""]
    parts += [f"_{_md(_compared(view, len(view.rows) - len(shown)))}_", ""]
    parts += [
        f"- {_md(summary_line(host, view.baseline, counts, view.host_moved.get(host, 0)))}"
        for host, counts in view.summary.items()
    ]
    if view.regressions:
        parts += ["", f"**{_md(_regressions_title(view))}:**", ""]
        for regression in view.regressions:
            result_id = _text(regression, "id")
            code = f" (`{result_id}`)" if result_id and "`" not in result_id else ""
            parts.append(f"- ✗ {_md(_regression_line(regression, view))}{code}")
    if view.host_differences:
        headers = ["host field", *(_md(h) for h in view.hosts)]
        fields = [[_md(field), *map(_md, values)] for field, values in view.host_differences]
        parts += ["", *_md_table(headers, fields)]
    for host in view.hosts:
        chart = [] if host == view.baseline else mermaid_chart(view, host)
        parts += ["", *chart] if chart else []
    headers = [
        "figure",
        *(_md(f"{h} (baseline)" if h == view.baseline else h) for h in view.hosts),
    ]
    if not shown:
        parts += ["", "_no figure changed: every one is the same within the band_"]
    for title, rows in view.sections():
        table = []
        for row in rows:
            base = row.cells.get(view.baseline)
            cells = [
                compare_cell_markdown(row.cells.get(h), h == view.baseline, base)
                for h in view.hosts
            ]
            table.append([_md(row.label), *cells])
        parts += ["", f"#### {_md(title)}", "", *_md_table(headers, table)]
    legend = _legend(view, shown)
    parts += ["", f"_{_md(legend)}_"] if legend else []
    parts += [""]
    parts += [f"- {finding}" for finding in report.findings]
    parts += [f"- ⚠️ {warning}" for warning in report.warnings]
    return "\n".join(parts).rstrip() + "\n"


def render(report: Report, fmt: str, full_host: bool = False) -> str:
    """Render in one of FORMATS."""
    if fmt == "json":
        return report.to_json()
    if fmt == "markdown":
        return render_markdown(report, full_host)
    if fmt == "table":
        return render_table(report, full_host)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
