"""Turn a Report into a table, JSON or markdown; shared by every command, never forks.

Rendering reads the Report it is given and measures nothing: ``tables`` draws a command's
report; ``compare``, ``compare_table`` and ``compare_markdown`` the compare report.
"""

from __future__ import annotations

from ostoolkit.render.compare import (
    compare_cell,
    compare_view,
    is_compare,
    sparkline,
    summary_line,
)
from ostoolkit.render.compare_markdown import (
    compare_cell_markdown,
    mermaid_chart,
    render_compare_markdown,
)
from ostoolkit.render.compare_table import TABLE_WIDTH, render_compare_table
from ostoolkit.render.tables import draw_tree, host_line, render_report
from ostoolkit.report import Report

__all__ = [
    "FORMATS",
    "TABLE_WIDTH",
    "compare_cell",
    "compare_cell_markdown",
    "compare_view",
    "draw_tree",
    "host_line",
    "is_compare",
    "mermaid_chart",
    "render",
    "sparkline",
    "summary_line",
]

FORMATS = ("table", "json", "markdown")


def render(report: Report, fmt: str, full_host: bool = False) -> str:
    """Render in one of FORMATS; a compare report in its own layout."""
    if fmt == "json":
        return report.to_json()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    markdown = fmt == "markdown"
    if is_compare(report):
        return render_compare_markdown(report) if markdown else render_compare_table(report)
    return render_report(report, full_host, markdown)
