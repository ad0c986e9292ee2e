import dataclasses
import json
import re
from pathlib import Path

import pytest
from harness.mermaid import check_xychart, mermaid_blocks

from ostoolkit.loader import load_report
from ostoolkit.render import render
from ostoolkit.render.tables import MARKDOWN_COLUMNS, host_line, md_text
from ostoolkit.report import Measurement, Result, build_report
from ostoolkit.units import join_units

HOST = {
    "hostname": "box",
    "cpu_model": "Test CPU",
    "cpus_logical": 2,
    "cpus_allowed": [0, 1],
    "kernel": "6.1.0",
    "preemption": "full",
    "virtualization": {"hypervisor": True, "dmi": "unknown", "container": "none"},
    "clocksource": "tsc",
    "loadavg": [0.25, 0.1, 0.0],
    "python": "CPython 3.11.7",
}


def report():
    switch = Result(
        "switch.process.same_core",
        "process switch, same core (net)",
        "us",
        2.5,
        2.25,
        2.75,
        (2.25, 2.5, 2.75),
        3,
        extra={"gross_us": 3.0, "baseline_us": 0.5, "switches_per_hop": 1.0},
        claim="~5 µs",
        verdict="2.0× faster than the article's ~5 µs",
    )
    rt = Result("roundtrip.process.same_core", "round trip", "us", 6.0, 5.5, 6.5, (6.0,), 1)
    m = Measurement((switch, rt), ("threads switch 1.1× faster here",), ("be careful",))
    return build_report("measure-switch", [], m, HOST, "2026-11-25T08:00:00Z", 1.0)


def test_host_line():
    assert host_line(HOST) == (
        "host box: Test CPU, 2 CPUs (allowed 0,1), Linux 6.1.0 (preempt full), VM, "
        "clocksource tsc, load 0.25, CPython 3.11.7"
    )


def test_table_exact():
    expected = f"""\
ostoolkit measure-switch
{host_line(HOST)}

figure                           median    p10      p90      n    status    gross    baseline    kernel switches/hop    article    verdict
-------------------------------  --------  -------  -------  ---  --------  -------  ----------  ---------------------  ---------  ------------------------------------
process switch, same core (net)  2.50 µs   2.25 µs  2.75 µs  3    ok        3.00 µs  0.500 µs    1.00                   ~5 µs      2.0× faster than the article's ~5 µs
round trip                       6.00 µs   5.50 µs  6.50 µs  1    ok

* threads switch 1.1× faster here
warning: be careful
"""  # noqa: E501
    assert render(report(), "table") == expected


def test_markdown_has_github_table_and_findings():
    text = render(report(), "markdown")
    assert text.startswith("### ostoolkit measure-switch\n")
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| figure "))
    delimiter = lines[header + 1]  # GitHub's delimiter row: a cell of dashes per column
    assert re.fullmatch(r"\|(:?-{3,}:?\|)+", delimiter), delimiter
    assert delimiter.count("|") == lines[header].count("|")
    assert "- threads switch 1.1× faster here" in text
    assert "- ⚠️ be careful" in text


def test_json_is_the_report():
    data = json.loads(render(report(), "json"))
    assert data["results"][0]["verdict"] == "2.0× faster than the article's ~5 µs"


def test_full_host_lists_nested_fields():
    text = render(report(), "table", full_host=True)
    assert "virtualization.hypervisor" in text
    assert "cpus_allowed" in text


EMPTY_TABLE = {"columns": [["server", "text"], ["tx/s", "per_s"]], "rows": [], "note": ""}


@pytest.mark.parametrize("fmt", ["table", "markdown"])
@pytest.mark.parametrize(
    "data",
    [
        {"table": {**EMPTY_TABLE, "title": "nothing here"}},
        {"tables": [{**EMPTY_TABLE, "title": "nothing here"}]},
        {"timeline": []},
    ],
)
def test_a_table_without_rows_renders_nothing(fmt, data):
    """No header, rule or title of an empty table; the rest of the report as without it."""
    m = Measurement((), ("found",), ("careful",), data)
    empty = build_report("report", [], m, HOST, "2026-11-25T08:00:00Z", 1.0)
    bare = build_report("report", [], Measurement((), ("found",), ("careful",)), HOST, "", 1.0)
    assert render(empty, fmt) == render(bare, fmt)


def test_an_empty_table_replaces_no_results():
    """The results table stays when the table that would replace it has no rows."""
    m = report()
    table = {**EMPTY_TABLE, "replaces_results": True}
    both = build_report("report", [], Measurement(m.results, data={"table": table}), HOST, "", 1.0)
    text = render(both, "table")
    assert "process switch, same core (net)" in text
    assert "tx/s" not in text


RING_CHARTS = [
    {
        "title": "process switch in a ring of N tasks",
        "x_label": "tasks",
        "y_label": "µs per switch",
        "x": ["2", "8", "32", "128", "512"],
        "values": [1.9, 2.05, 2.1, 2.3, 2.2],
        "kind": "line",
    },
    {
        "title": "process switch by working set",
        "x_label": "KB per task (cache holding both)",
        "y_label": "µs per switch",
        "x": [f"{kb} KB (L2)" for kb in (0, 16, 64, 128, 256, 512, 1024)],
        "values": [1.0, 1.1, 1.2, 1.9, 3.5, 6.0, 9.6],
        "kind": "line",
    },
]


def ring_report():
    m = Measurement((), (), (), {"charts": RING_CHARTS, "caches_kb": {"L2": 2048}})
    return build_report("measure-switch", ["--tasks", "2,8"], m, HOST, "t", 1.0)


