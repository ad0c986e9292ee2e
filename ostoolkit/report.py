"""Result and Report: the plain data every command returns, and its JSON form ``ostoolkit/1``.

Reading a saved report back is ``loader.load_report``'s job: it checks every field of a file
from elsewhere against the same shape (published as ``schema/ostoolkit-1.schema.json``).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from ostoolkit import __version__
from ostoolkit.errors import OstoolkitError
from ostoolkit.stats import judge_noise, summarize

SCHEMA = "ostoolkit/1"
UNITS = ("us", "ms", "bytes", "count", "per_s", "ratio", "bool", "number")
STATUSES = ("ok", "noisy", "bimodal", "throttled")
# The method version of each section of figures (the sections compare groups figures into,
# compare.engine.SECTIONS; a test holds the keys alike). A section's version is raised when the
# way its figures are measured changes, so figures of two versions are never judged against
# each other. 1 is the method of 0.2.0, the first release to record them; every report carries
# the whole table as tool.methods (docs/results.md).
METHODS = {
    "switch": 2,  # 2: the C harness's blocks alternated with ours (ref.lat_pipe.*, python_share)
    "spawn": 1,
    "forktree": 2,  # 2: the tree forked below a lean interpreter (measure/treenode.py)
    "states": 1,
    "memory": 1,
    "connections": 1,
    "clone": 1,
}
# compare's reason for a figure whose section's method version differs between two reports.
METHOD_CHANGED = "method changed"


# How a measurement reports progress: called with the number of steps just done.
Progress = Callable[[int], None]


class Interference(Protocol):
    """What ``make_result`` reads of a window's interference (``measure.interference``'s
    dataclass): what judges a figure in a unit, a note and the extras."""

    @property
    def note(self) -> str | None: ...
    def judging(self, unit: str) -> dict[str, Any]: ...
    def extra(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Result:
    """One measured figure: its distribution, trust status and the article's claim beside it."""

    id: str
    label: str
    unit: str
    median: float
    p10: float
    p90: float
    samples: tuple[float, ...]
    n: int
    status: str = "ok"
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    claim: str | None = None
    verdict: str | None = None
    runs: tuple[int, ...] = ()
    exact: bool = False
    resolution: float | None = None

    @property
    def run_count(self) -> int:
        """How many independent runs the samples came from (one when ``runs`` is empty)."""
        return len(self.runs) or 1


def make_result(
    id: str,
    label: str,
    unit: str,
    samples: Sequence[float],
    *,
    interference: Interference | None = None,
    notes: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    population: bool = False,
    runs: Sequence[int] | None = None,
    exact: bool = False,
    resolution: float | None = None,
) -> Result:
    """Summarise samples into a Result whose status says how noisy they were. ``runs``, ``exact``
    and ``resolution`` are the Result fields of docs/results.md; ``population`` marks samples whose
    spread is the figure's own (only interference judges it)."""
    summary = summarize(samples)
    sizes = (summary.n,) if runs is None else tuple(runs)  # positive, adding up to the samples
    if any(size < 1 for size in sizes) or sum(sizes) != summary.n:
        raise ValueError(f"run sizes {sizes} do not split {summary.n} samples")
    judged = [summary.median] if population else samples  # one value: no spread, no clusters
    verdict = judge_noise(judged, **(interference.judging(unit) if interference else {}))
    more_notes = (interference.note,) if interference is not None and interference.note else ()
    return Result(
        id=id,
        label=label,
        unit=unit,
        median=summary.median,
        p10=summary.p10,
        p90=summary.p90,
        samples=tuple(samples),
        n=summary.n,
        status=verdict.status,
        notes=tuple(notes) + verdict.reasons + more_notes,
        extra={**(extra or {}), **(interference.extra() if interference else {})},
        runs=sizes,
        exact=exact,
        resolution=resolution,
    )


STATUS_RANK = {status: rank for rank, status in enumerate(STATUSES)}
# A run's extras that become lists over the runs when runs are merged: how each window went.
PER_RUN_EXTRAS = ("other_cpu_share", "steal_share", "throttled_periods", "quota_periods")


