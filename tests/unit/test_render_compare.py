"""The compare report's rendering: cells, strips, grouping, --changed, width, mermaid, bad data.

Built against the data contract of `ostoolkit compare` (data.comparisons and friends) with
hand-made reports, so the layout is tested apart from the engine's statistics.
"""

import dataclasses
import json
import re

import pytest
from harness.mermaid import check_xychart, mermaid_blocks

from ostoolkit.render import render
from ostoolkit.render.compare import (
    compare_cell,
    compare_view,
    is_compare,
    sparkline,
    summary_line,
)
from ostoolkit.render.compare_markdown import compare_cell_markdown, mermaid_chart
from ostoolkit.render.compare_table import TABLE_WIDTH
from ostoolkit.render.tables import MARKDOWN_COLUMNS
from ostoolkit.report import Report

BASE = "laptop-of-a-developer (AMD EPYC 7B13 64-Core Processor, 6.18.44)"
CI = "ci-runner-ubuntu-24.04-x64-large-with-a-long-name (AMD EPYC, 6.18.44)"
GH = "github-hosted (Intel Xeon Platinum 8370C, 6.8.0)"
HOSTS = [BASE, CI, GH]


def comparison(id, host, median, **fields):
    """One figure on one host, as the compare engine writes it; fields override defaults."""
    item = {
        "id": id,
        "label": id,
        "unit": "us",
        "section": "other",
        "headline": False,
        "host": host,
        "baseline": BASE,
        "median": median,
        "p10": median,
        "p90": median,
        "n": 15,
        "ratio": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "verdict": "baseline" if host == BASE else "same",
        "reason": "baseline" if host == BASE else "interval inside the band",
        "regressed": False,
        "status": "ok",
        "other_cpu_share": 0.01,
        "steal_share": 0.0,
        "strip": None,
    }
    item.update(fields)
    return item


def figure(id, label, unit, section, values, headline=False):
    """One figure across HOSTS: values holds (median, fields) per host."""
    return [
        comparison(
            id, host, median, label=label, unit=unit, section=section, headline=headline, **extra
        )
        for host, (median, extra) in zip(HOSTS, values, strict=True)
    ]


