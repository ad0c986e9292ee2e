"""Every measurement in one run, and "the article vs this host" in one table.

``run_suite`` runs the chosen sections at a preset's settings, several times over (its runs,
interleaved), and merges them into one report; each section's data is kept under its name.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from ostoolkit.budget import MIN_OPEN_FILES, check_open_files
from ostoolkit.claims import annotate, claims_table
from ostoolkit.connections.builtin.measure import ConnectionsConfig, measure_connections
from ostoolkit.connections.builtin.measure import check_config as check_connections
from ostoolkit.connections.real.results import measure_real
from ostoolkit.connections.real.run import RealConfig, check_real
from ostoolkit.connections.real.servers import installed
from ostoolkit.errors import InvalidRequest
from ostoolkit.measure.forktree import TreeConfig, build_tree, check_tree
from ostoolkit.measure.memory import MemoryConfig, measure_memory
from ostoolkit.measure.memory import check_config as check_memory
from ostoolkit.measure.placement import PLACEMENTS, TOPOLOGY
from ostoolkit.measure.pylayers import PyLayersConfig, measure_python_layers
from ostoolkit.measure.ring import RingConfig, check_ring, measure_rings
from ostoolkit.measure.sched import TimesliceConfig, measure_timeslice
from ostoolkit.measure.spawn import SpawnConfig, measure_spawn
from ostoolkit.measure.spawn import check_config as check_spawn
from ostoolkit.measure.states import observe_states
from ostoolkit.measure.switch import SwitchConfig, measure_switch
from ostoolkit.measure.switchrate import RateConfig, measure_switch_rate
from ostoolkit.report import Measurement, Progress, Result, merge_runs

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Config = TypeVar("_Config", bound="DataclassInstance")

TREE = TreeConfig(exec_leaves=True)  # the fork tree of every preset
# The presets of ``report``: how many rounds (independent runs of every section, interleaved)
# and how much each round measures. The run counts were chosen from the A/A measurements of
# benchmarks/compare_check.py (docs/comparing.md); the budgets of benchmarks/duration.py hold
# the quick report within 30 s and the default within 90 s on a 2-CPU VM.
RUNS = {"quick": 3, "default": 5, "full": 3}
MAX_RUNS = 20


@dataclass(frozen=True)
class Preset:
    """One preset of ``report``: its name and how many runs of every section it takes."""

    name: str
    runs: int

    @classmethod
    def named(cls, name: str, runs: int | None = None) -> Preset:
        """The preset called ``name`` ("quick", "default" or "full"), with its own runs."""
        if name not in RUNS:
            raise InvalidRequest(f"unknown preset {name!r}; choose from {', '.join(RUNS)}")
        return cls(name, RUNS[name] if runs is None else runs)

    @property
    def full(self) -> bool:
        """The careful settings: every placement, ring and client count, the real servers."""
        return self.name == "full"

    @property
    def quick(self) -> bool:
        """A quick round: each section's quick settings, trimmed so three rounds fit 30 s."""
        return self.name == "quick"


def _pick(preset: Preset, full: _Config, default: _Config, **quick: Any) -> _Config:
    """A section's settings for the preset: ``full``, ``default``, or default with ``quick``'s
    changes, so that three quick rounds fit 30 s."""
    if preset.full:
        return full
    return replace(default, **quick) if preset.quick else default


def _switch_config(preset: Preset) -> SwitchConfig:
    """Quick and default: same and cross core. Full: every placement of the topology, and
    each hop traced (--trace)."""
    full = replace(
        SwitchConfig.full(),
        placements=(*PLACEMENTS, TOPOLOGY),
        c_harness=True,
        trace_timing=True,  # each hop decomposed from tracepoints, where the kernel permits
    )
    default = replace(SwitchConfig.quick(), c_harness=True)  # the C harness beside, not quick
    return _pick(preset, full, default, repeat=6, blocks=2, c_harness=False)


def _ring_config(preset: Preset) -> RingConfig:
    """Quick and default: rings of 2 and 32 tasks. Full: lat_ctx's 2 to 512."""
    default = replace(RingConfig.quick(), tasks=(2, 32))
    return _pick(preset, RingConfig.full(), default, samples=3)


def _python_config(preset: Preset) -> PyLayersConfig:
    return _pick(preset, PyLayersConfig.full(), PyLayersConfig.quick(), repeat=6, blocks=2)


def _rate_config(preset: Preset) -> RateConfig:
    return _pick(preset, RateConfig.full(), RateConfig.quick(), duration_s=0.5)


def _spawn_config(preset: Preset) -> SpawnConfig:
    return _pick(preset, SpawnConfig.full(), SpawnConfig.quick(), repeat=5, mp_repeat=2)


def _memory_config(preset: Preset) -> MemoryConfig:
    return _pick(preset, MemoryConfig.full(), MemoryConfig.quick())


def _connections_config(preset: Preset) -> ConnectionsConfig:
    return _pick(preset, ConnectionsConfig.full(), ConnectionsConfig.quick())


def _timeslice_config(preset: Preset) -> TimesliceConfig:
    full, default = TimesliceConfig.full(), TimesliceConfig.quick()
    return _pick(preset, full, default, duration_s=0.5, windows=5)


def _real_config(preset: Preset) -> RealConfig | None:
    """``report --full`` runs the real servers too, where this host has them; else never."""
    servers = installed() if preset.full else ()
    return RealConfig(servers) if servers else None


