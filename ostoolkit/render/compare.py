"""The compare report's data read into rows and cells, and the words around them.

Shared by compare_table and compare_markdown: ``data.comparisons`` grouped by figure and
section, each host's cell part by part, the strips, marks, summary lines and the legend.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ostoolkit.report import METHOD_CHANGED, Report
from ostoolkit.stats import EXACT, HOST_MOVED, ONE_RUN, OTHER_CPU_LIMIT, STEAL_LIMIT, finite
from ostoolkit.units import format_figure, format_value

Item = Mapping[str, Any]  # one object of data.comparisons or data.regressions, read defensively

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
VERDICTS = (
    "slower",
    "faster",
    "more",
    "less",
    "higher",
    "lower",
    "same",
    "unclear",
    "not judged",
    "missing",
)
QUIET_VERDICTS = ("same", "baseline")  # rows of only these are hidden by --changed
# Context beside a figure, never its verdict, and what each mark means, in the legend's order:
# its samples' status; "!" for interference beyond the limits that make a figure noisy
# (stats.judge_noise: other tasks' share of the measured CPUs' time, the hypervisor's steal);
# "↕" when the host's own speed reference moved as far as the figure (stats.HOST_MOVED:
# unclear); "#" when a CPU quota stopped the measured tasks (cgroup): the worst interference.
STATUS_MARKS = {"noisy": "~", "bimodal": "²", "throttled": "#"}
INTERFERENCE_MARK = "!"
HOST_MARK = "↕"
MARK_MEANINGS = {
    "~": "noisy",
    "²": "bimodal (two clusters)",
    HOST_MARK: "the host's own speed moved as far (its reference task, timed beside the figure, "
    "changed as much): the runs cannot tell which moved",
    "#": "throttled: a CPU quota (cgroup) stopped its tasks",
    INTERFERENCE_MARK: f"other tasks took over {format_value(OTHER_CPU_LIMIT, 'percent')} of "
    f"its CPUs' time, or the hypervisor stole over {format_value(STEAL_LIMIT, 'percent')}",
}
# Why a verdict came out as it did (compare.engine and stats.judge_shift word it), as a cell
# says it: only where it adds to what the cell shows. A reason that restates the verdict or the
# interval is left out; so is every reason of a figure with an interval, which shows its width
# itself. Reasons not listed are said as they are ("few samples": "3 samples" when the counts
# are known; "one run" and "exact" in place of the interval, as why there is none).
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
}
# The parts of a host's cell, in order; "interval" holds the reason when there is no interval.
# Parts that no row of a column has are left out; when the table would be wider than
# compare_table.TABLE_WIDTH, later detail levels leave out more (the baseline column always
# shows its value and strip).
CELL_PARTS = ("value", "ratio", "interval", "verdict", "strip", "marks")


def is_compare(report: Report) -> bool:
    """Whether this is a compare report carrying its comparisons as data."""
    return isinstance(report.data.get("comparisons"), list)


def sparkline(counts: Sequence[Any] | None) -> str:
    """Bin counts as a strip of block characters scaled to the fullest bin, "" without bins:
    ``[0, 1, 4, 8, 2, 0, 0, 1]`` gives ``"▁▃▅█▄▁▁▃"`` (anything not a count is empty)."""
    if not isinstance(counts, (list, tuple)) or not counts:
        return ""
    values = [finite(count) or 0.0 for count in counts]
    top = max(values)
    if top <= 0:
        return SPARK_FLOOR * len(values)
    steps = len(SPARK_LEVELS) - 1
    return "".join(
        SPARK_LEVELS[int(value / top * steps + 0.5)] if value > 0 else SPARK_FLOOR
        for value in values
    )


def text_field(item: Item, key: str) -> str:
    """A string field, or "" when it is absent or not a string."""
    value = item.get(key)
    return value if isinstance(value, str) else ""


def _marks(item: Item) -> str:
    """The context marks of one host's figure: noisy or bimodal samples, interference."""
    marks = STATUS_MARKS.get(text_field(item, "status"), "")
    other = finite(item.get("other_cpu_share")) or 0.0
    steal = finite(item.get("steal_share")) or 0.0
    if other > OTHER_CPU_LIMIT or steal > STEAL_LIMIT:
        marks += INTERFERENCE_MARK
    if text_field(item, "reason") == HOST_MOVED:
        marks += HOST_MARK
    return marks


def reason_text(item: Item, base: Item | None = None) -> str:
    """The reason of a verdict as a cell shows it (REASON_TEXT), "" when it adds nothing; with
    the baseline's comparison, "few samples" names the smaller count: "3 samples"."""
    reason = text_field(item, "reason")
    if reason == HOST_MOVED:  # said even beside an interval: it is why there is no verdict
        host = format_value(finite(item.get("host_ratio")), "factor")
        return f"host {host}" if host else reason
    if reason == METHOD_CHANGED:  # "method changed: switch 1 -> 2"
        versions = [_plain((c or {}).get("method")) for c in (base, item)]
        return f"{reason}: {text_field(item, 'section')} {versions[0]} -> {versions[1]}"
    if _interval(item):
        return ""
    if reason == "few samples":
        counts = [finite(c.get("n")) for c in (item, base) if c is not None]
        known = [int(n) for n in counts if n is not None and n > 0]
        return f"{min(known)} samples" if known else reason
    return REASON_TEXT.get(reason, reason)


