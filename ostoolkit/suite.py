"""Every measurement in one run, and "the article vs this host" in one table.

``run_suite`` runs the chosen sections at quick settings (or the careful ones with
``full``) and merges their results into one report; each section's structured data is kept
under its own name in ``data``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ostoolkit.children import MIN_OPEN_FILES, check_open_files
from ostoolkit.claims import annotate, claims_table
from ostoolkit.connections.builtin import ConnectionsConfig, measure_connections
from ostoolkit.connections.builtin import check_config as check_connections
from ostoolkit.connections.realload import RealConfig, check_real
from ostoolkit.connections.realresults import measure_real
from ostoolkit.connections.throwaway import installed
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
from ostoolkit.report import Measurement, Progress


def _switch_config(full: bool) -> SwitchConfig:
    """Quick: same and cross core. Full: every placement the host's topology has, too."""
    if not full:
        return SwitchConfig.quick()
    return replace(SwitchConfig.full(), placements=(*PLACEMENTS, TOPOLOGY))


def _ring_config(full: bool) -> RingConfig:
    """Quick: rings of 2 and 32 tasks. Full: lat_ctx's 2 to 512."""
    return RingConfig.full() if full else replace(RingConfig.quick(), tasks=(2, 32))


def _python_config(full: bool) -> PyLayersConfig:
    return PyLayersConfig.full() if full else PyLayersConfig.quick()


def _spawn_config(full: bool) -> SpawnConfig:
    return SpawnConfig.full() if full else SpawnConfig.quick()


def _tree_config(full: bool) -> TreeConfig:
    return TreeConfig(exec_leaves=True)


def _memory_config(full: bool) -> MemoryConfig:
    return MemoryConfig.full() if full else MemoryConfig.quick()


def _connections_config(full: bool) -> ConnectionsConfig:
    return ConnectionsConfig.full() if full else ConnectionsConfig.quick()


def _real_config(full: bool) -> RealConfig | None:
    """``report --full`` runs the real servers too, where this host has them; quick never."""
    servers = installed() if full else ()
    return RealConfig(servers) if servers else None


def _check_connections(full: bool) -> None:
    check_connections(_connections_config(full))  # the tasks and every process's open files
    real = _real_config(full)
    if real is not None:
        check_real(real)


def _connections(full: bool) -> Measurement:
    """The built-in models, then (full, where installed) the throwaway real servers."""
    measurement = measure_connections(_connections_config(full))
    real = _real_config(full)
    return measurement if real is None else measurement + measure_real(real)


def _check_tree(full: bool) -> None:
    check_tree(_tree_config(full))


def _timeslice_config(full: bool) -> TimesliceConfig:
    return TimesliceConfig.full() if full else TimesliceConfig.quick()


def _states(full: bool) -> Measurement:
    config = _timeslice_config(full)
    return observe_states() + measure_timeslice(config.duration_s, config.windows, config.cpu)


@dataclass(frozen=True)
class Section:
    """One part of the report: how to check its limits before anything runs, and to run it."""

    check: Callable[[bool], None]
    run: Callable[[bool], Measurement]


def _no_check(full: bool) -> None:
    """A section whose needs are within what any host that runs Python gives."""


SECTIONS: dict[str, Section] = {
    "switch": Section(_no_check, lambda full: measure_switch(_switch_config(full))),
    "ring": Section(
        lambda full: check_ring(_ring_config(full)),
        lambda full: measure_rings(_ring_config(full)),
    ),
    "python": Section(_no_check, lambda full: measure_python_layers(_python_config(full))),
    "rate": Section(
        _no_check,
        lambda full: measure_switch_rate(RateConfig.full() if full else RateConfig.quick()),
    ),
    "spawn": Section(
        lambda full: check_spawn(_spawn_config(full)),
        lambda full: measure_spawn(_spawn_config(full)),
    ),
    "forktree": Section(_check_tree, lambda full: build_tree(_tree_config(full))),
    "states": Section(_no_check, _states),
    "memory": Section(
        lambda full: check_memory(_memory_config(full)),
        lambda full: measure_memory(_memory_config(full)),
    ),
    "connections": Section(_check_connections, _connections),
}


def _first_of_each(measurement: Measurement) -> Measurement:
    """Keep a figure two sections measured once, from the first: ``python`` measures the OS
    thread switch beside its own figures, as ``switch`` does, and a report's ids are unique."""
    seen: set[str] = set()
    kept = []
    for result in measurement.results:
        if result.id not in seen:
            seen.add(result.id)
            kept.append(result)
    return replace(measurement, results=tuple(kept))


def check_suite(sections: Sequence[str], full: bool) -> None:
    """Refuse, before the first section runs, limits that any chosen section would hit.

    A report that fails after ten seconds of other sections wastes the user's time; every
    section's task, memory and open-file needs are known in advance.
    """
    check_open_files(MIN_OPEN_FILES, "a report")
    for name in sections:
        SECTIONS[name].check(full)


def parse_sections(text: str | None) -> tuple[str, ...]:
    """Parse --only "switch,spawn" into known section names, in the suite's order.

    Every item must name a section once: an empty item, a repeat or an unknown name is
    refused, as the other list options refuse them.
    """
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
    sections: Sequence[str], full: bool = False, progress: Progress | None = None
) -> Measurement:
    """Run the sections one after the other and merge them into one measurement."""
    check_suite(sections, full)
    parts: list[Measurement] = []
    data: dict[str, Any] = {}
    for name in sections:
        part = annotate(SECTIONS[name].run(full))  # its noise warnings among its own
        data[name] = part.data
        parts.append(Measurement(part.results, part.findings, part.warnings))
        if progress:
            progress(1)
    merged = _first_of_each(functools.reduce(operator.add, parts))
    data["table"] = claims_table(merged.results)
    return Measurement(merged.results, merged.findings, merged.warnings, data)
