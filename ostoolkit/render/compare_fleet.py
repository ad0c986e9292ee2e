"""The compare report's fleet view (``data.view`` "fleet"): per figure the spread across the
hosts and the hosts far out of it, the fingerprint groups, and the hosts most often far out;
as a 120-column table and as markdown. Reads ``data.fleet`` defensively, computes nothing.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from ostoolkit.render.charts import SpreadPoint, mermaid_spread_chart, spread_caption
from ostoolkit.render.compare import (
    SECTION_TITLES,
    compare_view,
    regression_line,
    regressions_title,
    text_field,
)
from ostoolkit.render.tables import finish, md_table, md_text
from ostoolkit.report import Report
from ostoolkit.stats import finite
from ostoolkit.units import format_range, format_value

TABLE_WIDTH = 120
LABEL_WIDTH = 34  # the figure column of the table
GROUP_COLUMNS = 3  # group medians shown as columns when there are at most this many groups
FAR_OUT_SHOWN = 3  # far-out hosts named in a markdown cell; the rest counted
MEMBERS_SHOWN = 4  # a group's hosts named; the rest counted
REGRESSIONS_SHOWN = 20


def is_fleet(report: Report) -> bool:
    """Whether a compare report is to be shown as a fleet."""
    return report.data.get("view") == "fleet" and isinstance(report.data.get("fleet"), Mapping)


def _fleet(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data.fleet``, or {} where absent or ill-typed."""
    fleet = data.get("fleet")
    return fleet if isinstance(fleet, Mapping) else {}


def _items(value: Any) -> list[Mapping[str, Any]]:
    """The mappings of a JSON list, [] for anything else."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _value(figure: Mapping[str, Any], key: str) -> str:
    """A number of the figure in its unit, "?" where unknown."""
    return format_value(finite(figure.get(key)), text_field(figure, "unit")) or "?"


def _range(figure: Mapping[str, Any]) -> str:
    """The hosts' p10 to p90, "1.98–2.21 µs"."""
    unit = text_field(figure, "unit")
    return format_range(finite(figure.get("p10")), finite(figure.get("p90")), unit)


def far_out_text(out: Mapping[str, Any]) -> str:
    """One far-out host: "ci-17 1.42× [1.35–1.50]", or "(one run)" where not judged."""
    ratio = format_value(finite(out.get("ratio")), "factor") or "?"
    if out.get("judged") is not True:
        return f"{text_field(out, 'host')} {ratio} ({text_field(out, 'reason') or 'not judged'})"
    low, high = (
        format_value(finite(out.get(end)), "factor_bound") for end in ("ci_low", "ci_high")
    )
    interval = f" [{low}–{high}]" if low and high and low != high else ""
    return f"{text_field(out, 'host')} {ratio}{interval}"


def _groups_line(groups: Sequence[Mapping[str, Any]]) -> str:
    """The groups in short: "G1 60 hosts, G2 40 hosts"."""
    return ", ".join(f"{text_field(g, 'name')} {len(_members(g))} hosts" for g in groups)


def _members(group: Mapping[str, Any]) -> list[str]:
    hosts = group.get("hosts")
    return [h for h in hosts if isinstance(h, str)] if isinstance(hosts, list) else []


def _fingerprint(group: Mapping[str, Any]) -> str:
    """A group's values of the fingerprint fields that differ: "CPU model: X; kernel: 6.1"."""
    given = group.get("fingerprint")
    fields = given.items() if isinstance(given, Mapping) else []
    return "; ".join(f"{field}: {'—' if value is None else value}" for field, value in fields)