SWITCH = figure(
    "switch.process.same_core",
    "process switch, same core (net)",
    "us",
    "switch",
    [
        (2.46, {"strip": [0, 1, 2, 7, 8, 3, 1, 0], "status": "noisy"}),
        (
            2.62,
            {
                "ratio": 1.065,
                "ci_low": 1.031,
                "ci_high": 1.108,
                "verdict": "slower",
                "reason": "interval outside the band",
                "strip": [0, 0, 1, 2, 8, 6, 3, 1],
                "status": "noisy",
                "other_cpu_share": 0.15,
            },
        ),
        (
            2.47,
            {
                "ratio": 1.004,
                "ci_low": 0.98,
                "ci_high": 1.02,
                "verdict": "same",
                "strip": [0, 1, 2, 8, 7, 3, 1, 0],
            },
        ),
    ],
    headline=True,
)
ROUNDTRIP = figure(
    "roundtrip.process.same_core",
    "process switch, same core (round trip, raw)",
    "us",
    "switch",
    [
        (7.2, {"strip": [1, 3, 8, 2, 1, 0, 0, 0]}),
        (
            7.25,
            {"ratio": 1.007, "ci_low": 0.99, "ci_high": 1.03, "strip": [1, 2, 8, 3, 1, 0, 0, 0]},
        ),
        (
            7.21,
            {"ratio": 1.001, "ci_low": 0.99, "ci_high": 1.01, "strip": [1, 3, 8, 2, 1, 0, 0, 0]},
        ),
    ],
)
FORK = figure(
    "spawn.fork",
    "fork + _exit + waitpid",
    "us",
    "spawn",
    [
        (2368.0, {"strip": [2, 8, 4, 0, 0, 0, 3, 0], "status": "bimodal"}),
        (
            2190.0,
            {
                "ratio": 0.925,
                "ci_low": 0.90,
                "ci_high": 0.94,
                "verdict": "faster",
                "reason": "interval outside the band",
                "strip": [6, 8, 1, 0, 0, 0, 0, 0],
            },
        ),
        (
            None,
            {
                "verdict": "missing",
                "reason": "missing here",
                "n": 0,
                "p10": None,
                "p90": None,
                "status": None,
                "strip": None,
            },
        ),
    ],
    headline=True,
)
MEMORY = figure(
    "memory.process.uss_per_worker",
    "forked process: USS per worker",
    "bytes",
    "memory",
    [
        (507_930.0, {"strip": [0, 0, 0, 8, 0, 0, 0, 0], "n": 3}),
        (
            534_000.0,
            {
                "ratio": 1.051,
                "verdict": "unclear",
                "reason": "few samples",
                "n": 3,
                "strip": [0, 0, 0, 0, 8, 0, 0, 0],
            },
        ),
        (
            508_000.0,
            {
                "ratio": 1.0,
                "ci_low": 0.97,
                "ci_high": 1.03,
                "n": 3,
                "strip": [0, 0, 0, 8, 0, 0, 0, 0],
            },
        ),
    ],
    headline=True,
)
QPS = figure(
    "conn.process.100.qps",
    "process-per-connection, 100 clients: queries per second",
    "per_s",
    "connections",
    [
        (22_754.0, {"n": 1}),
        (
            11_230.0,
            {"ratio": 0.494, "verdict": "lower", "reason": "one sample", "n": 1, "regressed": True},
        ),
        (22_500.0, {"ratio": 0.989, "reason": "one sample", "n": 1}),
    ],
)
THREADS = figure(
    "conn.process.100.threads",
    "process-per-connection, 100 clients: server threads",
    "count",
    "connections",
    [
        (101.0, {"n": 1}),
        (101.0, {"ratio": 1.0, "reason": "one sample", "n": 1}),
        (101.0, {"ratio": 1.0, "reason": "one sample", "n": 1}),
    ],
)
# Listed out of section order, and a non-headline figure before a headline one, on purpose.
COMPARISONS = [*MEMORY, *QPS, *THREADS, *ROUNDTRIP, *SWITCH, *FORK]


def data(**changes):
    base = {
        "hosts": HOSTS,
        "baseline": BASE,
        "threshold": 0.05,
        "changed_only": False,
        "comparisons": COMPARISONS,
        "summary": {
            CI: {"slower": 1, "faster": 1, "lower": 1, "same": 2, "unclear": 1},
            GH: {"same": 5, "missing": 1},
        },
        "regressions": [
            {
                "id": "conn.process.100.qps",
                "label": QPS[1]["label"],
                "unit": "per_s",
                "host": CI,
                "verdict": "lower",
                "ratio": 0.494,
                "ci_low": None,
                "ci_high": None,
            },
        ],
        "host_differences": [
            {"field": "CPU model", "values": ["AMD EPYC 7B13", "AMD EPYC", "Intel Xeon 8370C"]},
            {"field": "kernel", "values": ["6.18.44", "6.18.44", "6.8.0"]},
        ],
    }
    base.update(changes)
    return base


def compare_report(**changes):
    return Report(
        "compare",
        ("compare",),
        "2026-11-25T09:00:00Z",
        0.2,
        {},
        (),
        ("6 result ids, 6 in more than one report",),
        (),
        data(**changes),
    )


def _md_escaped(text):
    return text.replace("_", "\\_")


def lines(text):
    return text.rstrip("\n").split("\n")


# -- strips and cells


def test_sparkline_scales_to_the_fullest_bin_and_keeps_empty_bins_as_the_floor():
    assert sparkline([0, 1, 4, 8, 2, 0, 0, 1]) == "▁▃▅█▄▁▁▃"
    assert sparkline([0, 0, 1, 2, 8, 6, 3, 1]) == "▁▁▃▄█▇▄▃"
    assert sparkline([5]) == "█"
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline(None) == ""
    assert sparkline([]) == ""
    assert sparkline("12") == ""
    assert sparkline(["x", None, 3, True, float("nan")]) == "▁▁█▁▁"


