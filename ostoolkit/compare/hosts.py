"""The hosts behind the compared reports: column labels, reports pooled by label, differing
fingerprint fields, and whether two reports are runs of one host configured the same.

Apart from the figures' statistics (``engine``): these give ``data.hosts``' labels,
``data.reports``, ``data.host_differences`` (the ostoolkit and method versions too) and
``data.same_host``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ostoolkit.errors import InvalidRequest
from ostoolkit.payloads import HostDifference
from ostoolkit.report import Report, Result, merge_runs

# Host fields compared (in this order) and their readable names; a nested field's key is
# added after a colon ("virtualization: container", "mitigation: spectre_v2").
HOST_FIELDS = (
    ("hostname", "hostname"),
    ("cpu_model", "CPU model"),
    ("cpus_logical", "logical CPUs"),
    ("cpus_allowed", "CPUs allowed"),
    ("cpu_quota", "CPU quota"),
    ("kernel", "kernel"),
    ("preemption", "preemption"),
    ("tlb_tagging", "TLB tagging"),
    ("virtualization", "virtualization"),
    ("mitigations", "mitigation"),
    ("clocksource", "clock source"),
    ("governor", "cpufreq governor"),
    ("python", "Python"),
)
# The fingerprint fields two reports must share to be runs of one host, configured the same:
# only then is a move of the host's speed reference the host's passing state, which may
# withhold a verdict. Between different hosts (or one host booted or set up differently) it
# is part of what is compared: shown, never a reason. The CPUs allowed (a cpuset), the CPU
# quota and the load average may differ.
SAME_HOST_FIELDS = tuple(key for key, _ in HOST_FIELDS if key not in ("cpus_allowed", "cpu_quota"))


def host_label(report: Report) -> str:
    """A short name for a host: hostname, CPU model's first words and kernel release."""
    host = report.host
    cpu = " ".join(
        str(host.get("cpu_model", "?")).replace("(R)", "").replace("(TM)", "").split()[:3]
    )
    kernel = str(host.get("kernel", "?")).split("-")[0]
    return f"{host.get('hostname', '?')} ({cpu}, {kernel})"


def unique_labels(reports: Sequence[Report], given: Sequence[str]) -> list[str]:
    """Labels for the columns: the user's (one per report; alike, they pool reports), else the
    hosts', numbered when two hosts look alike ("vm #1", "vm #2")."""
    if given:
        if len(given) != len(reports):
            raise InvalidRequest(f"--label was given {len(given)} times for {len(reports)} reports")
        if any(not label.strip() for label in given):
            raise InvalidRequest("--label is empty: give each report a name")
        return list(given)
    labels = [host_label(r) for r in reports]
    return [
        label if labels.count(label) == 1 else f"{label} #{labels[: index + 1].count(label)}"
        for index, label in enumerate(labels)
    ]


def pool_reports(
    reports: Sequence[Report], labels: Sequence[str]
) -> tuple[list[str], list[Report], list[int]]:
    """Pool the reports that share a label into one, each figure's runs every report's runs of
    it, in order (report.merge_runs): the labels, the pooled reports, how many each pools."""
    groups: dict[str, list[Report]] = {}
    for label, report in zip(labels, reports, strict=True):
        groups.setdefault(label, []).append(report)
    pooled = []
    for label, group in groups.items():
        methods = _pooled_methods(label, group)
        parts: dict[str, list[Result]] = {}
        for report in group:
            for result in report.results:
                parts.setdefault(result.id, []).append(result)
        results = tuple(merge_runs(figure) for figure in parts.values())
        tool = group[0].tool if methods is None else {**group[0].tool, "methods": methods}
        pooled.append(replace(group[0], results=results, tool=tool))
    return list(groups), pooled, [len(group) for group in groups.values()]


def _pooled_methods(label: str, group: Sequence[Report]) -> dict[str, int] | None:
    """The method versions of reports pooled under one label: every known one, or None when
    none is known; two versions of one section are refused, as their runs would mix methods."""
    merged: dict[str, int] = {}
    for report in group:
        for section, version in (report.methods or {}).items():
            first = merged.setdefault(section, version)
            if first != version:
                raise InvalidRequest(
                    f"the reports labelled {label!r} measured {section} by different methods "
                    f"({first} and {version}): their runs cannot be pooled"
                )
    return merged if any(report.methods is not None for report in group) else None


def host_differences(reports: Sequence[Report]) -> list[HostDifference]:
    """The host fields whose values differ between the reports: their JSON path in the host
    block (``key``), readable name (``field``) and values (null where a report lacks it)."""
    rows: list[HostDifference] = []
    for key, name in HOST_FIELDS:
        values = [r.host.get(key) for r in reports]
        if any(isinstance(v, dict) for v in values):
            for sub in sorted({k for v in values if isinstance(v, dict) for k in v}):
                subvalues = [v.get(sub) if isinstance(v, dict) else None for v in values]
                if _differ(subvalues):
                    path, field = f"{key}.{sub}", f"{name}: {sub}"
                    rows.append({"key": path, "field": field, "values": subvalues})
        elif _differ(values):
            rows.append({"key": key, "field": name, "values": values})
    return rows + _tool_differences(reports)


def _tool_differences(reports: Sequence[Report]) -> list[HostDifference]:
    """The ostoolkit version and each section's method version, where the reports differ (a
    method version is null in a report written before 0.2.0: unknown)."""
    rows: list[HostDifference] = []
    versions = [r.tool.get("version") for r in reports]
    if _differ(versions):
        rows.append({"key": "tool.version", "field": "ostoolkit version", "values": versions})
    methods = [r.methods or {} for r in reports]
    for section in dict.fromkeys(s for m in methods for s in m):
        values = [m.get(section) for m in methods]
        if _differ(values):
            path, field = f"tool.methods.{section}", f"method: {section}"
            rows.append({"key": path, "field": field, "values": values})
    return rows


def same_host(base: Report, other: Report) -> bool:
    """Whether two reports are runs of one host, configured the same (SAME_HOST_FIELDS): both
    name their host, and a field neither has counts as shared."""
    if "hostname" not in base.host or "hostname" not in other.host:
        return False
    return not any(
        _differ([base.host.get(field), other.host.get(field)]) for field in SAME_HOST_FIELDS
    )


def _differ(values: Sequence[Any]) -> bool:
    """Whether JSON values differ (compared as JSON text, so 1 and true stay apart)."""
    return len({json.dumps(v, sort_keys=True) for v in values}) > 1