def test_ring_charts_in_markdown_start_at_zero_with_the_palette():
    blocks = mermaid_blocks(render(ring_report(), "markdown"))
    assert len(blocks) == 2
    rings, sizes = (check_xychart(block) for block in blocks)
    assert rings["labels"] == ["2: 1.9", "8: 2.05", "32: 2.1", "128: 2.3", "512: 2.2"]
    assert '    y-axis "µs per switch" 0 --> 2.5' in blocks[0]  # not 1.9 --> 2.3
    # seven labels with values would crowd the axis: the title points to the table instead
    assert sizes["labels"][-1] == "1024 KB (L2)"
    assert blocks[1][2] == '    title "process switch by working set (values in the table)"'


def test_ring_charts_in_the_terminal_start_at_zero():
    text = render(ring_report(), "table")
    assert "mermaid" not in text
    rows = [line for line in text.splitlines() if "│" in line and "KB" not in line][:5]
    # 1.9 against 2.3 is 33 cells against 40, not a sliver against a full bar
    assert [row.count("█") for row in rows] == [33, 36, 37, 40, 38]


# -- markdown for a job summary: narrow tables, numbers kept with units, host text escaped

EXAMPLES = Path(__file__).parents[2] / "examples" / "reports"


def markdown_tables(text):
    """Each markdown table of ``text`` as its rows of cells (the delimiter row left out)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(:?-{3,}:?\|)+", line):
                current.append(re.split(r"(?<!\\)\|", line.strip()[1:-1]))
        elif current:
            tables.append(current)
            current = []
    return tables


def test_every_markdown_table_of_measure_switch_and_report_is_narrow():
    reports = [report(), *(load_report(path) for path in sorted(EXAMPLES.glob("*.json")))]
    assert len(reports) == 3
    for one in reports:
        for full_host in (False, True):
            tables = markdown_tables(render(one, "markdown", full_host=full_host))
            assert tables
            for table in tables:
                assert {len(row) for row in table} == {len(table[0])}, table[0]
                assert len(table[0]) <= MARKDOWN_COLUMNS, table[0]


def test_markdown_keeps_the_verdict_in_its_own_narrow_table():
    tables = markdown_tables(render(report(), "markdown"))
    heads = [[cell.strip() for cell in table[0]] for table in tables]
    assert heads == [
        ["figure", "median", "p10–p90", "n, status"],
        ["figure", "gross", "baseline", "kernel switches/hop"],
        ["figure", "measured", "article", "verdict"],
    ]
    verdicts = [[cell.strip() for cell in row] for row in tables[2][1:]]
    assert verdicts == [
        [
            "process switch, same core (net)",
            "2.50\u00a0µs",
            "\\~5\u00a0µs",
            "2.0× faster than the article's \\~5\u00a0µs",
        ]
    ]
    assert "| round trip | 6.00\u00a0µs | 5.50\u00a0µs–6.50\u00a0µs | 1, ok |" in render(
        report(), "markdown"
    )


def test_report_markdown_leaves_the_verdict_to_its_claims_table():
    """`report` draws the article's claims in a table of their own: the figures' table of
    markdown does not repeat them."""
    text = render(load_report(EXAMPLES / "a-vm-2cpus.json"), "markdown")
    heads = [[cell.strip() for cell in table[0]] for table in markdown_tables(text)]
    assert heads[0] == ["claim", "the article", "this host", "verdict"]
    assert ["figure", "measured", "article", "verdict"] not in heads
    assert "| threads switch faster | \\~5× | 1.04× | threads and processes" in text


def test_markdown_joins_numbers_to_their_units_and_the_table_does_not():
    text = render(report(), "markdown")
    for figure in ("2.50", "2.25", "2.75", "3.00", "0.500", "6.00"):
        assert f"{figure}\u00a0µs" in text
        assert f"{figure} µs" not in text
    assert "\u00a0" not in render(report(), "table")
    assert join_units("2.00 µs, < 4.0 KiB, 5 % of 20 CPUs") == (
        "2.00\u00a0µs, <\u00a04.0\u00a0KiB, 5\u00a0% of 20 CPUs"
    )


FINDING = "see fork-tree --pid <postmaster pid> | a|b *x* _y_ `z` ~w & <b>bold</b>"


def test_markdown_escapes_what_a_finding_warning_or_cell_carries():
    m = report()
    results = (m.results[0], dataclasses.replace(m.results[1], label="round trip of <pid> | *a*"))
    escaped = build_report(
        "measure-switch", [], Measurement(results, (FINDING,), (FINDING,)), HOST, "t", 1.0
    )
    text = render(escaped, "markdown")
    safe = (
        "see fork-tree --pid &lt;postmaster pid> \\| a\\|b \\*x\\* \\_y\\_ \\`z\\` \\~w &amp; "
        "&lt;b>bold&lt;/b>"
    )
    assert f"\n- {safe}\n" in text
    assert f"\n- ⚠️ {safe}\n" in text
    assert "| round trip of &lt;pid> \\| \\*a\\* | 6.00\u00a0µs |" in text
    assert "<postmaster pid>" not in text
    for table in markdown_tables(text):  # the escaped | splits no cell
        assert {len(row) for row in table} == {len(table[0])}
    table = render(escaped, "table")  # the terminal shows the text as it is
    assert f"* {FINDING}\n" in table
    assert f"warning: {FINDING}\n" in table
    assert md_text("a\n  b <c>") == "a b &lt;c>"


def test_markdown_escapes_the_host_line_and_host_fields():
    host = dict(HOST, hostname="box_<1>|x")
    m = report()
    odd = build_report("measure-switch", [], Measurement(m.results), host, "t", 1.0)
    text = render(odd, "markdown", full_host=True)
    assert "_host box\\_&lt;1>\\|x: Test CPU" in text
    assert "| hostname | box\\_&lt;1>\\|x |" in text