def test_cells_exact():
    assert compare_cell(SWITCH[0], is_baseline=True) == "2.46 µs ▁▃▄▇█▄▃▁ ~"
    assert compare_cell(SWITCH[1]) == "2.62 µs 1.06× [1.03–1.11] slower ▁▁▃▄█▇▄▃ ~!"
    assert compare_cell(SWITCH[2]) == "2.47 µs 1.00× [0.98–1.02] same ▁▃▄█▇▄▃▁"
    assert compare_cell(FORK[0], is_baseline=True) == "2,368 µs ▄█▅▁▁▁▄▁ ²"
    assert compare_cell(FORK[2]) == "— missing"
    assert compare_cell(MEMORY[1]) == "521.5 KiB 1.05× 3 samples unclear ▁▁▁▁█▁▁▁"
    fewer = dict(MEMORY[0], n=2)  # the smaller side's count is the one that matters
    assert compare_cell(MEMORY[1], base=fewer) == "521.5 KiB 1.05× 2 samples unclear ▁▁▁▁█▁▁▁"
    assert compare_cell(dict(MEMORY[1], n=None)) == "521.5 KiB 1.05× few samples unclear ▁▁▁▁█▁▁▁"
    assert compare_cell(QPS[1]) == "11,230/s 0.49× one sample lower"
    missing_base = dict(
        FORK[1],
        verdict="missing",
        reason="missing in the baseline",
        ratio=None,
        ci_low=None,
        ci_high=None,
    )
    assert compare_cell(missing_base) == "2,190 µs no baseline missing ▇█▃▁▁▁▁▁"
    assert compare_cell(None) == "—"


def test_a_host_that_moved_as_far_is_marked_in_the_cell_named_in_markdown_and_the_legend():
    moved = dict(
        SWITCH[1],
        verdict="unclear",
        reason="host moved as far",
        host_ratio=1.42,
        other_cpu_share=0.0,
    )
    assert compare_cell(moved) == "2.62 µs 1.06× [1.03–1.11] unclear ▁▁▃▄█▇▄▃ ~↕"
    assert compare_cell_markdown(moved) == (
        "2.62\u00a0µs 1.06× [1.03–1.11] **unclear** (host 1.42×) ▁▁▃▄█▇▄▃ \\~↕"
    )
    one = dict(QPS[1], verdict="unclear", reason="host moved as far", host_ratio=0.5)
    assert compare_cell(one) == "11,230/s 0.49× host 0.50× unclear ↕"
    text = render(compare_report(comparisons=[*SWITCH[:1], moved, SWITCH[2]]), "table")
    assert "↕ the host's own speed moved as far" in " ".join(text.split())
    assert "1 unclear (1 as the host moved ↕)" in text


def test_markdown_cells_bold_a_verdict_other_than_same_and_escape_marks():
    assert compare_cell_markdown(SWITCH[1]) == (
        "2.62\u00a0µs 1.06× [1.03–1.11] **slower** ▁▁▃▄█▇▄▃ \\~!"
    )
    assert compare_cell_markdown(THREADS[1]) == "101 1.00× same (one sample)"
    assert compare_cell_markdown(MEMORY[1], base=MEMORY[0]) == (
        "521.5\u00a0KiB 1.05× **unclear** (3 samples) ▁▁▁▁█▁▁▁"
    )
    assert compare_cell_markdown(FORK[2]) == "— **missing**"
    assert compare_cell_markdown(SWITCH[0], is_baseline=True) == "2.46\u00a0µs ▁▃▄▇█▄▃▁ \\~"


