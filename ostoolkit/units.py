"""Numbers with units as text: the one place that decides digits, separators and unit words.

Two precisions: ``format_value`` for figures in tables and cells (a precision that suits the
size, so columns line up), and the ``format_*`` helpers below it for figures inside sentences
(findings), which round harder because a reader wants the gist.
"""

from __future__ import annotations

import re

UNIT_SUFFIX = {
    "us": " µs",
    "ms": " ms",
    "count": "",
    "per_s": "/s",
    "ratio": "×",
    "bool": "",
    "number": "",
}
# A ratio of two hosts' figures ("factor", as a cell shows it) and an interval's ends
# ("factor_bound", inside brackets): two decimals around 1, so 1.00× and 0.99× line up.
FACTOR_SUFFIX = {"factor": "×", "factor_bound": ""}
_NUMBER = re.compile(r"([-+]?[\d.,]+)(.*)")  # a formatted value: its number, then its unit


def format_value(value: float | None, unit: str) -> str:
    """Format a figure with its unit at a precision that suits its size."""
    if value is None:
        return ""
    if unit == "bytes":
        return _format_bytes(value)
    if unit in ("count", "bool") and float(value).is_integer():
        return f"{int(value)}"
    magnitude = abs(value)
    if unit in FACTOR_SUFFIX:  # a ratio between hosts: 1.07×, 0.84×, 12.5×; bare in intervals
        digits = 3 if magnitude < 0.1 else 2 if magnitude < 10 else 1 if magnitude < 100 else 0
        return f"{value:,.{digits}f}{FACTOR_SUFFIX[unit]}"
    if unit == "percent":  # a fraction shown as a percentage: 0.05 -> "5 %"
        percent = value * 100
        digits = 0 if abs(percent) >= 10 or round(percent, 1).is_integer() else 1
        return f"{percent:.{digits}f} %"
    digits = 0 if magnitude >= 1000 else 1 if magnitude >= 100 else 2 if magnitude >= 1 else 3
    return f"{value:,.{digits}f}{UNIT_SUFFIX.get(unit, ' ' + unit)}"


def format_range(low: float | None, high: float | None, unit: str) -> str:
    """Two values of one unit as a range, the unit said once where both ends share it:
    "1.98–2.21 µs", "27.7 MiB–1.2 GiB"; one value when both read alike; "?" for an unknown end."""
    low_text, high_text = format_value(low, unit) or "?", format_value(high, unit) or "?"
    if low_text == high_text:
        return low_text
    low_parts, high_parts = _NUMBER.match(low_text), _NUMBER.match(high_text)
    if low_parts and high_parts and low_parts.group(2) == high_parts.group(2):
        return f"{low_parts.group(1)}–{high_text}"
    return f"{low_text}–{high_text}"


def format_figure(value: float | None, unit: str, resolution: float | None = None) -> str:
    """A measured figure: as format_value, but "< 4.0 KiB" when it is below the resolution of
    its method (a negative PSS per connection is noise the method cannot resolve, not a gain)."""
    if value is not None and resolution is not None and value < resolution:
        return f"< {format_value(resolution, unit)}"
    return format_value(value, unit)


def _format_bytes(value: float) -> str:
    """Bytes in binary units (KiB, MiB, GiB)."""
    size = float(value)
    for unit in ("B", "KiB", "MiB"):
        if abs(size) < 1024:
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GiB"


# -- figures in sentences: a finding's words round harder than a table's cells


def format_us(us: float) -> str:
    """A duration given in µs, in µs or ms, for a sentence: 2.3 µs, 140 µs, 1.2 ms."""
    if us >= 1000:
        return f"{us / 1000:.1f} ms"
    if us >= 10:
        return f"{us:.0f} µs"
    return f"{us:.1f} µs"


def format_kib(kib: float) -> str:
    """A size given in KiB, in KiB or MiB, for a sentence: 84 KiB, 2.1 MiB."""
    return f"{kib / 1024:.1f} MiB" if kib >= 1024 else f"{kib:.0f} KiB"


def format_size(size: float) -> str:
    """A size given in bytes, for a sentence: 132 KiB, 1.50 MiB, 1.20 GiB (negative too)."""
    if abs(size) >= 2**30:
        return f"{size / 2**30:.2f} GiB"
    return f"{size / 2**20:.2f} MiB" if abs(size) >= 2**20 else f"{size / 1024:.0f} KiB"


def format_times(ratio: float) -> str:
    """A ratio as "so many times", for a sentence: 2,000×, 30×, 1.4×."""
    if ratio >= 100:
        return f"{ratio:,.0f}×"
    if ratio >= 10:
        return f"{ratio:.0f}×"
    return f"{ratio:.1f}×"


# -- markdown: a number and its unit kept on one line

NBSP = "\u00a0"
# A space after a number and before a unit word (or after "<" and before a number): the
# places where a narrow markdown cell would otherwise wrap "2.00 µs" into "2.00" and "µs".
_UNIT_SPACE = re.compile(
    r"(?<=\d) (?=(?:ns|µs|us|ms|s|B|KiB|MiB|GiB|TiB|KB|MB|GB|Hz|kHz|MHz|GHz)\b|%)|(?<=<) (?=\d)"
)


def join_units(text: str) -> str:
    """Text with each number joined to its unit by a non-breaking space (U+00A0), for
    markdown: "2.00 µs" stays one word when a cell wraps; other spaces are left alone."""
    return _UNIT_SPACE.sub(NBSP, text)
