"""Charts as text: ``data.charts`` as mermaid xycharts in markdown and bars in the terminal, and
compare's ratio chart.

The one home for how a chart becomes text: mermaid's strings and numbers (its grammar takes no
quotes inside strings and no exponents), its axis ranges, colours and labels, and the
terminal's bars. Every chart of a quantity starts at 0, so a bar's height is its value: mermaid
would start an axis without a range at the smallest value and draw a 9 % change as a full bar
beside a sliver. xychart-beta draws no values on its bars (mermaid 10.9 has no data labels), so
each x label carries its value where that fits; else the title says the table holds them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from ostoolkit.payloads import Chart
from ostoolkit.units import format_value

# The terminal plot's longest bar, in characters; each point's bar is scaled to it.
PLOT_WIDTH = 40
BAR = "█"
# Bars and lines readable on GitHub's light and dark backgrounds (mermaid's default plot colour,
# #ECECFF, all but vanishes on white); a chart's first series takes the first colour.
PALETTE = "#4C78A8,#F58518,#54A24B,#E45756"


def _init(palette: str) -> str:
    return '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + palette + '"}}}}%%'


INIT = _init(PALETTE)
# Compare's chart, series by series: the interval's light end, its dark part up to the median,
# the grey below it, the baseline's line at 1 (orange, as the other charts' second series).
RATIO_PALETTE = "#9ECAE9,#4C78A8,#BAB0AC,#F58518"
RATIO_INIT = _init(RATIO_PALETTE)
# The fleet's spread chart, series by series: out to the highest host (light), p10 to p90
# (dark), out to the lowest (light), the grey below it, and the fleet's median's line at 1.
SPREAD_PALETTE = "#9ECAE9,#4C78A8,#9ECAE9,#BAB0AC,#F58518"
SPREAD_INIT = _init(SPREAD_PALETTE)
# The longest name in an x label and the longest label with its value ("...: 28.2k"), in
# characters: mermaid draws labels whole, so a longer one crowds its neighbours (vertical
# charts) or, past about 45 characters, hides every label (horizontal ones, the left axis).
NAME_CAP = 28
LABEL_CAP = NAME_CAP + 8
# The characters a vertical chart's x labels may take together (700 px wide, 14 px labels),
# and a title's (mermaid centres a title and clips what passes the chart's edges, at 20 px).
LABELS_WIDTH = 76
TITLE_CAP = 62
# The worse side of a ratio by unit, as compare.engine.WORDS sets it (a test holds them equal):
# a time, size or count is worse up, a rate down; other units have no worse side.
WORSE_UP = ("us", "ms", "bytes", "count", "number")
WORSE_DOWN = ("per_s",)
RATIO_STEP = 0.25  # the ratio chart's axis ends on a multiple of it


def chart_text(text: str, limit: int = 48) -> str:
    """Text inside a mermaid string: no double quotes or backticks, one line, cut to limit."""
    text = " ".join(text.replace('"', "'").replace("`", "'").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def chart_number(value: float) -> str:
    """A number as mermaid's grammar takes it: plain decimals, no exponent, no separators."""
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def short_number(value: float) -> str:
    """A value for an x label, three digits at most past the first: 28.2k, 3072, 1.01."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    if magnitude >= 100 or value == 0:
        return f"{value:.0f}"
    return f"{value:.3g}" if magnitude >= 0.001 else f"{value:.1e}"


def axis_top(largest: float) -> float:
    """A round axis end a little above ``largest``: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k."""
    if not largest > 0 or not math.isfinite(largest):
        return 1.0
    target = largest * 1.05
    power = 10.0 ** math.floor(math.log10(target))
    return next(m * power for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= target)


def unique_labels(names: Sequence[str], suffixes: Sequence[str]) -> list[str]:
    """Each name, cut to NAME_CAP (and LABEL_CAP with its suffix), then its suffix ("10: 28.2k"),
    made unique with "~2", "~3"... (mermaid draws two equal categories as one)."""
    labels: list[str] = []
    for name, suffix in zip(names, suffixes, strict=True):
        tail = f": {suffix}" if suffix else ""
        room = min(NAME_CAP, LABEL_CAP - len(tail))
        label = chart_text(name, room) + tail
        count = 1
        while label in labels:
            count += 1
            mark = f"~{count}"
            label = chart_text(name, room - len(mark)) + mark + tail
        labels.append(label)
    return labels


def _quoted(texts: Sequence[str]) -> str:
    return ", ".join(f'"{text}"' for text in texts)


def mermaid_xychart(chart: Chart) -> list[str]:
    """One chart as a fenced mermaid xychart, bars or a line (``kind``), its y axis from 0 (or
    from below the lowest value, when one is negative), its values in its x labels if they fit."""
    values = chart["values"]
    names = [str(value) for value in chart["x"]]
    labels = unique_labels(names, [short_number(v) for v in values])
    title = chart_text(chart["title"], TITLE_CAP)
    if sum(len(label) + 2 for label in labels) > LABELS_WIDTH:
        labels = unique_labels(names, ["" for _ in names])
        note = " (values in the table)"
        title = chart_text(chart["title"], TITLE_CAP - len(note)) + note
    low = min(0.0, *values) if values else 0.0
    bottom = -axis_top(-low) if low < 0 else 0.0
    top = axis_top(max(0.0, *values) if values else 0.0)
    y_range = f"{chart_number(bottom)} --> {chart_number(top)}"
    kind = chart.get("kind", "bar") if len(values) > 1 else "bar"  # a one-point line is invisible
    return [
        "```mermaid",
        INIT,
        "xychart-beta",
        f'    title "{title}"',
        f'    x-axis "{chart_text(chart["x_label"])}" [{_quoted(labels)}]',
        f'    y-axis "{chart_text(chart["y_label"])}" {y_range}',
        f"    {kind} [{', '.join(chart_number(v) for v in values)}]",
        "```",
    ]


def ratio_axis(units: Sequence[str]) -> str:
    """The ratio chart's axis title: which side of 1 (the baseline) is worse for its units."""
    up = any(unit in WORSE_UP for unit in units)
    down = any(unit in WORSE_DOWN for unit in units)
    side = {
        (True, True): "worse: above 1, for a rate below 1",
        (True, False): "above 1: worse",
        (False, True): "below 1: worse",
    }.get((up, down), "1: the same")
    return f"ratio to baseline ({side})"