def test_summary_line_orders_the_verdict_words():
    counts = {"unclear": 4, "same": 20, "faster": 1, "slower": 3, "baseline": 1, "odd": 2}
    assert summary_line("b", "a", counts) == "b vs a: 3 slower, 1 faster, 20 same, 4 unclear, 2 odd"
    assert summary_line("b", "a", {}) == "b vs a: no figure compared"
    assert summary_line("b", "a", {"same": 2, "unclear": 6}, moved=4) == (
        "b vs a: 2 same, 6 unclear (4 as the host moved ↕)"
    )


# -- the terminal table


def test_every_line_fits_120_columns_with_three_long_host_labels():
    for changes in ({}, {"changed_only": True}):
        text = render(compare_report(**changes), "table")
        too_wide = [line for line in lines(text) if len(line) > TABLE_WIDTH]
        assert not too_wide, "\n".join(too_wide)


def test_every_line_fits_with_long_figure_labels_and_values():
    long = [
        dict(c, label="a figure whose label goes on and on " * 3, median=123_456_789.0)
        for c in COMPARISONS
    ]
    text = render(compare_report(comparisons=long), "table")
    assert all(len(line) <= TABLE_WIDTH for line in lines(text))
    assert "a figure whose label goes on and on" in text


def test_sections_in_order_headline_first():
    text = render(compare_report(), "table")
    titles = [
        "context switches",
        "creating processes and threads",
        "memory per worker",
        "connections",
    ]
    found = [line for line in lines(text) if line in titles]
    assert found == titles
    switch = text.index("context switches")
    assert (
        switch
        < text.index("  process switch, same core (net)")
        < text.index("  process switch, same core (round trip")
    )


def test_table_header_rows_and_summary():
    text = render(compare_report(), "table")
    out = lines(text)
    assert out[0].startswith(f"ostoolkit compare: {CI}")
    figure = next(i for i, line in enumerate(out) if line.startswith("figure "))
    assert out[figure + 1].startswith("------")
    assert "(baseline)" in out[figure]  # a long baseline label is cut, never that word
    assert out[figure + 2] == "context switches"
    row = next(line for line in out if line.startswith("  process switch, same core (net)"))
    assert "2.46 µs ▁▃▄▇█▄▃▁ ~" in row
    assert "1.06× slower  ▁▁▃▄█▇▄▃ ~!" in row  # three hosts: the cell drops value and interval
    assert f"{CI} vs {BASE}: 1 slower, 1 faster, 1 lower, 2 same, 1 unclear" in text.replace(
        "\n  ", " "
    )
    assert f"{GH} vs {BASE}: 5 same, 1 missing" in text.replace("\n  ", " ")
    legend = text.replace("\n", " ")
    assert "; ~ noisy; ² bimodal (two clusters); ! other tasks took over 10 %" in legend
    assert "* 6 result ids, 6 in more than one report" in text


def test_two_hosts_show_value_and_interval():
    two = [c for c in COMPARISONS if c["host"] != GH]
    text = render(compare_report(hosts=[BASE, CI], comparisons=two, summary=None), "table")
    row = next(line for line in lines(text) if line.startswith("  process switch, same core (net)"))
    assert "2.62 µs 1.06× [1.03–1.11] slower  ▁▁▃▄█▇▄▃ ~!" in row
    # no summary given: counted from the comparisons
    assert f"{CI} vs {BASE}: 1 slower, 1 faster, 1 lower, 2 same, 1 unclear" in text.replace(
        "\n  ", " "
    )


