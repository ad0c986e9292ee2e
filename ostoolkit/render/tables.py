"""A per-command report as a text table or as markdown: results, host, tree, timeline, summary.

Every command but compare is drawn here (compare has its own layout, in compare_table and
compare_markdown). Pure: it reads the Report it is given and measures nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from ostoolkit.payloads import SummaryTable, TreeNode
from ostoolkit.render.charts import mermaid_xychart, text_plot
from ostoolkit.report import Report, Result
from ostoolkit.units import format_figure, format_value

# Extra fields a command may put in results that deserve a column, in this order, when present.
EXTRA_COLUMNS = (
    ("gross_us", "gross", "us"),
    ("baseline_us", "baseline", "us"),
    ("switches_per_hop", "kernel switches/hop", "number"),
    ("vmpte_per_worker_bytes", "page tables/worker", "bytes"),
)


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
    quota = host.get("cpu_quota")
    if isinstance(quota, dict) and isinstance(quota.get("cpus"), (int, float)):
        allowed_text += f"; a CPU quota of {quota['cpus']:.2f} CPUs"
    load = host.get("loadavg", "unknown")
    load_text = f"{load[0]:.2f}" if isinstance(load, list) else str(load)
    return (
        f"host {host.get('hostname', '?')}: {host.get('cpu_model', 'unknown')}, "
        f"{host.get('cpus_logical', '?')} CPUs (allowed {allowed_text}), "
        f"Linux {host.get('kernel', '?')} (preempt {host.get('preemption', '?')}), {virt_text}, "
        f"clocksource {host.get('clocksource', '?')}, load {load_text}, "
        f"{host.get('python', '?')}"
    )


def _table(
    rows: list[list[str]], headers: list[str], tablefmt: str, numparse: bool = False
) -> list[str]:
    """A table and the blank line after it; nothing at all for a table without rows."""
    if not rows:
        return []
    table = tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=not numparse)
    return [table, ""]


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
        row = [r.label, *(format_figure(v, r.unit, r.resolution) for v in (r.median, r.p10, r.p90))]
        row += [_count(r), r.status]
        row += [format_value(r.extra.get(key), unit) for key, _, unit in extras]
        if with_claims:
            row += [r.claim or "", r.verdict or ""]
        rows.append(row)
    return headers, rows


def _count(result: Result) -> str:
    """The n column: the samples, in how many runs when more than one; "exact" for a figure
    fixed by construction."""
    if result.exact:
        return "exact"
    runs = result.run_count
    return f"{result.n} in {runs} runs" if runs > 1 else str(result.n)


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


def _node_text(node: TreeNode) -> str:
    """One tree node as pstree -p writes it, plus state, memory and creation times."""
    words = [
        f"{node['name']}({node['pid']})",
        node["status"],
        f"rss {format_value(node['rss'], 'bytes')}",
    ]
    if "uss" in node:  # None: the kernel refused it (counted in the report's warnings)
        uss = node["uss"]
        words.append("uss ?" if uss is None else f"uss {format_value(uss, 'bytes')}")
    if node.get("fork_us") is not None:
        words.append(f"fork {format_value(node['fork_us'], 'us')}")
    if node.get("exec_us") is not None:
        words.append(f"fork+exec {format_value(node['exec_us'], 'us')}")
    return " ".join(words)


def draw_tree(tree: TreeNode) -> str:
    """Draw a nested process tree with box-drawing branches, like pstree."""
    lines = [_node_text(tree)]

    def walk(node: TreeNode, prefix: str) -> None:
        kids = node["children"]
        threads = node.get("threads", [])
        for index, thread in enumerate(threads):  # first, in braces, as pstree draws them
            last = index == len(threads) - 1 and not kids
            text = f"{{{thread['name']}}}({thread['tid']}) {thread['state']}"
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{text}")
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


def _summary(table: SummaryTable) -> tuple[list[str], list[list[str]]]:
    """A command's own summary table (data.table): columns with units, rows of values."""
    columns = table["columns"]
    headers = [name for name, _ in columns]
    resolutions = table.get("resolutions", {})
    rows = [
        [
            str(row[name])
            if unit == "text"
            else format_figure(row[name], unit, resolutions.get(name))
            for name, unit in columns
        ]
        for row in table["rows"]
    ]
    return headers, rows