def merge_runs(parts: Sequence[Result]) -> Result:
    """One figure measured in several independent runs (``report``'s rounds), as one Result. Samples
    pooled with every part's ``runs`` in order; the worst status and interference shares, every
    note, the pooled reference samples and the first run's other extras."""
    first = parts[0]
    if len(parts) == 1:
        return first
    samples = [value for part in parts for value in part.samples]
    summary = summarize(samples)
    extra = dict(first.extra)
    for key in PER_RUN_EXTRAS:
        shares = [part.extra.get(key) for part in parts]
        known = [share for share in shares if isinstance(share, (int, float))]
        if known:
            extra[key] = max(known)
            extra[f"runs_{key}"] = shares
    references = [
        value
        for part in parts
        for value in part.extra.get("reference_samples_us", ())
        if isinstance(value, (int, float))
    ]
    if references:
        extra["reference_samples_us"] = references
        extra["reference_us"] = round(statistics.median(references), 4)
    return replace(
        first,
        median=summary.median,
        p10=summary.p10,
        p90=summary.p90,
        samples=tuple(samples),
        n=summary.n,
        status=max((part.status for part in parts), key=STATUS_RANK.__getitem__),
        notes=tuple(dict.fromkeys(note for part in parts for note in part.notes)),
        extra=extra,
        runs=tuple(size for part in parts for size in (part.runs or (part.n,))),
        exact=all(part.exact for part in parts),
    )


@dataclass(frozen=True)
class Report:
    """Everything one command found: host fingerprint, results, findings and warnings. ``data``
    holds a command's structured payload that is not a figure (a process tree, a timeline of
    states), under keys documented in docs/results.md and typed in ``payloads``."""

    command: str
    argv: tuple[str, ...]
    started_at: str
    duration_s: float
    host: dict[str, Any]
    results: tuple[Result, ...]
    findings: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA
    tool: dict[str, Any] = field(
        default_factory=lambda: {
            "name": "ostoolkit",
            "version": __version__,
            "methods": dict(METHODS),
        }
    )

    @property
    def methods(self) -> dict[str, int] | None:
        """Each section's method version (tool.methods); None for a report written before
        0.2.0, whose methods are unknown."""
        methods = self.tool.get("methods")
        return dict(methods) if isinstance(methods, dict) else None

    def result(self, id: str) -> Result | None:
        """Return the result with this id, or None."""
        return next((r for r in self.results if r.id == id), None)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form, keys in the documented order."""
        data = asdict(self)
        order = ("schema", "tool", "command", "argv", "started_at", "duration_s", "host")
        ordered = {key: data.pop(key) for key in order}
        ordered.update(data)
        return ordered

    def to_json(self) -> str:
        """Serialise to indented JSON text; NaN or Infinity (not JSON) is refused as a bug. The
        loader refuses them too, so a report that could not be read back is never written."""
        try:
            return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        except ValueError as err:
            raise OstoolkitError(
                f"the {self.command} report holds a value JSON cannot: {err}"
            ) from err


@dataclass(frozen=True)
class Measurement:
    """What a measure function returns: results plus what the reader should know about them."""

    results: tuple[Result, ...]
    findings: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    def __add__(self, other: Measurement) -> Measurement:
        return Measurement(
            self.results + other.results,
            self.findings + other.findings,
            self.warnings + other.warnings,
            {**self.data, **other.data},
        )


def build_report(
    command: str,
    argv: Sequence[str],
    measurement: Measurement,
    host: dict[str, Any],
    started_at: str,
    duration_s: float,
) -> Report:
    """Wrap one command's measurement with the host fingerprint and timing."""
    return Report(
        command=command,
        argv=tuple(argv),
        started_at=started_at,
        duration_s=round(duration_s, 3),
        host=host,
        results=measurement.results,
        findings=measurement.findings,
        warnings=measurement.warnings,
        data=measurement.data,
    )