def test_small_table_exact():
    hosts = ["a", "b"]
    comparisons = [
        comparison(
            "x",
            "a",
            2.0,
            label="thread switch",
            section="switch",
            headline=True,
            baseline="a",
            verdict="baseline",
            strip=[1, 8, 2, 0, 0, 0, 0, 0],
        ),
        comparison(
            "x",
            "b",
            2.5,
            label="thread switch",
            section="switch",
            headline=True,
            baseline="a",
            ratio=1.25,
            ci_low=1.2,
            ci_high=1.3,
            verdict="slower",
            strip=[0, 0, 0, 0, 1, 8, 2, 0],
        ),
        comparison(
            "m",
            "a",
            1024.0,
            label="USS",
            unit="bytes",
            section="memory",
            baseline="a",
            verdict="baseline",
            n=1,
        ),
        comparison(
            "m",
            "b",
            1024.0,
            label="USS",
            unit="bytes",
            section="memory",
            baseline="a",
            ratio=1.0,
            verdict="same",
            reason="one sample",
            n=1,
        ),
    ]
    report = Report(
        "compare",
        (),
        "t",
        0.0,
        {},
        (),
        (),
        (),
        {
            "hosts": hosts,
            "baseline": "a",
            "threshold": 0.05,
            "changed_only": False,
            "comparisons": comparisons,
            "summary": {"b": {"slower": 1, "same": 1}},
            "regressions": [],
            "host_differences": [{"field": "kernel", "values": ["6.1", "6.8"]}],
        },
    )
    expected = """\
ostoolkit compare: b against a

host field  a    b
----------  ---  ---
kernel      6.1  6.8

figure           a (baseline)      b
---------------  ----------------  -----------------------------------------
context switches
  thread switch  2.00 µs ▃█▄▁▁▁▁▁  2.50 µs 1.25× [1.20–1.30] slower ▁▁▁▁▃█▄▁

memory per worker
  USS            1.0 KiB           1.0 KiB 1.00× one sample  same

cell: median, ratio to a, [its 95 % interval] or why none, verdict (same: the interval lies within ±5 %; slower, more…:
wholly outside it); strip: the samples over a range the hosts share

b vs a: 1 slower, 1 same
"""  # noqa: E501
    assert render(report, "table") == expected


def test_changed_only_hides_rows_of_only_same_and_baseline():
    report = compare_report(changed_only=True)
    text = render(report, "table")
    assert "process switch, same core (net)" in text  # slower on one host
    assert "forked process: USS per worker" in text  # unclear
    assert "fork + _exit + waitpid" in text  # missing on one host
    assert "round trip" not in text  # same everywhere
    assert "server threads" not in text
    assert "(--changed: 2 figures the same everywhere not shown)" in text.replace("\n  ", " ")
    assert "1 slower, 1 faster, 1 lower, 2 same, 1 unclear" in text  # the summary counts them all
    md = render(report, "markdown")
    assert "round trip" not in md
    assert "server threads" not in md


def test_changed_only_with_nothing_changed():
    quiet = [
        c
        for c in COMPARISONS
        if c["id"] in ("roundtrip.process.same_core", "conn.process.100.threads")
    ]
    report = compare_report(changed_only=True, comparisons=quiet, regressions=[])
    assert "no figure changed: every one is the same within the band" in render(report, "table")
    assert "no figure changed" in render(report, "markdown")


def test_regressions_block():
    gated = render(compare_report(fail_above=1.2), "table")
    title = f"1 regression: worse than {BASE} by more than --fail-above 1.20×:"
    block = gated[gated.index(title) :].replace("\n    ", " ")
    assert block.splitlines()[1] == (
        f"  ✗ {QPS[1]['label']} on {CI}: 0.49× lower (conn.process.100.qps)"
    )
    ungated = render(compare_report(), "table").replace("\n  ", " ")
    assert f"1 figure worse than {BASE} beyond ±5 %:" in ungated
    assert "regression" not in render(compare_report(regressions=[]), "table")
    assert "worse than" not in render(compare_report(regressions=[]), "table")


def test_regression_line_with_an_interval_and_one_other_host():
    regression = {
        "id": "x",
        "label": "thread switch",
        "host": "b",
        "verdict": "slower",
        "ratio": 1.25,
        "ci_low": 1.2,
        "ci_high": 1.3,
    }
    two = compare_report(
        hosts=["a", "b"],
        baseline="a",
        comparisons=[],
        summary={},
        regressions=[regression],
        fail_above=1.1,
    )
    text = render(two, "table")
    assert "1 regression: worse than a by more than --fail-above 1.10×:\n" in text
    assert "  ✗ thread switch: 1.25× [1.20–1.30] slower (x)\n" in text
    assert "- ✗ thread switch: 1.25× [1.20–1.30] slower (`x`)\n" in render(two, "markdown")


