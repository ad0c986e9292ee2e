"""The compare report in GitHub markdown: summary, regressions, mermaid charts, grouped tables.

For step summaries and issues; cells come from compare.compare_cell_parts, escaped for markdown.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ostoolkit.render.charts import RatioPoint, mermaid_ratio_chart, ratio_caption
from ostoolkit.render.compare import (
    SECTION_TITLES,
    CompareView,
    Item,
    compare_cell_parts,
    compare_view,
    compared_line,
    legend_text,
    regression_line,
    regressions_title,
    text_field,
)
from ostoolkit.render.tables import MARKDOWN_COLUMNS, finish, md_table, md_text
from ostoolkit.report import Report
from ostoolkit.stats import finite
from ostoolkit.units import format_value


def _md(text: str) -> str:
    """Text for markdown: ``tables.md_text``, the one escaping rule of every markdown view."""
    return md_text(text)


def _host_groups(hosts: Sequence[str], baseline: str) -> list[list[str]]:
    """The hosts in groups that fit a markdown table beside the figure's column: each group
    the baseline first, then as many others as MARKDOWN_COLUMNS leaves room for."""
    if len(hosts) + 1 <= MARKDOWN_COLUMNS:
        return [list(hosts)]
    others = [host for host in hosts if host != baseline]
    room = MARKDOWN_COLUMNS - 2
    count = -(-len(others) // room)
    size = -(-len(others) // count)
    return [[baseline, *others[i : i + size]] for i in range(0, len(others), size)]


def compare_cell_markdown(
    item: Item | None, is_baseline: bool = False, base: Item | None = None
) -> str:
    """One host's figure for a markdown table: a verdict other than same in bold, its reason."""
    parts = compare_cell_parts(item, is_baseline, base)
    verdict = parts["verdict"]
    if verdict and verdict != "same":
        verdict = f"**{verdict}**"
    if parts["reason"]:
        verdict += f" ({_md(parts['reason'])})"
    interval = "" if parts["interval"] == parts["reason"] else parts["interval"]
    words = [_md(parts["value"]), _md(parts["ratio"]), _md(interval), verdict, parts["strip"]]
    return " ".join(word for word in [*words, _md(parts["marks"])] if word)


def mermaid_chart(view: CompareView, host: str) -> list[str]:
    """A mermaid chart of one host's headline figures, each a ratio to the baseline with its
    interval (``charts.mermaid_ratio_chart``); [] without one. One per
    host: xychart-beta draws no legend to tell hosts apart."""
    points = []
    for row in view.rows:
        item = row.cells.get(host, {})
        ratio = finite(item.get("ratio")) if row.headline else None
        if ratio is not None:
            low, high = finite(item.get("ci_low")), finite(item.get("ci_high"))
            points.append(RatioPoint(row.label, ratio, low, high, text_field(item, "unit")))
    return mermaid_ratio_chart(host, view.baseline, points)


def render_compare_markdown(report: Report) -> str:
    """The compare report in GitHub markdown: summary, regressions, charts, grouped tables."""
    view = compare_view(report.data)
    shown = view.shown
    parts = ["### ostoolkit compare", ""]
    parts += [f"_{_md(compared_line(view))}_", ""]
    parts += [f"- {_md(line)}" for line in view.summaries]
    if view.regressions:
        parts += ["", f"**{_md(regressions_title(view))}:**", ""]
        for regression in view.regressions:
            result_id = text_field(regression, "id")
            code = f" (`{result_id}`)" if result_id and "`" not in result_id else ""
            parts.append(f"- ✗ {_md(regression_line(regression, view))}{code}")
    groups = _host_groups(view.hosts, view.baseline)
    for group in groups if view.host_differences else []:
        headers = ["host field", *(_md(h) for h in group)]
        fields = [
            [_md(field), *(_md(values[view.hosts.index(h)]) for h in group)]
            for field, values in view.host_differences
        ]
        parts += ["", *md_table(headers, fields)]
    charts = [mermaid_chart(view, host) for host in view.hosts if host != view.baseline]
    for chart in charts:
        parts += ["", *chart] if chart else []
    if any(charts):
        level = format_value(view.confidence, "percent") or "95 %"
        parts += ["", f"_{_md(ratio_caption(view.baseline, level))}_"]
    if not shown:
        parts += ["", "_no figure changed: every one is the same within the band_"]
    for section, section_rows in itertools.groupby(shown, key=lambda row: row.section):
        rows = list(section_rows)
        title = _md(SECTION_TITLES.get(section, section))
        parts += ["", f"#### {title}"]
        for group in groups:  # more hosts than a table's columns: one table per group
            headers = [
                "figure",
                *(_md(f"{h} (baseline)" if h == view.baseline else h) for h in group),
            ]
            table = [
                [
                    _md(row.label),
                    *(
                        compare_cell_markdown(
                            row.cells.get(h), h == view.baseline, row.cells.get(view.baseline)
                        )
                        for h in group
                    ),
                ]
                for row in rows
            ]
            parts += ["", *md_table(headers, table)]
    parts += ["", f"_{_md(legend_text(view))}_", ""]
    return finish(parts, report, markdown=True)
