"""The compare report as a plain-text table for a terminal or a CI log, within TABLE_WIDTH.

Grouped by section, one column per host, each cell laid out part by part at the richest
detail level that fits; then the legend, a summary line per host and the regressions.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from ostoolkit.render.compare import (
    CELL_PARTS,
    SECTION_TITLES,
    CompareRow,
    CompareView,
    compare_cell_parts,
    compare_view,
    compared_line,
    legend_text,
    regression_line,
    regressions_title,
    text_field,
)
from ostoolkit.render.tables import finish
from ostoolkit.report import Report

# The layout: a cell's parts right-aligned or not, the detail levels tried in turn while the
# table is too wide, and the widths of the figure and host columns.
TABLE_WIDTH = 120  # a CI log: the table fits this many columns for up to three hosts
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


def _side_by_side(columns: Sequence[Sequence[str]], widths: Sequence[int]) -> list[str]:
    """Columns of lines side by side, top-aligned, each padded to its width, two spaces apart."""
    rows = itertools.zip_longest(*columns, fillvalue="")
    return ["  ".join(map(str.ljust, row, widths)).rstrip() for row in rows]


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
    pad = {p: str.rjust if p in RIGHT_ALIGNED else str.ljust for p in used}
    cells = [" ".join(pad[p](t[p], widths[p]) for p in used).rstrip() for t in texts]
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
    # none fits: the richest level that leaves LABEL_MIN, else (many hosts) wider, labels readable
    return fallback or (max(room, LABEL_MIN), columns)


def _compare_grid(view: CompareView) -> list[str]:
    """The grouped table: header, then each section's title and its figures' rows."""
    rows = view.shown
    if not rows:
        return ["no figure changed: every one is the same within the band"]
    label_width, columns = _layout(view, rows)
    widths = [label_width, *(c.width for c in columns)]
    headers = [["figure"], *(c.header for c in columns)]  # bottom-aligned: filled upside down
    lines = _side_by_side([header[::-1] for header in headers], widths)[::-1]
    lines.append("  ".join("-" * w for w in widths))
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
        lines += _side_by_side([label, *([column.cells[index]] for column in columns)], widths)
    return lines


def _differences_grid(view: CompareView) -> list[str]:
    """The host fields that differ: one row per field, one column per host, wrapped to fit."""
    if not view.host_differences:
        return []
    field_width = min(max(len("host field"), *(len(f) for f, _ in view.host_differences)), 30)
    count = max(len(view.hosts), 1)
    room = (TABLE_WIDTH - field_width - 2 * count) // count
    widths = [
        max(1, min(room, max(len(host), *(len(v[i]) for _, v in view.host_differences))))
        for i, host in enumerate(view.hosts)
    ]

    def row(cells: Sequence[str]) -> list[str]:
        wrapped = [_wrap(cells[0], field_width, 3)] + [
            textwrap.wrap(text, width) or [""]
            for text, width in zip(cells[1:], widths, strict=True)
        ]
        return _side_by_side(wrapped, [field_width, *widths])

    lines = row(["host field", *view.hosts])
    lines.append("  ".join("-" * w for w in [field_width, *widths]))
    for name, values in view.host_differences:
        lines += row([name, *values])
    return lines


def render_compare_table(report: Report) -> str:
    """The compare report for a terminal or a CI log, within TABLE_WIDTH columns."""
    view = compare_view(report.data)
    title = f"ostoolkit compare: {compared_line(view)}"
    parts = textwrap.wrap(title, TABLE_WIDTH, subsequent_indent="  ")
    differences = _differences_grid(view)
    parts += ["", *differences] if differences else []
    parts += ["", *_compare_grid(view)]
    parts += ["", *textwrap.wrap(legend_text(view), TABLE_WIDTH), ""]
    for line in view.summaries:
        parts += textwrap.wrap(line, TABLE_WIDTH, subsequent_indent="  ")
    if view.regressions:
        parts += ["", regressions_title(view) + ":"]
        for regression in view.regressions:
            result_id = text_field(regression, "id")
            parts += textwrap.wrap(
                regression_line(regression, view) + (f" ({result_id})" if result_id else ""),
                TABLE_WIDTH,
                initial_indent="  ✗ ",
                subsequent_indent="    ",
            )
    return finish([*parts, ""], report, markdown=False)
