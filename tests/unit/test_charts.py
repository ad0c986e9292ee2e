"""Charts as text: mermaid xycharts (bars or a line) from data.charts, compare's ratio chart,
and the terminal's bar plot."""

from harness.mermaid import check_xychart

from ostoolkit.compare.engine import WORDS
from ostoolkit.render.charts import (
    INIT,
    LABEL_CAP,
    NAME_CAP,
    PALETTE,
    PLOT_WIDTH,
    RATIO_INIT,
    TITLE_CAP,
    WORSE_DOWN,
    WORSE_UP,
    RatioPoint,
    axis_top,
    chart_number,
    chart_text,
    mermaid_ratio_chart,
    mermaid_xychart,
    ratio_caption,
    short_number,
    text_plot,
    unique_labels,
)

CURVE = {
    "title": 'process switch "by" working set',
    "x_label": "KB per task",
    "y_label": "µs per switch",
    "x": ["0 KB (L1d)", "64 KB (L2)", "1024 KB (L2)"],
    "values": [1.01, 1.22, 9.58],
    "kind": "line",
}
TPS = {
    "title": "PostgreSQL: transactions per second",
    "x_label": "clients",
    "y_label": "tx/s",
    "x": ["10", "100", "500"],
    "values": [28231.0, 25690.0, 25702.0],
}


def test_mermaid_draws_a_curve_as_a_line_and_keeps_its_strings_valid():
    lines = mermaid_xychart(CURVE)
    assert (lines[0], lines[1], lines[2], lines[-1]) == ("```mermaid", INIT, "xychart-beta", "```")
    assert "    title \"process switch 'by' working set\"" in lines
    axis = '    x-axis "KB per task" ["0 KB (L1d): 1.01", "64 KB (L2): 1.22", "1024 KB (L2): 9.58"]'
    assert axis in lines
    assert '    y-axis "µs per switch" 0 --> 12' in lines
    assert "    line [1.01, 1.22, 9.58]" in lines
    check_xychart(lines[1:-1])
    bars = mermaid_xychart({**CURVE, "kind": "bar"})
    assert "    bar [1.01, 1.22, 9.58]" in bars
    default = {key: value for key, value in CURVE.items() if key != "kind"}
    assert "    bar [1.01, 1.22, 9.58]" in mermaid_xychart(default)


def test_every_bar_starts_at_zero_so_heights_are_the_values():
    lines = mermaid_xychart(TPS)
    check_xychart(lines[1:-1])
    # a 9 % drop is a 9 % shorter bar: the axis runs from 0, not from the smallest value
    assert '    y-axis "tx/s" 0 --> 30000' in lines
    assert '    x-axis "clients" ["10: 28.2k", "100: 25.7k", "500: 25.7k"]' in lines
    negative = mermaid_xychart({**TPS, "values": [-120.0, 800.0, 1000.0]})
    assert '    y-axis "tx/s" -150 --> 1200' in negative  # a negative value stays in view
    check_xychart(negative[1:-1])
    empty = mermaid_xychart({**TPS, "values": [0.0, 0.0, 0.0]})
    assert '    y-axis "tx/s" 0 --> 1' in empty


def test_values_leave_the_labels_when_they_do_not_fit_and_the_title_says_so():
    many = {**CURVE, "x": [f"{2**i} KB (L2)" for i in range(8)], "values": [1.5] * 8}
    lines = mermaid_xychart(many)
    check_xychart(lines[1:-1])
    assert lines[3].endswith(' (values in the table)"')
    assert '"128 KB (L2)"' in lines[4]
    long_title = mermaid_xychart({**many, "title": "t" * 100})[3]
    assert long_title == f'    title "{"t" * 39}… (values in the table)"'
    assert len(long_title) - len('    title ""') == TITLE_CAP  # mermaid clips a longer one


def test_axis_ends_on_a_round_number_a_little_above_the_largest_value():
    assert [axis_top(v) for v in (1000, 950, 28231, 9.58, 0.7, 3.1)] == [
        1200,
        1000,
        30000,
        12,
        0.8,
        4,
    ]
    assert axis_top(0) == axis_top(float("nan")) == 1