def _replaces_results(report: Report) -> bool:
    """Whether the command's own table(s) already show every result (the JSON has them all);
    a table without rows, which is not drawn, replaces nothing."""
    tables = [report.data.get("table", {}), *report.data.get("tables", [])]
    return any(table.get("replaces_results") and table.get("rows") for table in tables)


def _own_tables(report: Report, tablefmt: str) -> list[str]:
    """The command's own tables (data.table, then each of data.tables under its title); one
    without rows is left out whole, title and note too."""
    parts = []
    tables = [report.data["table"]] if "table" in report.data else []
    for table in [*tables, *report.data.get("tables", [])]:
        headers, rows = _summary(table)
        if not rows:
            continue
        if table.get("title"):
            parts += [f"**{table['title']}**" if tablefmt == "github" else table["title"]]
        parts += [tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)]
        if tablefmt == "github":  # a line right below a markdown table would be a row
            parts += [""]
        parts += [table.get("note", ""), ""]
    return parts


def _charts(report: Report, markdown: bool) -> list[str]:
    """data.charts: mermaid xycharts in markdown, bar plots in the terminal."""
    parts: list[str] = []
    for chart in report.data.get("charts", []):
        parts += [*(mermaid_xychart(chart) if markdown else text_plot(chart)), ""]
    return parts


def _host_differences(report: Report) -> tuple[list[str], list[list[str]]]:
    """The compared hosts' differing fields: one row per field, one column per host."""
    headers = ["host field", *report.data["hosts"]]
    return headers, [[row["field"], *row["values"]] for row in report.data["host_differences"]]


def render_table(report: Report, full_host: bool = False) -> str:
    """Plain-text table for terminals and CI logs."""
    parts = [f"ostoolkit {report.command}", host_line(report.host), ""]
    if full_host:
        parts += _table(_host_rows(report.host), ["field", "value"], "simple", numparse=True)
    if "tree" in report.data:
        parts += [draw_tree(report.data["tree"]), ""]
    if "timeline" in report.data:
        parts += _table(_timeline_rows(report.data["timeline"]), TIMELINE_HEADERS, "simple")
    if report.data.get("host_differences"):
        headers, rows = _host_differences(report)
        parts += _table(rows, headers, "simple")
    parts += _own_tables(report, "simple")  # the command's own summary; all is in the JSON
    parts += _charts(report, markdown=False)
    if not _replaces_results(report):
        headers, rows = _results_table(report.results)
        parts += _table(rows, headers, "simple")
    parts += [f"* {finding}" for finding in report.findings]
    parts += [f"warning: {warning}" for warning in report.warnings]
    return "\n".join(parts).rstrip() + "\n"


def render_markdown(report: Report, full_host: bool = False) -> str:
    """GitHub-flavoured markdown, for step summaries and issues."""
    parts = [f"### ostoolkit {report.command}", "", f"_{host_line(report.host)}_", ""]
    if full_host:
        parts += _table(_host_rows(report.host), ["field", "value"], "github", numparse=True)
    if "tree" in report.data:
        parts += ["```text", draw_tree(report.data["tree"]), "```", ""]
    if "timeline" in report.data:
        parts += _table(_timeline_rows(report.data["timeline"]), TIMELINE_HEADERS, "github")
    if report.data.get("host_differences"):
        headers, rows = _host_differences(report)
        parts += _table(rows, headers, "github")
    parts += _own_tables(report, "github")
    parts += _charts(report, markdown=True)
    if not _replaces_results(report):
        headers, rows = _results_table(report.results)
        parts += _table(rows, headers, "github")
    parts += [f"- {finding}" for finding in report.findings]
    parts += [f"- ⚠️ {warning}" for warning in report.warnings]
    return "\n".join(parts).rstrip() + "\n"
