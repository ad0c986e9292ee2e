"""Charts of one series (``data.charts``): a mermaid xychart in markdown, a bar plot in text.

The one home for how a chart becomes text: mermaid's strings and numbers (its grammar takes no
quotes inside strings and no exponents), and the terminal's bars, scaled to the largest value.
"""

from __future__ import annotations

from ostoolkit.payloads import Chart

# The terminal plot's longest bar, in characters; each point's bar is scaled to it.
PLOT_WIDTH = 40
BAR = "█"


def chart_text(text: str, limit: int = 48) -> str:
    """Text inside a mermaid string: no double quotes or backticks, one line, cut to limit."""
    text = " ".join(text.replace('"', "'").replace("`", "'").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def chart_number(value: float) -> str:
    """A number as mermaid's grammar takes it: plain decimals, no exponent, no separators."""
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def mermaid_xychart(chart: Chart) -> list[str]:
    """One chart as a fenced mermaid xychart: bars, or a line for a curve (``kind``)."""
    x = ", ".join(f'"{chart_text(str(value), 24)}"' for value in chart["x"])
    values = ", ".join(chart_number(value) for value in chart["values"])
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{chart_text(chart["title"], 80)}"',
        f'    x-axis "{chart_text(chart["x_label"])}" [{x}]',
        f'    y-axis "{chart_text(chart["y_label"])}"',
        f"    {chart.get('kind', 'bar')} [{values}]",
        "```",
    ]


def text_plot(chart: Chart) -> list[str]:
    """One chart as horizontal bars for a terminal: a line per x value, its value after."""
    top = max((value for value in chart["values"] if value > 0), default=0.0)
    width = max((len(str(x)) for x in chart["x"]), default=0)
    lines = [f"{chart['title']} ({chart['y_label']} by {chart['x_label']})"]
    for x, value in zip(chart["x"], chart["values"], strict=True):
        cells = round(PLOT_WIDTH * value / top) if top and value > 0 else 0
        bar = BAR * max(cells, 1 if value > 0 else 0)
        number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        lines.append(f"  {str(x).rjust(width)} │{bar} {number}")
    return lines