def test_host_block_lists_only_the_given_differences():
    text = render(compare_report(), "table")
    out = lines(text)
    start = out.index(next(line for line in out if line.startswith("host field")))
    block = out[start : out.index("", start)]
    rule = next(i for i, line in enumerate(block) if line.startswith("----"))
    assert [line.split("  ")[0] for line in block[rule + 1 :]] == ["CPU model", "kernel"]
    assert block[rule + 1].split()[2:] == [
        "AMD",
        "EPYC",
        "7B13",
        "AMD",
        "EPYC",
        "Intel",
        "Xeon",
        "8370C",
    ]
    no_diff = render(compare_report(host_differences=[]), "table")
    assert "host field" not in no_diff


# -- markdown


def test_markdown_grouped_tables_summary_and_legend():
    md = render(compare_report(), "markdown")
    assert md.startswith("### ostoolkit compare\n")
    assert f"- {CI} vs {BASE}: 1 slower, 1 faster, 1 lower, 2 same, 1 unclear" in md
    headings = re.findall(r"^#### (.+)$", md, flags=re.M)
    assert headings == [
        "context switches",
        "creating processes and threads",
        "memory per worker",
        "connections",
    ]
    header = f"| figure | {BASE} (baseline) | {CI} | {GH} |"
    assert md.count(header) == 4
    assert "| process switch, same core (net) | 2.46\u00a0µs ▁▃▄▇█▄▃▁ \\~ | " in md
    assert "| fork + \\_exit + waitpid |" in md
    assert f"**1 figure worse than {_md_escaped(BASE)} beyond ±5\u00a0%:**" in md
    assert "| host field |" in md
    assert "| CPU model | AMD EPYC 7B13 | AMD EPYC | Intel Xeon 8370C |" in md
    for line in lines(md):  # every table row has as many cells as its header
        if line.startswith("| ") and "figure" not in line and "host field" not in line:
            assert line.count(" | ") + 1 in (4, 3)


def test_mermaid_chart_per_host_is_a_ratio_chart_from_zero_with_the_baseline_at_one():
    md = render(compare_report(), "markdown")
    blocks = mermaid_blocks(md)
    assert len(blocks) == 2  # one per host other than the baseline
    charts = []
    for body in blocks:
        assert body[1] == "xychart-beta horizontal"
        series = check_xychart(body)  # palette, labels within the cap, axis from 0
        assert set(series["line"]) == {"1"}  # the baseline
        assert len(body) == 9  # three bars: the interval's high end, the median, its low end
        charts.append((body, series))
    (ci_chart, ci), (_, gh) = charts
    # headline figures only, in the table's order, each with its ratio; one without is left out
    assert ci["labels"] == [
        "process switch, same core (…: 1.06×",
        "fork + _exit + waitpid: 0.93×",
        "forked process: USS per wor…: 1.05×",
    ]
    assert (ci["bar"], ci["bar:2"], ci["bar:3"]) == (
        ["1.108", "0.94", "1.051"],
        ["1.065", "0.925", "1.051"],
        ["1.031", "0.9", "1.051"],  # the last figure has no interval: its bar is all grey
    )
    assert (gh["bar"], gh["bar:2"], gh["bar:3"]) == (
        ["1.02", "1.03"],
        ["1.004", "1"],
        ["0.98", "0.97"],
    )
    # how to read them, said once under the charts
    assert md.count("The blue span is the ratio's 95\u00a0% interval") == 1
    # both hosts' names, each cut, within what mermaid draws of a title
    assert ci_chart[2] == (
        '    title "ci-runner-ubuntu-24.04-x64-lar… vs laptop-of-a-developer (AMD…"'
    )
    # which side is worse, from the figures' units (times and sizes: above 1)
    assert ci_chart[4] == '    y-axis "ratio to baseline (above 1: worse)" 0 --> 1.25'