def _named(names: Sequence[str], shown: int) -> str:
    """The first ``shown`` names, and how many more."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" (+{more})" if more > 0 else "")


def headline_text(data: Mapping[str, Any]) -> str:
    """What the fleet view shows: how many hosts, in how many groups, and the rule."""
    groups = _items(_fleet(data).get("groups"))
    hosts = data.get("hosts")
    count = len(hosts) if isinstance(hosts, list) else 0
    reach = format_value(finite(_fleet(data).get("fence_iqr")), "count") or "?"
    band = format_value(finite(data.get("threshold")), "percent")
    level = format_value(finite(data.get("confidence")), "percent") or "95 %"
    grouping = f" in {len(groups)} fingerprint groups" if len(groups) > 1 else ""
    return (
        f"{count} hosts{grouping}: per figure the hosts' medians (p10–p90) and the hosts "
        f"far out of them: beyond {reach} interquartile ranges past the quartiles, or ±{band} if "
        f"farther, by their whole {level} interval (ratios to the fleet's median)"
    )


def most_often_text(data: Mapping[str, Any]) -> str:
    """The hosts far out of the most figures, or that none is."""
    counts = _fleet(data).get("far_out_hosts")
    given = counts.items() if isinstance(counts, Mapping) else []
    ranked = [(host, count) for host, count in given if isinstance(count, int)]
    if not ranked:
        return "no host is far out of any figure"
    named = [f"{host} ({count})" for host, count in ranked[:8]]
    more = f" and {len(ranked) - 8} more" if len(ranked) > 8 else ""
    return f"far out most often (figures): {', '.join(named)}{more}"


def _group_names(groups: Sequence[Mapping[str, Any]]) -> list[str]:
    return [text_field(g, "name") for g in groups] if 1 < len(groups) <= GROUP_COLUMNS else []


def _wrapped(text: str, first: str, rest: str, lines: int | None = None) -> list[str]:
    """Text wrapped to TABLE_WIDTH under its indents, cut with " …" past ``lines`` lines."""
    return textwrap.wrap(
        text,
        TABLE_WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        max_lines=lines,
        placeholder=" …",
        break_on_hyphens=False,
    )


def _group_value(figure: Mapping[str, Any], name: str) -> str:
    """A group's median of the figure, "—" where the group has none."""
    given = figure.get("groups")
    value = finite(given.get(name)) if isinstance(given, Mapping) else None
    return format_value(value, text_field(figure, "unit")) or "—"


def _hosts(figure: Mapping[str, Any]) -> int:
    count = figure.get("hosts")
    return count if isinstance(count, int) else 0


def _table_row(figure: Mapping[str, Any], names: Sequence[str]) -> str:
    """One figure's line of the table: label, hosts, median, p10–p90, each group's median."""
    label = text_field(figure, "label")
    label = label if len(label) <= LABEL_WIDTH else label[: LABEL_WIDTH - 1] + "…"
    median, spread = _value(figure, "median"), _range(figure)
    line = f"  {label:<{LABEL_WIDTH}} {_hosts(figure):>5}  {median:>10}  {spread:<20}"
    for name in names:
        line += f" {_group_value(figure, name):>10}"
    return line.rstrip()


def render_fleet_table(report: Report) -> str:
    """The fleet view for a terminal or a CI log, within TABLE_WIDTH columns."""
    data = report.data
    groups = _items(_fleet(data).get("groups"))
    figures = _items(_fleet(data).get("figures"))
    parts = _wrapped(f"ostoolkit compare (fleet): {headline_text(data)}", "", "  ")
    if len(groups) > 1:
        parts += ["", "fingerprint groups:"]
        for group in groups:
            members = _members(group)
            line = f"{text_field(group, 'name')}  {len(members)} hosts  {_fingerprint(group)}"
            parts += _wrapped(line, "  ", "      ")
            parts += _wrapped(_named(members, MEMBERS_SHOWN), "      ", "      ")
    names = _group_names(groups)
    header = f"  {'figure':<{LABEL_WIDTH}} {'hosts':>5}  {'median':>10}  {'p10–p90':<20}"
    header += "".join(f" {name:>10}" for name in names)
    for section, rows in itertools.groupby(figures, key=lambda f: text_field(f, "section")):
        parts += ["", SECTION_TITLES.get(section, section), header]
        for figure in rows:
            parts.append(_table_row(figure, names))
            far = [far_out_text(out) for out in _items(figure.get("far_out"))]
            parts += _wrapped("; ".join(far), "      far out: ", "        ", 3) if far else []
    if not figures:
        parts += ["", "no figure in common"]
    parts += ["", *_wrapped(most_often_text(data), "", "  ")]
    parts += _regressions(report, markdown=False)
    return finish([*parts, ""], report, markdown=False)


