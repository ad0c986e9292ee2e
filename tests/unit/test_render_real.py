"""A command's several titled tables (data.tables) and its charts (data.charts), rendered.

connections --real draws one table per client count and, in markdown, a mermaid xychart per
series; its tables replace the results table (every figure is still in the JSON).
"""

import re

from harness.mermaid import check_xychart, mermaid_blocks

from ostoolkit.connections.builtin.measure import summary_table
from ostoolkit.connections.real.results import TABLE as REAL_COLUMNS
from ostoolkit.render import render
from ostoolkit.render.charts import INIT
from ostoolkit.render.tables import MARKDOWN_COLUMNS, md_text
from ostoolkit.report import Measurement, build_report, make_result

TABLES = [
    {
        "title": "10 clients",
        "columns": [["server", "text"], ["tx/s", "per_s"], ["memory/conn", "bytes"]],
        "rows": [
            {"server": "PostgreSQL", "tx/s": 800.0, "memory/conn": 3 * 2**20},
            {"server": "pgbench -S (PostgreSQL)", "tx/s": 1000.0, "memory/conn": None},
        ],
        "replaces_results": True,
        "note": "",
    },
    {
        "title": "100 clients",
        "columns": [["server", "text"], ["tx/s", "per_s"], ["memory/conn", "bytes"]],
        "rows": [{"server": "MariaDB (thread pool)", "tx/s": 1900.0, "memory/conn": 98304}],
        "replaces_results": True,
        "note": "memory/conn: PSS the connections added",
    },
]
CHARTS = [
    {
        "title": "PostgreSQL: transactions per second",
        "x_label": "clients",
        "y_label": "tx/s",
        "x": ["10", "100"],
        "values": [800, 1000],
    },
    {
        "title": "PostgreSQL: PSS per connection (KiB)",
        "x_label": "clients",
        "y_label": "KiB",
        "x": ["10", "100"],
        "values": [3072.0, 2048.5],
    },
]
RESULT = make_result("conn.postgres.10.tps", "PostgreSQL, 10 clients: tx/s", "per_s", [800.0])


def report(replaces=True, charts=CHARTS):
    tables = [{**table, "replaces_results": replaces} for table in TABLES]
    measurement = Measurement((RESULT,), ("a finding",), (), {"tables": tables, "charts": charts})
    return build_report("connections", ["--real"], measurement, {}, "t", 0.0)


def test_table_shows_each_title_above_its_table_and_no_results_table():
    text = render(report(), "table")
    lines = text.splitlines()
    first, second = lines.index("10 clients"), lines.index("100 clients")
    assert first < second
    assert lines[first + 1].split() == ["server", "tx/s", "memory/conn"]
    assert "PostgreSQL" in lines[first + 3]
    assert "3.0 MiB" in lines[first + 3]
    assert "pgbench -S (PostgreSQL)" in text
    assert "MariaDB (thread pool)" in lines[second + 3]
    assert "memory/conn: PSS the connections added" in text
    assert "figure" not in text  # the results table is left out
    assert "PostgreSQL, 10 clients: tx/s" not in text
    assert "mermaid" not in text  # charts are for markdown only
    assert "* a finding" in text


def test_results_table_stays_when_no_table_replaces_it():
    for fmt in ("table", "markdown"):
        assert "PostgreSQL, 10 clients: tx/s" in render(report(replaces=False), fmt)


def test_markdown_titles_and_mermaid_charts():
    text = render(report(), "markdown")
    assert "**10 clients**" in text
    assert "**100 clients**" in text
    assert text.index("**10 clients**") < text.index("**100 clients**")
    assert "| PostgreSQL " in text
    assert "PostgreSQL, 10 clients: tx/s" not in text
    blocks = mermaid_blocks(text)
    assert len(blocks) == 2
    assert blocks[0] == [
        INIT,
        "xychart-beta",
        '    title "PostgreSQL: transactions per second"',
        '    x-axis "clients" ["10: 800", "100: 1000"]',
        '    y-axis "tx/s" 0 --> 1200',
        "    bar [800, 1000]",
    ]
    for block in blocks:
        check_xychart(block)  # the palette, the axis from 0, labels within the cap
    assert "    bar [3072, 2048.5]" in blocks[1]
    assert '    x-axis "clients" ["10: 3072", "100: 2048"]' in blocks[1]
    assert '    y-axis "KiB" 0 --> 4000' in blocks[1]
    assert '    title "PostgreSQL: PSS per connection (KiB)"' in blocks[1]
    assert text.index("**100 clients**") < text.index("```mermaid")
    assert "- a finding" in text