def _interval(item: Item) -> str:
    """The interval of a comparison's ratio, "[1.03–1.11]"; "" without both ends."""
    low, high = (
        format_value(finite(item.get(end)), "factor_bound") for end in ("ci_low", "ci_high")
    )
    return f"[{low}–{high}]" if low and high else ""


def compare_cell_parts(
    item: Item | None, is_baseline: bool, base: Item | None = None
) -> dict[str, str]:
    """The text of one host's figure, part by part (CELL_PARTS), "" where unknown: "—" for a
    missing figure, no verdict for the baseline's; ``base``: the baseline's comparison."""
    parts = dict.fromkeys([*CELL_PARTS, "reason"], "")
    if item is None:
        parts["value"] = "—"
        return parts
    median, resolution = finite(item.get("median")), finite(item.get("resolution"))
    unit = text_field(item, "unit")
    parts["value"] = "—" if median is None else format_figure(median, unit, resolution)
    parts["strip"] = sparkline(item.get("strip"))
    parts["marks"] = _marks(item)
    if is_baseline:
        return parts
    parts["ratio"] = format_value(finite(item.get("ratio")), "factor")
    reason = text_field(item, "reason")
    if reason in (ONE_RUN, EXACT):  # an interval that decides nothing
        parts["reason"] = parts["interval"] = reason
    else:
        parts["reason"] = reason_text(item, base)
        parts["interval"] = _interval(item) or parts["reason"]
    verdict = text_field(item, "verdict")
    parts["verdict"] = "" if verdict == "baseline" else verdict
    return parts


