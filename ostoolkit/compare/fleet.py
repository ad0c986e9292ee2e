"""The fleet view's data: per figure the spread across hosts and the hosts far out of it, and
the groups of hosts that share a fingerprint.

Past FLEET_AFTER hosts a column per host is unreadable (200 reports made rows 5,220
characters wide); this is what ``data.fleet`` holds instead, numbers only (statistics:
``stats.fleet``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ostoolkit.compare.hosts import HOST_FIELDS
from ostoolkit.payloads import HostDifference
from ostoolkit.report import Result
from ostoolkit.stats import SampleSet, significant
from ostoolkit.stats.bootstrap import sorted_quantile
from ostoolkit.stats.fleet import FleetHost, fleet_spread

# More hosts than this are shown as a fleet (``--view auto``): the markdown's host tables hold
# five hosts beside the baseline, the 120-column table three.
FLEET_AFTER = 6
VIEWS = ("auto", "hosts", "fleet")
# The host fields that make a fingerprint: all but the hostname (and the ostoolkit versions).
GROUPED_BY = tuple(key for key, _ in HOST_FIELDS if key != "hostname")


def chosen_view(view: str, hosts: int) -> str:
    """``hosts`` or ``fleet``: as asked, or by the number of hosts for ``auto``."""
    if view == "auto":
        return "fleet" if hosts > FLEET_AFTER else "hosts"
    return view


def fingerprint_groups(names: Sequence[str], differences: Sequence[HostDifference]) -> list[Any]:
    """The hosts grouped by equal fingerprints, largest group first: each group's name (G1,
    G2...), its hosts' labels, and its values of the fingerprint fields that differ."""
    fields = [d for d in differences if d["key"].split(".")[0] in GROUPED_BY]
    members: dict[str, list[int]] = {}
    for index in range(len(names)):
        key = json.dumps([d["values"][index] for d in fields], sort_keys=True)
        members.setdefault(key, []).append(index)
    ordered = sorted(members.values(), key=lambda group: (-len(group), group[0]))
    return [
        {
            "name": f"G{number}",
            "hosts": [names[index] for index in group],
            "fingerprint": {d["field"]: d["values"][group[0]] for d in fields},
        }
        for number, group in enumerate(ordered, start=1)
    ]


def fleet_figure(
    result_id: str,
    section: str,
    headline: bool,
    results: Sequence[Result | None],
    sets: dict[int, SampleSet],
    names: Sequence[str],
    groups: Sequence[Any],
    band: float,
) -> dict[str, Any] | None:
    """One figure across the fleet (``data.fleet.figures[]``); None when no host has it."""
    hosts = [
        (index, FleetHost(sets[index], result.exact))
        for index, result in enumerate(results)
        if result is not None and index in sets
    ]
    spread = fleet_spread(hosts, band)
    if spread is None:
        return None
    known = next(result for result in results if result is not None)
    group_of = {host: group["name"] for group in groups for host in group["hosts"]}
    grouped: dict[str, list[float]] = {}
    for index, host in hosts:
        grouped.setdefault(group_of.get(names[index], ""), []).append(host.samples.median)
    return {
        "id": result_id,
        "label": known.label,
        "unit": known.unit,
        "section": section,
        "headline": headline,
        "hosts": spread.hosts,
        "median": spread.median,
        "p10": spread.p10,
        "p90": spread.p90,
        "lowest": spread.lowest,
        "highest": spread.highest,
        "fence_low": significant(spread.fence_low),
        "fence_high": significant(spread.fence_high),
        "groups": {
            name: sorted_quantile(sorted(values), 0.5)
            for name, values in sorted(grouped.items())
            if name
        },
        "far_out": [
            {
                "host": names[out.index],
                "ratio": significant(out.ratio),
                "ci_low": significant(out.low),
                "ci_high": significant(out.high),
                "side": out.side,
                "judged": out.judged,
                "reason": out.reason,
            }
            for out in spread.far_out
        ],
    }


def far_out_hosts(figures: Sequence[Any]) -> dict[str, int]:
    """For each host judged far out of any figure, of how many: the most first."""
    counts = Counter(
        out["host"] for figure in figures for out in figure["far_out"] if out["judged"]
    )
    return dict(counts.most_common())