def test_markdown_without_charts_has_no_mermaid_block():
    assert "mermaid" not in render(report(charts=[]), "markdown")


def test_markdown_note_is_not_swallowed_by_its_table():
    lines = render(report(), "markdown").splitlines()
    note = lines.index("memory/conn: PSS the connections added")
    assert lines[note - 1] == ""


# -- markdown for a job summary: wide tables split, the columns that name a row repeated


def markdown_tables(text):
    """Each markdown table of ``text`` as its rows of stripped cells, delimiter row left out."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(:?-{3,}:?\|)+", line):
                current.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])])
        elif current:
            tables.append(current)
            current = []
    return tables


def real_table():
    """A connections --real table with every column it has, refused last."""
    row = {name: 1.0 for name, _, _ in REAL_COLUMNS}
    rows = [
        row | {"server": "PostgreSQL", "memory/conn": 3 * 2**20, "p50": 2.0, "refused": 3},
        row | {"server": "pgbench -S (PostgreSQL)", "refused": None},
    ]
    columns = [[name, unit] for name, unit, _ in REAL_COLUMNS]
    note = "memory/conn: PSS the connections added; refused: at the server's default limit"
    table = {"title": "10 clients", "columns": columns, "rows": rows, "note": note}
    return {**table, "replaces_results": True}


def real_report(tables):
    measurement = Measurement((RESULT,), ("a finding",), (), {"tables": tables})
    return build_report("connections", ["--real"], measurement, {}, "t", 0.0)


def test_connections_real_markdown_splits_its_wide_table_so_refused_shows():
    assert len(REAL_COLUMNS) > MARKDOWN_COLUMNS
    text = render(real_report([real_table()]), "markdown")
    tables = markdown_tables(text)
    assert len(tables) == 2
    for table in tables:
        assert len(table[0]) <= MARKDOWN_COLUMNS
        assert table[0][0] == "server"  # each part names its rows
        assert [row[0] for row in table[1:]] == ["PostgreSQL", "pgbench -S (PostgreSQL)"]
    shown = [name for table in tables for name in table[0][1:]]
    assert shown == [name for name, _, _ in REAL_COLUMNS][1:]  # every column, in order, once
    assert tables[1][0][-1] == "refused"
    assert tables[1][1][-1] == "3"
    assert "| PostgreSQL | 3.0\u00a0MiB | 1.00/s | 2.00\u00a0µs |" in text
    lines = text.splitlines()
    title, note = lines.index("**10 clients**"), lines.index(md_text(real_table()["note"]))
    assert title < lines.index("| server | memory/conn | tx/s | p50 | p99 | connect |") < note
    assert lines[note - 1] == ""
    assert "PostgreSQL, 10 clients: tx/s" not in text
    # the terminal keeps the one wide table
    table = render(real_report([real_table()]), "table").splitlines()
    assert table[table.index("10 clients") + 1].split() == [n for n, _, _ in REAL_COLUMNS]


def test_connections_builtin_markdown_repeats_model_and_clients_in_each_part():
    """Rows are told apart by model and clients together: both lead every part."""
    table = summary_table([], pool_size=20)
    names = [name for name, _ in table["columns"]]
    base = dict.fromkeys(names, 1.0)
    table["rows"] = [
        base | {"model": model, "clients": clients}
        for model in ("process", "thread")
        for clients in (10, 100)
    ]
    tables = markdown_tables(render(real_report([table]), "markdown"))
    assert len(tables) == 2
    for part in tables:
        assert part[0][:2] == ["model", "clients"]
        assert len(part[0]) <= MARKDOWN_COLUMNS
        assert [row[:2] for row in part[1:]] == [
            ["process", "10"],
            ["process", "100"],
            ["thread", "10"],
            ["thread", "100"],
        ]
    assert [n for part in tables for n in part[0][2:]] == names[2:]


def test_markdown_tables_within_the_limit_are_left_whole():
    tables = markdown_tables(render(report(), "markdown"))
    assert [table[0] for table in tables] == [["server", "tx/s", "memory/conn"]] * 2