def _check_connections(preset: Preset) -> None:
    check_connections(_connections_config(preset))  # the tasks and every process's open files
    if real := _real_config(preset):
        check_real(real)


def _connections(preset: Preset, first: bool) -> Measurement:
    """The built-in models, then (full, where installed) the real servers: in the first round
    only, since a round of them takes minutes (their figures are one run)."""
    measurement = measure_connections(_connections_config(preset))
    real = _real_config(preset) if first else None
    return measurement if real is None else measurement + measure_real(real)


def _check_tree(preset: Preset) -> None:
    check_tree(TREE)


def _states(preset: Preset, first: bool) -> Measurement:
    config = _timeslice_config(preset)
    return observe_states() + measure_timeslice(config.duration_s, config.windows, config.cpu)


@dataclass(frozen=True)
class Section:
    """One part of the report: how to check its limits before anything runs, and to run it
    (once per round, told whether this is the first)."""

    check: Callable[[Preset], None]
    run: Callable[[Preset, bool], Measurement]


def _no_check(preset: Preset) -> None:
    """A section whose needs are within what any host that runs Python gives."""


SECTIONS: dict[str, Section] = {
    "switch": Section(_no_check, lambda preset, first: measure_switch(_switch_config(preset))),
    "ring": Section(
        lambda preset: check_ring(_ring_config(preset)),
        lambda preset, first: measure_rings(_ring_config(preset)),
    ),
    "python": Section(
        _no_check, lambda preset, first: measure_python_layers(_python_config(preset))
    ),
    "rate": Section(_no_check, lambda preset, first: measure_switch_rate(_rate_config(preset))),
    "spawn": Section(
        lambda preset: check_spawn(_spawn_config(preset)),
        lambda preset, first: measure_spawn(_spawn_config(preset)),
    ),
    "forktree": Section(_check_tree, lambda preset, first: build_tree(TREE)),
    "states": Section(_no_check, _states),
    "memory": Section(
        lambda preset: check_memory(_memory_config(preset)),
        lambda preset, first: measure_memory(_memory_config(preset)),
    ),
    "connections": Section(_check_connections, _connections),
}


def _first_of_each(measurement: Measurement) -> Measurement:
    """Keep a figure two sections measured once, from the first: ``python`` measures the OS
    thread switch beside its own figures, as ``switch`` does, and a report's ids are unique."""
    kept: dict[str, Result] = {}
    for result in measurement.results:
        kept.setdefault(result.id, result)
    return replace(measurement, results=tuple(kept.values()))


def check_suite(sections: Sequence[str], preset: Preset) -> None:
    """Refuse, before the first section runs, limits that any chosen section would hit (their
    needs are known in advance: failing after other sections ran wastes the user's time)."""
    check_open_files(MIN_OPEN_FILES, "a report")
    for name in sections:
        SECTIONS[name].check(preset)


def parse_sections(text: str | None) -> tuple[str, ...]:
    """Parse --only "switch,spawn" into known section names, in the suite's order; an empty
    item, a repeat or an unknown name is refused, as the other list options refuse them."""
    if text is None:
        return tuple(SECTIONS)
    choices = ",".join(SECTIONS)
    wanted = [part.strip() for part in text.split(",")]
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        what = f"unknown section {unknown[0]!r}" if unknown[0] else "an empty section name"
        raise InvalidRequest(f"--only {text!r}: {what}; choose from {choices}")
    if len(set(wanted)) != len(wanted):
        raise InvalidRequest(f"--only {text!r} names a section twice; choose from {choices}")
    return tuple(name for name in SECTIONS if name in wanted)


def run_suite(
    sections: Sequence[str], preset: Preset | None = None, progress: Progress | None = None
) -> Measurement:
    """Run every section ``preset.runs`` times, interleaved (a slow stretch of the host lands in
    one run of each section), and merge them into one report: docs/method.md, "report"."""
    preset = preset or Preset.named("quick")
    check_suite(sections, preset)
    rounds: dict[str, list[Measurement]] = {name: [] for name in sections}
    for index in range(preset.runs):
        for name in sections:
            rounds[name].append(SECTIONS[name].run(preset, index == 0))
            if progress:
                progress(1)
    parts: list[Measurement] = []
    data: dict[str, Any] = {}
    for name in sections:
        part = annotate(merge_rounds(rounds[name]))  # its noise warnings among its own
        data[name] = part.data
        parts.append(Measurement(part.results, part.findings, part.warnings))
    merged = _first_of_each(functools.reduce(operator.add, parts))
    data["table"] = claims_table(merged.results)
    data["runs"] = preset.runs
    return Measurement(merged.results, merged.findings, merged.warnings, data)


def merge_rounds(rounds: Sequence[Measurement]) -> Measurement:
    """One section's rounds as one measurement: each figure's runs merged, in the first round's
    order; findings and data the first round's, warnings every round's, each said once."""
    by_id: dict[str, list[Result]] = {}
    for measurement in rounds:
        for result in measurement.results:
            by_id.setdefault(result.id, []).append(result)
    warnings = tuple(dict.fromkeys(w for measurement in rounds for w in measurement.warnings))
    results = tuple(merge_runs(parts) for parts in by_id.values())
    return Measurement(results, rounds[0].findings, warnings, rounds[0].data)