def test_labels_are_cut_with_an_ellipsis_and_stay_unique():
    names = ["process switch, same core (net) of a very long kind"] * 3 + ["fork"]
    labels = unique_labels(names, ["1.07×", "1.07×", "0.99×", "1.00×"])
    assert all(len(label) <= LABEL_CAP for label in labels)
    assert all(len(label.split(": ")[0]) <= NAME_CAP for label in labels)
    assert len(set(labels)) == 4
    assert labels[0] == "process switch, same core (…: 1.07×"  # the name cut to 28
    assert labels[1] == "process switch, same core…~2: 1.07×"
    assert labels[3] == "fork: 1.00×"
    assert unique_labels(["a", "a"], ["", ""]) == ["a", "a~2"]


def test_numbers_and_text_as_mermaid_takes_them():
    assert chart_number(23874.0) == "23874"
    assert chart_number(0.0004) == "0"
    assert chart_number(2048.5) == "2048.5"
    assert chart_text("a `b`\nc", 10) == "a 'b' c"
    assert chart_text("x" * 60, 10) == "x" * 9 + "…"
    assert [short_number(v) for v in (28231, 3072, 2048.5, 9.58, 0, 1.5e6, -120)] == [
        "28.2k",
        "3072",
        "2048",
        "9.58",
        "0",
        "1.5M",
        "-120",
    ]


def test_ratio_chart_marks_the_baseline_and_says_which_side_is_worse():
    points = [
        RatioPoint("process switch, same core (net)", 1.065, 1.03, 1.11, "us"),
        RatioPoint("tx/s", 0.91, None, None, "per_s"),
    ]
    lines = mermaid_ratio_chart("ci", "laptop", points)
    assert lines[1:3] == [RATIO_INIT, "xychart-beta horizontal"]
    series = check_xychart(lines[1:-1])
    assert series["labels"] == ["process switch, same core (…: 1.06×", "tx/s: 0.91×"]
    # drawn in order, each over the last: the interval's high end, the median, its low end;
    # a figure without an interval is all grey
    assert series["bar"] == ["1.11", "0.91"]
    assert series["bar:2"] == ["1.065", "0.91"]
    assert series["bar:3"] == ["1.03", "0.91"]
    assert series["line"] == ["1", "1"]  # the baseline
    assert (
        lines[5] == '    y-axis "ratio to baseline (worse: above 1, for a rate below 1)" 0 --> 1.25'
    )
    times = mermaid_ratio_chart("ci", "laptop", points[:1])
    assert '    y-axis "ratio to baseline (above 1: worse)" 0 --> 1.25' in times
    assert times[3] == '    title "ci vs laptop"'
    rates = mermaid_ratio_chart("ci", "laptop", points[1:])
    assert '    y-axis "ratio to baseline (below 1: worse)" 0 --> 1.25' in rates
    assert mermaid_ratio_chart("ci", "laptop", []) == []


def test_ratio_chart_axis_makes_room_for_the_interval_and_keeps_the_median_inside_it():
    wide = mermaid_ratio_chart("ci", "laptop", [RatioPoint("x", 1.2, 1.1, 1.9, "us")])
    assert wide[5].endswith(" 0 --> 2.25")  # past the high end, not only the median
    odd = mermaid_ratio_chart("ci", "laptop", [RatioPoint("x", 1.2, 1.3, 1.4, "us")])
    assert odd[6:9] == ["    bar [1.4]", "    bar [1.2]", "    bar [1.2]"]
    assert "95 % interval" in ratio_caption("laptop", "95 %")


def test_worse_sides_follow_the_compare_engine():
    assert set(WORSE_UP) == {unit for unit, words in WORDS.items() if words[2] == "up"}
    assert set(WORSE_DOWN) == {unit for unit, words in WORDS.items() if words[2] == "down"}


def test_palette_is_in_the_init_line():
    assert f'"plotColorPalette": "{PALETTE}"' in INIT
    assert INIT.startswith("%%{init: ")
    assert INIT.endswith("}%%")


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


def test_terminal_bars_start_at_zero():
    _, *rows = text_plot(TPS)  # 28231 vs 25690: 40 cells vs 36, not a full bar vs a sliver
    assert [row.count("█") for row in rows] == [40, 36, 36]
