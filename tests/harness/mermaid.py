"""What every mermaid xychart ostoolkit writes must be: the palette's init line, a y axis with
an explicit range from 0 (or from below a negative value), x labels within the cap and unique,
one value per label; the tests of data.charts, compare's chart and the examples share it.
"""

from __future__ import annotations

import re

from ostoolkit.render.charts import INIT, LABEL_CAP, PALETTE, RATIO_INIT, SPREAD_INIT

NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
STRING = r'"[^"`\n]*"'
SERIES = rf"({NUMBER}(?:, {NUMBER})*)"


def mermaid_blocks(text: str) -> list[list[str]]:
    """The lines inside each fenced mermaid block of a markdown text."""
    blocks = re.findall(r"^```mermaid\n(.*?)\n```$", text, flags=re.M | re.S)
    return [block.split("\n") for block in blocks]


def check_xychart(body: list[str]) -> dict[str, list[str]]:
    """Assert that one block is a chart as ostoolkit draws it; its labels and series by kind."""
    assert body[0] in (INIT, RATIO_INIT, SPREAD_INIT)
    assert PALETTE.split(",")[0] in body[0]
    assert body[1] in ("xychart-beta", "xychart-beta horizontal"), body[1]
    assert re.fullmatch(rf"    title {STRING}", body[2]), body[2]
    axis = re.fullmatch(rf"    x-axis (?:{STRING} )?\[({STRING}(?:, {STRING})*)\]", body[3])
    assert axis, body[3]
    labels = [label[1:-1] for label in re.findall(STRING, axis.group(1))]
    assert all(len(label) <= LABEL_CAP for label in labels), labels
    assert len(set(labels)) == len(labels), labels
    y = re.fullmatch(rf"    y-axis {STRING} ({NUMBER}) --> ({NUMBER})", body[4])
    assert y, body[4]
    low, high = float(y.group(1)), float(y.group(2))
    series: dict[str, list[str]] = {"labels": labels}
    for line in body[5:]:
        plot = re.fullmatch(rf"    (bar|line) \[{SERIES}\]", line)
        assert plot, line
        values = plot.group(2).split(", ")
        assert len(values) == len(labels)
        assert all(low <= float(v) <= high for v in values), (line, low, high)
        kind = plot.group(1)
        count = sum(1 for key in series if key.split(":")[0] == kind)
        series[f"{kind}:{count + 1}" if count else kind] = values  # bar, bar:2, bar:3...
    plotted = [float(v) for kind in ("bar", "line") for v in series.get(kind, [])]
    assert low == 0 or (low < 0 and min(plotted) < 0), body[4]  # from 0 unless a value is below
    assert "bar" in series or "line" in series
    return series