def compare_cell(item: Item | None, is_baseline: bool = False, base: Item | None = None) -> str:
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
    cells: dict[str, Item]

    def changed(self, hosts: Sequence[str]) -> bool:
        """Whether any host's verdict is other than same/baseline (an absent one counts)."""
        return any(
            host not in self.cells or text_field(self.cells[host], "verdict") not in QUIET_VERDICTS
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
    rows: list[CompareRow]  # every figure, a section's together, headline figures first
    summaries: list[str]  # summary_line of each host but the baseline
    regressions: list[Item]
    host_differences: list[tuple[str, list[str]]]
    fail_above: float | None

    @property
    def shown(self) -> list[CompareRow]:
        """The rows the tables show: all of them, or with --changed the changed ones."""
        return [row for row in self.rows if not self.changed_only or row.changed(self.hosts)]


def compare_view(data: Mapping[str, Any]) -> CompareView:
    """Read a compare report's data; a missing or ill-typed field is empty, never a crash."""
    items = [c for c in data.get("comparisons") or [] if isinstance(c, Mapping)]
    given = data.get("hosts")
    hosts = [h for h in given if isinstance(h, str)] if isinstance(given, list) else []
    for item in items:  # hosts named only by their comparisons come after the given ones
        host = text_field(item, "host")
        if host and host not in hosts:
            hosts.append(host)
    marked = [text_field(c, "host") for c in items if text_field(c, "verdict") == "baseline"]
    baseline = text_field(data, "baseline") or next(iter(marked), "") or next(iter(hosts), "")
    moved = Counter(text_field(c, "host") for c in items if text_field(c, "reason") == HOST_MOVED)
    methods: dict[str, list[str]] = {}  # per host, the sections whose method changed
    for item in items:
        section = text_field(item, "section")
        if text_field(item, "reason") == METHOD_CHANGED:
            sections = methods.setdefault(text_field(item, "host"), [])
            if section not in sections:
                sections.append(section)
    counts = {h: _verdict_counts(data.get("summary"), items, h) for h in hosts if h != baseline}
    return CompareView(
        hosts=hosts,
        baseline=baseline,
        threshold=finite(data.get("threshold")),
        confidence=finite(data.get("confidence")),
        changed_only=data.get("changed_only") is True,
        rows=_compare_rows(items),
        summaries=[
            summary_line(h, baseline, c, moved[h], methods.get(h, ())) for h, c in counts.items()
        ],
        regressions=[r for r in data.get("regressions") or [] if isinstance(r, Mapping)],
        host_differences=_differences(data.get("host_differences"), len(hosts)),
        fail_above=finite(data.get("fail_above")),
    )


def _compare_rows(items: Sequence[Item]) -> list[CompareRow]:
    """One row per figure id: sections in SECTION_TITLES order (others after), headline first."""
    by_id: dict[str, list[Item]] = {}
    for item in items:
        by_id.setdefault(text_field(item, "id") or "?", []).append(item)
    rows = []
    for result_id, group in by_id.items():
        cells = {text_field(item, "host"): item for item in reversed(group)}  # a host's first
        label, section = (_first(group, key) for key in ("label", "section"))
        headline = any(c.get("headline") is True for c in group)
        rows.append(CompareRow(result_id, label or result_id, section or "other", headline, cells))
    order = {key: index for index, key in enumerate(SECTION_TITLES)}
    seen = {row.section: index for index, row in reversed(list(enumerate(rows)))}

    def rank(row: CompareRow) -> tuple[int, int, bool]:
        return order.get(row.section, len(order)), seen[row.section], not row.headline

    return sorted(rows, key=rank)  # stable: within those keys, the engine's order stays


def _first(items: Sequence[Item], key: str) -> str:
    """The first non-empty text of a field among the items, or ""."""
    return next((text_field(item, key) for item in items if text_field(item, key)), "")


def _verdict_counts(summary: Any, items: Sequence[Item], host: str) -> dict[str, int]:
    """A host's verdict counts: data.summary's, else counted from its comparisons."""
    words = summary.get(host) if isinstance(summary, Mapping) else None
    if isinstance(words, Mapping):
        return {w: int(n) for w, n in words.items() if isinstance(w, str) and finite(n)}
    verdicts = [text_field(c, "verdict") for c in items if text_field(c, "host") == host]
    return dict(Counter(verdict for verdict in verdicts if verdict))


def _differences(given: Any, hosts: int) -> list[tuple[str, list[str]]]:
    """The host block's rows: a readable field name and one text per host."""
    rows = []
    for row in given if isinstance(given, list) else []:
        if not isinstance(row, Mapping):
            continue
        values = row.get("values")
        texts = [_plain(v) for v in values] if isinstance(values, list) else []
        if text_field(row, "key").startswith("tool."):  # a report before 0.2.0 has none
            texts = ["unknown" if text == "—" else text for text in texts]
        rows.append((_plain(row.get("field")), (texts + [""] * hosts)[:hosts]))
    return rows


def _plain(value: Any) -> str:
    """A host field's value as text: lists joined with commas, null as "—"."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(map(_plain, value))
    return str(value)


def summary_line(
    host: str,
    baseline: str,
    counts: Mapping[str, int],
    moved: int = 0,
    method_changed: Sequence[str] = (),
) -> str:
    """ "b vs a: 3 slower, 1 faster, 20 same, 4 unclear (3 as the host moved ↕)": verdicts in
    VERDICTS order, ``moved`` of the unclear ones so as the host's own speed moved as far;
    ``method_changed``: the sections whose figures are not judged as their method changed."""
    words = [w for w in VERDICTS if counts.get(w)]
    words += sorted(w for w in counts if w not in VERDICTS and w != "baseline" and counts[w])
    texts = [f"{counts[w]} {w}" for w in words]
    if moved and "unclear" in words:
        texts[words.index("unclear")] += f" ({moved} as the host moved {HOST_MARK})"
    if method_changed and "not judged" in words:
        texts[words.index("not judged")] += f" (method changed: {', '.join(method_changed)})"
    text = ", ".join(texts) or "no figure compared"
    return f"{host} vs {baseline}: {text}"


def regression_line(regression: Item, view: CompareView) -> str:
    """One regression: the figure, the host, its ratio, interval and verdict (its id apart)."""
    result_id = text_field(regression, "id")
    host = text_field(regression, "host")
    label = text_field(regression, "label") or result_id or "?"
    verdict = text_field(regression, "verdict")
    if not verdict:  # not given: the figure's own comparison says it
        row = next((r for r in view.rows if r.id == result_id), None)
        verdict = text_field(row.cells.get(host, {}), "verdict") if row else ""
    ratio = format_value(finite(regression.get("ratio")), "factor")
    where = f" on {host or '?'}" if len(view.hosts) > 2 else ""  # the one other host: said once
    words = (f"{label}{where}: {ratio or '?'}", _interval(regression), verdict)
    return " ".join(word for word in words if word)


def regressions_title(view: CompareView) -> str:
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


def compared_line(view: CompareView) -> str:
    """What is compared with what; with --changed, how many unchanged figures are hidden."""
    others = [host for host in view.hosts if host != view.baseline]
    text = f"{', '.join(others) or 'no other host'} against {view.baseline}"
    if view.changed_only:
        hidden = len(view.rows) - len(view.shown)
        noun = "figure" if hidden == 1 else "figures"
        text += f" (--changed: {hidden} {noun} the same everywhere not shown)"
    return text


def legend_text(view: CompareView) -> str:
    """How to read a cell, and the marks that appear in the rows shown."""
    items = [item for row in view.shown for item in row.cells.values()]
    marks = "".join(_marks(item) for item in items)
    band = format_value(view.threshold, "percent")
    level = format_value(view.confidence, "percent") or "95 %"
    cell = f"cell: median, ratio to {view.baseline}, [its {level} interval] or why none, verdict"
    if band:
        cell += f" (same: the interval lies within ±{band}; slower, more…: wholly outside it)"
    words = [cell]
    if any(sparkline(item.get("strip")) for item in items):
        words.append("strip: the samples over a range the hosts share")
    words += [f"{mark} {meaning}" for mark, meaning in MARK_MEANINGS.items() if mark in marks]
    return "; ".join(words)
