"""The documented ``data`` payloads of reports as types, shared by their producers and the renderer.

docs/results.md describes every key; these TypedDicts give mypy the same shapes. At run time
they are plain dicts, and a loaded report's ``data`` is checked only as an object, so the
compare renderer still reads them defensively.
"""

from __future__ import annotations

from typing import Any, TypedDict

# -- a command's own summary table (data.table: connections, report, clone) -----------------


class _Table(TypedDict):
    columns: list[list[str]]
    rows: list[dict[str, Any]]
    note: str


class SummaryTable(_Table, total=False):
    """A table the renderer draws as given: ``columns`` are ``[name, unit]`` pairs (unit
    ``text`` for words, else a unit ``units.format_value`` knows), ``rows`` map each
    column's name to its value."""

    replaces_results: bool  # the table shows every result: no results table after it
    resolutions: dict[str, float]  # a column's resolution: a value below it shows "< it"
    title: str  # in data.tables (several tables): what this one holds


class _Chart(TypedDict):
    title: str
    x_label: str
    y_label: str
    x: list[str]
    values: list[float]


class Chart(_Chart, total=False):
    """One series over a few x values (data.charts): a mermaid xychart in markdown, bars in
    the terminal (``render.charts``)."""

    kind: str  # "bar" (the default) or "line", for a curve such as the working-set sweep


# -- fork-tree's data.tree -------------------------------------------------------------------


class _Process(TypedDict):
    pid: int
    ppid: int
    name: str
    status: str  # psutil's status word
    rss: int  # bytes
    uss: int | None  # bytes; null when it could not be read
    children: list[TreeNode]


class ThreadNode(TypedDict):
    """A thread of a process in fork-tree's ``data.tree`` (``--pid ... --threads``)."""

    tid: int
    name: str
    state: str  # the /proc state letter


class TreeNode(_Process, total=False):
    """One process of fork-tree's ``data.tree``, its children nested, ordered by pid."""

    fork_us: float | None  # as its parent saw it; in trees ostoolkit forked only
    exec_us: float | None  # fork + execve, for the exec'd leaves
    threads: list[ThreadNode]  # besides the main thread, with --threads only


# -- compare's data (docs/results.md, "The compare report") ---------------------------------


class FigureFields(TypedDict):
    """One host's own numbers for a figure: recomputed from its samples, and its context."""

    median: float | None
    p10: float | None
    p90: float | None
    n: int
    runs: int  # how many independent runs the samples came from (0 when missing)
    exact: bool  # fixed by construction: judged on its value
    resolution: float | None  # the smallest size its method resolves (median below: "< it")
    spread: float | None
    status: str | None
    other_cpu_share: float | None
    steal_share: float | None
    reference_us: float | None
    strip: list[int] | None


class HostMoveFields(TypedDict):
    """How far the host's speed reference moved from the baseline's run, as a ratio."""

    host_ratio: float | None
    host_ci_low: float | None
    host_ci_high: float | None


class VerdictFields(HostMoveFields):
    """How a figure compares with the baseline's, and how far the host's reference moved."""

    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    verdict: str
    reason: str
    regressed: bool


class Comparison(FigureFields, VerdictFields):
    """One item of ``data.comparisons``: one figure on one host."""

    id: str
    label: str
    unit: str
    section: str
    headline: bool
    host: str
    baseline: str
    method: int | None  # this host's method version of the section; None: unknown


class Regression(TypedDict):
    """One item of ``data.regressions``: a comparison with ``regressed`` true, in short."""

    id: str
    label: str
    unit: str
    host: str
    verdict: str
    ratio: float | None
    ci_low: float | None
    ci_high: float | None


class HostDifference(TypedDict):
    """One item of ``data.host_differences``: a host field whose values differ."""

    key: str  # its path in the host block: "virtualization.container"
    field: str  # its readable name: "virtualization: container"
    values: list[Any]  # one per report, in the order of data.hosts; null where absent


# data.summary: for each host but the baseline, how many of its figures got each verdict word.
CompareSummary = dict[str, dict[str, int]]
