"""A per-command report as a text table or as markdown: results, host, tree, timeline, summary.

Every command but compare is drawn here (compare has its own layout, in compare_table and
compare_markdown). Pure: it reads the Report it is given and measures nothing. Markdown is for
GitHub's job summary, about 870 px wide: no table there has more than ``MARKDOWN_COLUMNS``
columns, every text from the host or a command goes through ``md_text``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from ostoolkit.payloads import SummaryTable, TreeNode
from ostoolkit.render.charts import mermaid_xychart, text_plot
from ostoolkit.report import Report, Result
from ostoolkit.units import format_figure, format_value, join_units

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
# The most columns of a markdown table: wider ones are split (the columns that name a row
# repeated in each part), so that a job summary's ~870 px show every column.
MARKDOWN_COLUMNS = 6
# The characters markdown would act on, shown literally with a backslash before them.
MARKDOWN_ESCAPED = "\\`*_~|"


def md_text(text: str) -> str:
    """Any text for markdown (a cell, a finding, a title), to render literally: one line, each
    number joined to its unit (``units.join_units``), ``&`` and ``<`` as entities (no HTML tag
    swallows ``<postmaster pid>``; a ``>`` without one is plain text), MARKDOWN_ESCAPED
    backslash-escaped."""
    text = join_units(" ".join(text.split()))
    text = text.replace("&", "&amp;").replace("<", "&lt;")  # a lone ">" opens no tag
    for char in MARKDOWN_ESCAPED:
        text = text.replace(char, "\\" + char)
    return text


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub markdown table of already escaped cells (``md_text``)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _key_width(rows: Sequence[Sequence[str]], most: int) -> int:
    """How many leading columns name a row: the fewest that tell every row apart (1 if more
    than ``most`` would be needed)."""
    for width in range(1, most + 1):
        if len({tuple(row[:width]) for row in rows}) == len(rows):
            return width
    return 1


def md_tables(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[list[str]]:
    """A markdown table, split into tables of at most MARKDOWN_COLUMNS columns when wider:
    each part repeats the columns that name a row and takes an even share of the others."""
    if len(headers) <= MARKDOWN_COLUMNS:
        return [md_table(headers, rows)]
    key = _key_width(rows, MARKDOWN_COLUMNS - 2)
    rest = len(headers) - key
    size = math.ceil(rest / math.ceil(rest / (MARKDOWN_COLUMNS - key)))
    parts = []
    for start in range(key, len(headers), size):
        columns = [*range(key), *range(start, min(start + size, len(headers)))]
        part_rows = [[row[i] for i in columns] for row in rows]
        parts.append(md_table([headers[i] for i in columns], part_rows))
    return parts


def _md_figure(value: float | None, unit: str, resolution: float | None = None) -> str:
    """A figure for a markdown cell: as in the table, its number and unit on one line."""
    return md_text(format_figure(value, unit, resolution))


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


def tree_timing(data: dict[str, Any]) -> list[str]:
    """fork-tree's phases on one line and, for a tree it built, the floor on the next:
    fork cost × processes / CPUs beside what creating and ending the tree took (fork and
    teardown). Nothing for a report without ``phases_s``."""
    phases: dict[str, float] = data.get("phases_s") or {}
    if not phases:
        return []
    words = ", ".join(f"{name} {format_value(s, 's')}" for name, s in phases.items())
    lines = [f"phases: {words} = {format_value(sum(phases.values()), 's')}"]
    floor = data.get("floor")
    if floor:
        took = phases.get("fork", 0.0) + phases.get("teardown", 0.0)
        times = f", {took / floor['floor_s']:.1f}× the floor" if floor["floor_s"] > 0 else ""
        lines.append(
            f"floor: fork cost {format_value(floor['fork_us'] / 1000, 'ms')} × "
            f"{floor['processes']:,} processes / {floor['cpus']} CPUs = "
            f"{format_value(floor['floor_s'], 's')}; fork + teardown took "
            f"{format_value(took, 's')}{times}"
        )
    return lines


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
        parts += [table["title"]] if table.get("title") else []
        parts += [tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)]
        parts += [table.get("note", ""), ""]
    return parts


def _own_tables_markdown(tables: list[SummaryTable]) -> list[str]:
    """The command's own tables in markdown: escaped, split when wider than MARKDOWN_COLUMNS,
    the title above the first part and the note below the last."""
    parts = []
    for table in tables:
        if not table["rows"]:
            continue
        columns, resolutions = table["columns"], table.get("resolutions", {})
        rows = [
            [
                md_text(str(row[name]))
                if unit == "text"
                else _md_figure(row[name], unit, resolutions.get(name))
                for name, unit in columns
            ]
            for row in table["rows"]
        ]
        if table.get("title"):
            parts += [f"**{md_text(table['title'])}**", ""]
        for part in md_tables([md_text(name) for name, _ in columns], rows):
            parts += [*part, ""]  # a line right below a markdown table would be a row
        parts += [md_text(table.get("note", "")), ""]
    return parts


def _results_markdown(results: Sequence[Result], claims_shown: bool) -> list[str]:
    """The results in markdown, as narrow tables: the figures (median, p10–p90, n and status);
    the extra columns beside them, for the figures that have any; the article's claims and
    verdicts, unless a claims table (a ``verdict`` column) is shown already."""
    if not results:
        return []
    rows = []
    for r in results:
        count = f"{r.n} in {r.run_count} runs" if r.run_count > 1 else str(r.n)
        low, high = (_md_figure(v, r.unit, r.resolution) for v in (r.p10, r.p90))
        spread = low if low == high else f"{low}–{high}"
        n = f"{'exact' if r.exact else count}, {r.status}"
        rows.append([md_text(r.label), _md_figure(r.median, r.unit, r.resolution), spread, n])
    parts = [*md_table(["figure", "median", "p10–p90", "n, status"], rows), ""]
    extras = [c for c in EXTRA_COLUMNS if any(c[0] in r.extra for r in results)]
    if extras:
        rows = [
            [md_text(r.label), *(md_text(format_value(r.extra.get(k), u)) for k, _, u in extras)]
            for r in results
            if any(k in r.extra for k, _, _ in extras)
        ]
        parts += [*md_table(["figure", *(title for _, title, _ in extras)], rows), ""]
    claimed = [r for r in results if r.claim]
    if claimed and not claims_shown:
        rows = [
            [
                md_text(r.label),
                _md_figure(r.median, r.unit, r.resolution),
                md_text(r.claim or ""),
                md_text(r.verdict or ""),
            ]
            for r in claimed
        ]
        parts += ["**the article vs this host**", ""]
        parts += [*md_table(["figure", "measured", "article", "verdict"], rows), ""]
    return parts


def finish(parts: list[str], report: Report, markdown: bool) -> str:
    """The parts, then the report's findings and warnings, as one text ending in a newline;
    in markdown each escaped (``md_text``)."""
    bullet, warning = ("- ", "- ⚠️ ") if markdown else ("* ", "warning: ")
    escape = md_text if markdown else str
    parts += [bullet + escape(finding) for finding in report.findings]
    parts += [warning + escape(text) for text in report.warnings]
    return "\n".join(parts).rstrip() + "\n"


def render_report(report: Report, full_host: bool = False, markdown: bool = False) -> str:
    """A command's report as a plain-text table for terminals and CI logs, or as GitHub
    markdown for step summaries and issues."""
    if markdown:
        return _render_markdown(report, full_host)
    tablefmt = "simple"
    host = host_line(report.host)
    parts = [f"ostoolkit {report.command}", host, ""]
    if full_host:
        parts += _table(["field", "value"], _host_rows(report.host), tablefmt, numparse=True)
    if "tree" in report.data:
        parts += [draw_tree(report.data["tree"]), ""]
        parts += [*tree_timing(report.data), ""] if "phases_s" in report.data else []
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
        parts += [*text_plot(chart), ""]
    # An own table that is drawn (it has rows) may show every result already.
    if not any(table.get("replaces_results") and table.get("rows") for table in own):
        parts += _table(*_results_table(report.results), tablefmt)
    return finish(parts, report, markdown=False)


def _render_markdown(report: Report, full_host: bool) -> str:
    """A command's report as GitHub markdown: the same parts as the table, in tables narrow
    enough for a job summary, every text from the host or a command escaped."""
    parts = [f"### ostoolkit {md_text(report.command)}", "", f"_{md_text(host_line(report.host))}_"]
    parts += [""]
    if full_host:
        rows = [[md_text(field), md_text(value)] for field, value in _host_rows(report.host)]
        parts += [*md_table(["field", "value"], rows), ""] if rows else []
    if "tree" in report.data:  # a code block: its text shows as it is, nothing to escape
        parts += ["```text", draw_tree(report.data["tree"]), "```", ""]
        timing = [md_text(join_units(line)) for line in tree_timing(report.data)]
        parts += ["  \n".join(timing), ""] if timing else []
    if report.data.get("timeline"):
        rows = [
            [md_text(format_value(step["t_ms"], "ms"))]
            + [md_text(str(step[key])) for key in TIMELINE_KEYS]
            for step in report.data["timeline"]
        ]
        for part in md_tables(TIMELINE_HEADERS, rows):
            parts += [*part, ""]
    own = [report.data["table"]] if "table" in report.data else []
    own += report.data.get("tables", [])
    parts += _own_tables_markdown(own)
    for chart in report.data.get("charts", []):
        parts += [*mermaid_xychart(chart), ""]
    drawn = [table for table in own if table.get("rows")]
    if not any(table.get("replaces_results") for table in drawn):
        claims_shown = any(name == "verdict" for t in drawn for name, _ in t["columns"])
        parts += _results_markdown(report.results, claims_shown)
    return finish(parts, report, markdown=True)