class RatioPoint(NamedTuple):
    """One figure of compare's chart: its label, ratio to the baseline, the ends of the
    ratio's interval (None without one: one run, or exact) and its unit."""

    label: str
    ratio: float
    low: float | None
    high: float | None
    unit: str


def ratio_caption(baseline: str, level: str) -> str:
    """How to read compare's chart, said under it (xychart-beta draws no legend)."""
    return (
        f"Each bar is a ratio to {baseline}, the line at 1 is {baseline} itself. The blue span"
        f" is the ratio's {level} interval, dark up to the median and light above it; grey lies"
        " below the interval; a bar all grey has none (one run, or exact) or one too narrow"
        " to draw."
    )


def mermaid_ratio_chart(host: str, baseline: str, points: Sequence[RatioPoint]) -> list[str]:
    """Compare's chart of one host's headline figures, a horizontal bar per figure, from 0.

    Three bars overlap per figure, drawn in order (xychart-beta has no error bars): up to the
    interval's high end (light), up to the median (dark), up to its low end (grey), so the
    blue span is the interval and its shade changes at the median; a line at 1 marks the
    baseline (of two figures or more), the labels carry the ratios and the axis says which
    side is worse. [] without a figure.
    """
    if not points:
        return []
    highs = [p.ratio if p.high is None or p.low is None else max(p.high, p.ratio) for p in points]
    lows = [p.ratio if p.high is None or p.low is None else min(p.low, p.ratio) for p in points]
    suffixes = [format_value(p.ratio, "factor") for p in points]
    labels = unique_labels([p.label for p in points], suffixes)
    axis = ratio_axis([p.unit for p in points])
    title = f"{chart_text(host, TITLE_CAP // 2)} vs {chart_text(baseline, TITLE_CAP // 2 - 4)}"
    series = [highs, [p.ratio for p in points], lows]
    return _bars_over_1(RATIO_INIT, title, labels, axis, series)


def _bars_over_1(
    init: str, title: str, labels: Sequence[str], axis: str, series: Sequence[Sequence[float]]
) -> list[str]:
    """A horizontal chart of ratios from 0: ``series`` as bars drawn over each other in order
    (the first the longest), and a line at 1 (of two labels or more: mermaid draws a line
    through one point as nothing, seen in headless Chromium)."""
    top = math.ceil(max(1.0, *series[0]) * 1.1 / RATIO_STEP) * RATIO_STEP  # room past the bars
    return [
        "```mermaid",
        init,
        "xychart-beta horizontal",
        f'    title "{title}"',
        f"    x-axis [{_quoted(labels)}]",
        f'    y-axis "{axis}" 0 --> {chart_number(top)}',
        *(f"    bar [{', '.join(chart_number(v) for v in values)}]" for values in series),
        *([f"    line [{', '.join('1' for _ in labels)}]"] if len(labels) > 1 else []),
        "```",
    ]


class SpreadPoint(NamedTuple):
    """One figure across a fleet: its label and the hosts' lowest, p10, p90 and highest
    medians as ratios to the fleet's median."""

    label: str
    lowest: float
    p10: float
    p90: float
    highest: float


def spread_caption() -> str:
    """How to read the fleet's spread chart, said under it."""
    return (
        "Each bar is one figure across the hosts, as ratios to the fleet's median (the line at"
        " 1): dark blue from p10 to p90, light blue out to the lowest and the highest host, grey"
        " below the lowest; each label gives p90 / p10."
    )


def mermaid_spread_chart(points: Sequence[SpreadPoint]) -> list[str]:
    """The fleet view's chart of its headline figures, a horizontal bar per figure from 0: four
    bars drawn over each other, as compare's chart draws an interval (xychart-beta has no
    box plot); [] without a figure."""
    if not points:
        return []
    suffixes = [format_value(p.p90 / p.p10, "factor") if p.p10 > 0 else "" for p in points]
    labels = unique_labels([p.label for p in points], suffixes)
    series = [
        [p.highest for p in points],
        [p.p90 for p in points],
        [p.p10 for p in points],
        [p.lowest for p in points],
    ]
    title, axis = "the fleet: each figure's spread across the hosts", "ratio to the fleet's median"
    return _bars_over_1(SPREAD_INIT, title, labels, axis, series)


def text_plot(chart: Chart) -> list[str]:
    """One chart as horizontal bars for a terminal: a line per x value, its value after; every
    bar starts at 0 and is scaled to the largest value (nothing drawn for 0 or below)."""
    top = max((value for value in chart["values"] if value > 0), default=0.0)
    width = max((len(str(x)) for x in chart["x"]), default=0)
    lines = [f"{chart['title']} ({chart['y_label']} by {chart['x_label']})"]
    for x, value in zip(chart["x"], chart["values"], strict=True):
        cells = round(PLOT_WIDTH * value / top) if top and value > 0 else 0
        bar = BAR * max(cells, 1 if value > 0 else 0)
        number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        lines.append(f"  {str(x).rjust(width)} │{bar} {number}")
    return lines
