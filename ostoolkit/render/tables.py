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
# The columns of the states command's timeline, after its time ("t", from t_ms).
TIMELINE_HEADERS = ["t", "article's state", "pid", "psutil status", "/proc state", "what happened"]
TIMELINE_KEYS = ("article_state", "pid", "psutil_status", "proc_state", "detail")


def host_line(host: dict[str, Any]) -> str:
    """One line that identifies the host, for the head of a table."""
    virt = host.get("virtualization", {})
    if isinstance(virt, dict):
        container = virt.get("container")
        kinds = ["VM"] if virt.get("hypervisor") is True else []
        kinds += [] if container in (None, "none") else [f"container: {container}"]
        virt_text = ", ".join(kinds) or "bare metal?"
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
    headers: list[str], rows: list[list[str]], tablefmt: str, numparse: bool = False
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
    for r in results:  # n: the samples, in how many runs; "exact": fixed by construction
        count = f"{r.n} in {r.run_count} runs" if r.run_count > 1 else str(r.n)
        row = [r.label, *(format_figure(v, r.unit, r.resolution) for v in (r.median, r.p10, r.p90))]
        row += ["exact" if r.exact else count, r.status]
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


def _own_tables(tables: list[SummaryTable], tablefmt: str) -> list[str]:
    """The command's own tables (columns with units, rows of values), each under its title; one
    without rows is left out whole, title and note too."""
    parts = []
    for table in tables:
        if not table["rows"]:
            continue
        columns, resolutions = table["columns"], table.get("resolutions", {})
        headers = [name for name, _ in columns]
        rows = [
            [
                str(row[name])
                if unit == "text"
                else format_figure(row[name], unit, resolutions.get(name))
                for name, unit in columns
            ]
            for row in table["rows"]
        ]
        if table.get("title"):
            parts += [f"**{table['title']}**" if tablefmt == "github" else table["title"]]
        parts += [tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)]
        if tablefmt == "github":  # a line right below a markdown table would be a row
            parts += [""]
        parts += [table.get("note", ""), ""]
    return parts


def finish(parts: list[str], report: Report, markdown: bool) -> str:
    """The parts, then the report's findings and warnings, as one text ending in a newline."""
    bullet, warning = ("- ", "- ⚠️ ") if markdown else ("* ", "warning: ")
    parts += [bullet + finding for finding in report.findings]
    parts += [warning + text for text in report.warnings]
    return "\n".join(parts).rstrip() + "\n"


def render_report(report: Report, full_host: bool = False, markdown: bool = False) -> str:
    """A command's report as a plain-text table for terminals and CI logs, or as GitHub
    markdown for step summaries and issues."""
    tablefmt = "github" if markdown else "simple"
    host = host_line(report.host)
    if markdown:
        parts = [f"### ostoolkit {report.command}", "", f"_{host}_", ""]
    else:
        parts = [f"ostoolkit {report.command}", host, ""]
    if full_host:
        parts += _table(["field", "value"], _host_rows(report.host), tablefmt, numparse=True)
    if "tree" in report.data:
        tree = draw_tree(report.data["tree"])
        parts += ["```text", tree, "```", ""] if markdown else [tree, ""]
    if "timeline" in report.data:  # states: one row per observed state, in the order seen
        rows = [
            [format_value(step["t_ms"], "ms"), *(str(step[key]) for key in TIMELINE_KEYS)]
            for step in report.data["timeline"]
        ]
        parts += _table(TIMELINE_HEADERS, rows, tablefmt)
    own = [report.data["table"]] if "table" in report.data else []
    own += report.data.get("tables", [])
    parts += _own_tables(own, tablefmt)  # the command's own summary; all is in the JSON
    for chart in report.data.get("charts", []):
        parts += [*(mermaid_xychart(chart) if markdown else text_plot(chart)), ""]
    # An own table that is drawn (it has rows) may show every result already.
    if not any(table.get("replaces_results") and table.get("rows") for table in own):
        parts += _table(*_results_table(report.results), tablefmt)
    return finish(parts, report, markdown)
