"""docs/results.md's rows, the contract of result ids and units, as (regex, unit) pairs, so that
tests can check every id a run reports against the documentation.
"""

from __future__ import annotations

import re

from harness.paths import REPO

RESULTS_ROW = re.compile(r"^\| `([^`]+)` \| (\w+) \|", re.MULTILINE)


def documented_ids() -> list[tuple[re.Pattern[str], str]]:
    """(regex, unit) for every row of docs/results.md (``<N>`` a number, ``{a,b}`` either)."""
    rows = []
    for pattern, unit in RESULTS_ROW.findall((REPO / "docs/results.md").read_text()):
        regex = re.escape(pattern)
        regex = regex.replace("<N>", r"\d+")
        regex = re.sub(
            r"\\\{([^}]*)\\\}", lambda m: "(" + m.group(1).replace(",", "|") + ")", regex
        )
        rows.append((re.compile(regex + "$"), unit))
    return rows
