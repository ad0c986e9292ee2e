"""Turn a Report into a table, JSON or markdown; shared by every command, never forks.

Rendering reads the Report it is given and measures nothing: ``tables`` draws a command's
report; ``compare``, ``compare_table`` and ``compare_markdown`` the compare report,
``compare_fleet`` its fleet view.
"""

from __future__ import annotations

from ostoolkit.render.compare import is_compare
from ostoolkit.render.compare_fleet import is_fleet, render_fleet_markdown, render_fleet_table
from ostoolkit.render.compare_markdown import render_compare_markdown
from ostoolkit.render.compare_table import render_compare_table
from ostoolkit.render.tables import draw_tree as draw_tree
from ostoolkit.render.tables import render_report
from ostoolkit.report import Report

FORMATS = ("table", "json", "markdown")


def render(report: Report, fmt: str, full_host: bool = False) -> str:
    """Render in one of FORMATS; a compare report in its own layout."""
    if fmt == "json":
        return report.to_json()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    markdown = fmt == "markdown"
    if is_compare(report) and is_fleet(report):
        return render_fleet_markdown(report) if markdown else render_fleet_table(report)
    if is_compare(report):
        return render_compare_markdown(report) if markdown else render_compare_table(report)
    return render_report(report, full_host, markdown)