def test_mermaid_text_is_sanitised_and_numbers_plain():
    weird = [dict(c, label='say "hi" `now`') for c in SWITCH]
    weird[1]["ratio"] = 0.00001234
    view = compare_view(data(comparisons=weird))
    chart = mermaid_chart(view, CI)
    assert chart[4] == "    x-axis [\"say 'hi' 'now': 0.000×\"]"
    assert chart[5].endswith(" 0 --> 1.25")  # never below 1: the baseline's line stays in
    assert chart[6:9] == ["    bar [1.108]", "    bar [0]", "    bar [0]"]
    gh = mermaid_chart(view, GH)
    assert gh[4:] == [
        "    x-axis [\"say 'hi' 'now': 1.00×\"]",
        chart[5],
        "    bar [1.02]",
        "    bar [1.004]",
        "    bar [0.98]",
        "```",  # no line through one point: mermaid draws it as nothing
    ]
    rates = [dict(c, unit="per_s", ratio=0.8) for c in SWITCH]
    rate_chart = mermaid_chart(compare_view(data(comparisons=rates)), CI)
    assert rate_chart[5] == '    y-axis "ratio to baseline (below 1: worse)" 0 --> 1.25'
    no_headline = compare_view(data(comparisons=[dict(c, headline=False) for c in SWITCH]))
    assert mermaid_chart(no_headline, CI) == []


# -- json and robustness


def test_json_is_the_report_unchanged():
    report = compare_report()
    assert render(report, "json") == report.to_json()
    assert json.loads(render(report, "json"))["data"]["comparisons"][0]["id"] == MEMORY[0]["id"]


def test_only_a_report_with_comparisons_is_rendered_as_a_compare():
    assert is_compare(compare_report())
    old = Report("compare", (), "t", 0.0, {}, (), data={"table": {"columns": [], "rows": []}})
    assert not is_compare(old)


@pytest.mark.parametrize(
    "changes",
    [
        {"comparisons": []},
        {"comparisons": [{}]},
        {"comparisons": [None, "x", 3, {"id": None, "host": None, "median": "2"}]},
        {
            "comparisons": [
                dict(
                    c,
                    strip="x",
                    ratio="1.2",
                    ci_low=None,
                    ci_high=1.1,
                    status=None,
                    other_cpu_share="a",
                    steal_share=float("nan"),
                    unit=None,
                    label=None,
                    section=None,
                    verdict=None,
                    reason=None,
                )
                for c in COMPARISONS
            ]
        },
        {"comparisons": [{k: v for k, v in c.items() if k in ("id", "host")} for c in COMPARISONS]},
        {"hosts": None, "baseline": None},
        {"hosts": [], "baseline": "", "comparisons": [{"id": "x", "label": "a\nb | c"}]},
        {"hosts": "abc", "baseline": 3, "threshold": "5 %", "changed_only": "yes"},
        {"summary": {CI: {"slower": "3", "same": None}}, "regressions": [None, {}]},
        {"summary": [], "regressions": "x", "host_differences": [None, {"values": "x"}]},
        {"host_differences": [{"field": "kernel", "values": ["a"]}]},  # fewer values than hosts
        {"host_differences": [{"field": "a" * 200, "values": ["b" * 300, None, [1, 2]]}]},
    ],
)
def test_no_crash_on_missing_or_ill_typed_fields(changes):
    report = compare_report(**changes)
    table = render(report, "table")
    assert table.startswith("ostoolkit compare")
    if len(compare_view(report.data).hosts) <= 3:
        assert all(len(line) <= TABLE_WIDTH for line in lines(table))
    assert render(report, "markdown").startswith("### ostoolkit compare")