def _markdown_row(figure: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """One figure's markdown row: label, hosts, median (p10–p90), by group, far-out hosts."""
    far = [far_out_text(out) for out in _items(figure.get("far_out"))]
    more = len(far) - FAR_OUT_SHOWN
    cell = "; ".join(md_text(text) for text in far[:FAR_OUT_SHOWN])
    cell += f" (+{more})" if more > 0 else ""
    row = [
        md_text(text_field(figure, "label")),
        str(_hosts(figure)),
        md_text(f"{_value(figure, 'median')} ({_range(figure)})"),
    ]
    if names:
        row.append(md_text("; ".join(f"{name} {_group_value(figure, name)}" for name in names)))
    return [*row, cell or "—"]


def spread_points(figures: Sequence[Mapping[str, Any]]) -> list[SpreadPoint]:
    """The headline figures' spreads as ratios to the fleet's median, for the chart; a figure
    without a positive median or a number left out."""
    points = []
    for figure in figures:
        if figure.get("headline") is not True:
            continue
        centre = finite(figure.get("median"))
        ends = [finite(figure.get(key)) for key in ("lowest", "p10", "p90", "highest")]
        if centre is None or centre <= 0 or any(end is None for end in ends):
            continue
        lowest, p10, p90, highest = (float(end or 0) / centre for end in ends)
        points.append(SpreadPoint(text_field(figure, "label"), lowest, p10, p90, highest))
    return points


def render_fleet_markdown(report: Report) -> str:
    """The fleet view in GitHub markdown: groups, then a table per section within six columns."""
    data = report.data
    groups = _items(_fleet(data).get("groups"))
    figures = _items(_fleet(data).get("figures"))
    parts = ["### ostoolkit compare (fleet)", "", f"_{md_text(headline_text(data))}_"]
    if len(groups) > 1:
        rows = [
            [
                md_text(text_field(g, "name")),
                str(len(_members(g))),
                md_text(_fingerprint(g)),
                md_text(_named(_members(g), MEMBERS_SHOWN)),
            ]
            for g in groups
        ]
        parts += ["", *md_table(["group", "hosts", "fingerprint", "members"], rows)]
    chart = mermaid_spread_chart(spread_points(figures))
    parts += ["", *chart, "", f"_{md_text(spread_caption())}_"] if chart else []
    names = _group_names(groups)
    for section, members in itertools.groupby(figures, key=lambda f: text_field(f, "section")):
        table = [_markdown_row(figure, names) for figure in members]
        headers = ["figure", "hosts", "median (p10–p90)", *(["by group"] * bool(names))]
        title = md_text(SECTION_TITLES.get(section, section))
        parts += ["", f"#### {title}", "", *md_table([*headers, "far out"], table)]
    if not figures:
        parts += ["", "_no figure in common_"]
    parts += ["", f"_{md_text(most_often_text(data))}_"]
    parts += _regressions(report, markdown=True)
    return finish([*parts, ""], report, markdown=True)


def _regressions(report: Report, markdown: bool) -> list[str]:
    """The regressions against the baseline with --fail-above (without its gate, a fleet's
    every worse figure against one host says little), the first REGRESSIONS_SHOWN."""
    view = compare_view(report.data)
    if not view.regressions or view.fail_above is None:
        return []
    lines = [f"{regressions_title(view)}:"]
    shown = view.regressions[:REGRESSIONS_SHOWN]
    more = len(view.regressions) - len(shown)
    if markdown:
        lines = ["", f"**{md_text(lines[0])}**", ""]
        lines += [f"- ✗ {md_text(regression_line(r, view))}" for r in shown]
        lines += [f"- … and {more} more (the JSON lists every one)"] if more > 0 else []
        return lines
    lines = ["", lines[0]]
    for regression in shown:
        lines += _wrapped(regression_line(regression, view), "  ✗ ", "    ")
    lines += [f"  … and {more} more (the JSON lists every one)"] if more > 0 else []
    return lines
