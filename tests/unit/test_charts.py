"""data.charts as text: mermaid xycharts (bars or a line) and the terminal's bar plot."""

from ostoolkit.render.charts import PLOT_WIDTH, chart_number, chart_text, mermaid_xychart, text_plot

CURVE = {
    "title": 'process switch "by" working set',
    "x_label": "KB per task",
    "y_label": "µs per switch",
    "x": ["0 KB (L1d)", "64 KB (L2)", "1024 KB (L2)"],
    "values": [1.01, 1.22, 9.58],
    "kind": "line",
}


def test_mermaid_draws_a_curve_as_a_line_and_keeps_its_strings_valid():
    lines = mermaid_xychart(CURVE)
    assert (lines[0], lines[-1]) == ("```mermaid", "```")
    assert "    title \"process switch 'by' working set\"" in lines
    assert '    x-axis "KB per task" ["0 KB (L1d)", "64 KB (L2)", "1024 KB (L2)"]' in lines
    assert "    line [1.01, 1.22, 9.58]" in lines
    bars = mermaid_xychart({**CURVE, "kind": "bar"})
    assert "    bar [1.01, 1.22, 9.58]" in bars
    default = {key: value for key, value in CURVE.items() if key != "kind"}
    assert "    bar [1.01, 1.22, 9.58]" in mermaid_xychart(default)


def test_numbers_and_text_as_mermaid_takes_them():
    assert chart_number(23874.0) == "23874"
    assert chart_number(0.0004) == "0"
    assert chart_number(2048.5) == "2048.5"
    assert chart_text("a `b`\nc", 10) == "a 'b' c"
    assert chart_text("x" * 60, 10) == "x" * 9 + "…"


def test_terminal_plot_scales_bars_to_the_largest_value():
    title, *rows = text_plot(CURVE)
    assert title == 'process switch "by" working set (µs per switch by KB per task)'
    assert rows[2].endswith("█" * PLOT_WIDTH + " 9.58")
    assert rows[0] == "    0 KB (L1d) │" + "█" * 4 + " 1.01"  # 40 × 1.01 / 9.58 ≈ 4
    assert [row.index("│") for row in rows] == [15, 15, 15]  # the x labels line up
    flat = text_plot({**CURVE, "values": [0.0, 0.001, 25_000.0]})
    assert flat[1].endswith("│ 0")  # nothing drawn for zero
    assert flat[2].endswith("│█ 0.001")  # the smallest positive value still shows
    assert flat[3].endswith(" 25,000")