def test_hosts_and_baseline_from_the_comparisons_when_not_given():
    view = compare_view(data(hosts=None, baseline=None))
    assert view.hosts == [BASE, CI, GH]
    assert view.baseline == BASE  # the host whose verdict is "baseline"


def test_one_run_and_exact_say_so_in_place_of_the_interval():
    """One run's interval decides nothing, and an exact figure has none: the cell says why."""
    one_run = dict(SWITCH[1], verdict="unclear", reason="one run", other_cpu_share=0.0)
    assert compare_cell(one_run) == "2.62 µs 1.06× one run unclear ▁▁▃▄█▇▄▃ ~"
    assert compare_cell_markdown(one_run) == "2.62\u00a0µs 1.06× **unclear** (one run) ▁▁▃▄█▇▄▃ \\~"
    exact = dict(THREADS[1], verdict="more", reason="exact", ratio=9.18, ci_low=9.18, ci_high=9.18)
    assert compare_cell(exact) == "101 9.18× exact more"


# -- markdown for a job summary: at most MARKDOWN_COLUMNS columns, however many hosts


def markdown_heads(text):
    """The header row of each markdown table in ``text``, as stripped cells."""
    rows = text.splitlines()
    return [
        [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]
        for line, below in zip(rows, [*rows[1:], ""], strict=True)
        if line.startswith("| ") and re.fullmatch(r"\|(:?-{3,}:?\|)+", below)
    ]


def many_hosts(count):
    """A compare report of ``count`` hosts: one figure each, a host field that differs."""
    hosts = [f"host{i}" for i in range(count)]
    items = [
        comparison(
            "switch.process.same_core",
            host,
            2.0 + i / 10,
            baseline=hosts[0],
            section="switch",
            label="process switch, same core (net)",
            ratio=None if i == 0 else 1.0 + i / 20,
        )
        for i, host in enumerate(hosts)
    ]
    differences = [{"field": "CPUs allowed", "values": [str(i) for i in range(count)]}]
    return compare_report(
        hosts=hosts,
        baseline=hosts[0],
        comparisons=items,
        summary={},
        regressions=[],
        host_differences=differences,
    )


def test_every_compare_markdown_table_is_narrow():
    for md in (render(compare_report(), "markdown"), render(many_hosts(2), "markdown")):
        heads = markdown_heads(md)
        assert heads
        assert all(len(head) <= MARKDOWN_COLUMNS for head in heads)


def test_compare_markdown_of_many_hosts_splits_them_each_beside_the_baseline():
    md = render(many_hosts(12), "markdown")
    heads = markdown_heads(md)
    figures = [head for head in heads if head[0] == "figure"]
    fields = [head for head in heads if head[0] == "host field"]
    assert len(figures) == len(fields) == 3  # 11 hosts beside the baseline, 4 at most a table
    for head in heads:
        assert len(head) <= MARKDOWN_COLUMNS
    assert all(head[1] == "host0 (baseline)" for head in figures)
    assert [h for head in figures for h in head[2:]] == [f"host{i}" for i in range(1, 12)]
    assert [h for head in fields for h in head[1:] if h != "host0"] == [
        f"host{i}" for i in range(1, 12)
    ]
    assert "| CPUs allowed | 0 | 9 | 10 | 11 |" in md  # each value under its own host
    assert "| process switch, same core (net) | 2.00\u00a0µs | 2.10\u00a0µs 1.05× same |" in md


def test_compare_markdown_escapes_html_and_pipes_in_labels_and_findings():
    items = [dict(item, label="switch <pid> | a|b", headline=False) for item in SWITCH]
    report = compare_report(comparisons=items, regressions=[], summary={})
    report = dataclasses.replace(report, findings=("read <postmaster pid> | a|b",))
    md = render(report, "markdown")
    assert "| switch &lt;pid> \\| a\\|b |" in md
    assert "- read &lt;postmaster pid> \\| a\\|b\n" in md
    assert "<pid>" not in md
