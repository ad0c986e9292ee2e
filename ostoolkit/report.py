"""Result and Report: the plain data every command returns, and its JSON form ``ostoolkit/1``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ostoolkit import __version__
from ostoolkit.errors import OstoolkitError
from ostoolkit.stats import judge_noise, summarize

SCHEMA = "ostoolkit/1"
UNITS = ("us", "ms", "bytes", "count", "per_s", "ratio", "bool")


class ReportError(OstoolkitError):
    """A saved report cannot be read: unreadable, not JSON, or another schema."""


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


def make_result(
    id: str,
    label: str,
    unit: str,
    samples: Sequence[float],
    *,
    load_per_cpu: float | None = None,
    steal_share: float | None = None,
    notes: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> Result:
    """Summarise samples into a Result whose status says how noisy they were."""
    summary = summarize(samples)
    verdict = judge_noise(samples, load_per_cpu, steal_share)
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
        notes=tuple(notes) + verdict.reasons,
        extra=dict(extra or {}),
    )


@dataclass(frozen=True)
class Report:
    """Everything one command found: host fingerprint, results, findings and warnings.

    ``data`` holds a command's structured payload that is not a figure (a process tree, a
    timeline of states), under documented keys.
    """

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
    tool: dict[str, str] = field(
        default_factory=lambda: {"name": "ostoolkit", "version": __version__}
    )

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
        """Serialise to indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Build a Report from its JSON form, refusing other schemas."""
        if data.get("schema") != SCHEMA:
            raise ReportError(f"schema is {data.get('schema')!r}, expected {SCHEMA!r}")
        try:
            results = tuple(
                Result(
                    **{
                        **r,
                        "samples": tuple(r.get("samples", ())),
                        "notes": tuple(r.get("notes", ())),
                    }
                )
                for r in data["results"]
            )
            return cls(
                command=data["command"],
                argv=tuple(data["argv"]),
                started_at=data["started_at"],
                duration_s=float(data["duration_s"]),
                host=dict(data["host"]),
                results=results,
                findings=tuple(data.get("findings", ())),
                warnings=tuple(data.get("warnings", ())),
                data=dict(data.get("data", {})),
                tool=dict(data["tool"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ReportError(f"malformed report: {err}") from err


def save_report(report: Report, path: Path) -> None:
    """Write the report as JSON, atomically so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(report.to_json(), encoding="utf-8")
    tmp.replace(path)


def load_report(path: Path) -> Report:
    """Read a report saved by any ostoolkit command."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ReportError(f"cannot read {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise ReportError(f"{path} is not JSON: {err}") from err
    if not isinstance(data, dict):
        raise ReportError(f"{path} is not an ostoolkit report")
    return Report.from_dict(data)


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
