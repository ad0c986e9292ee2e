"""Every measurement in one run, and "the article vs this host" in one table.

``run_suite`` runs the chosen sections at quick settings (or the careful ones with
``full``) and merges their results into one report; each section's structured data is kept
under its own name in ``data``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ostoolkit.children import MIN_OPEN_FILES, check_open_files
from ostoolkit.claims import CLAIMS, judge_heavier, judge_speedup, judge_time, judge_timeslice
from ostoolkit.connections.builtin import FDS_PER_CLIENT, ConnectionsConfig, measure_connections
from ostoolkit.connections.builtin import check_config as check_connections
from ostoolkit.errors import InvalidRequest
from ostoolkit.forktree import TreeConfig, build_tree, check_tree
from ostoolkit.measure.memory import MemoryConfig, measure_memory
from ostoolkit.measure.memory import check_config as check_memory
from ostoolkit.measure.sched import measure_timeslice
from ostoolkit.measure.spawn import SpawnConfig, measure_spawn
from ostoolkit.measure.spawn import check_config as check_spawn
from ostoolkit.measure.states import observe_states
from ostoolkit.measure.switch import SwitchConfig, measure_switch
from ostoolkit.report import Measurement, Result

Progress = Callable[[int], None]


def _switch_config(full: bool) -> SwitchConfig:
    return SwitchConfig() if full else SwitchConfig(repeat=15, target_sample_s=0.02)


def _spawn_config(full: bool) -> SpawnConfig:
    return SpawnConfig() if full else SpawnConfig(repeat=10, mp_repeat=3)


def _tree_config(full: bool) -> TreeConfig:
    return TreeConfig(exec_leaves=True)


def _memory_config(full: bool) -> MemoryConfig:
    return MemoryConfig() if full else MemoryConfig(workers=(1, 10))


def _connections_config(full: bool) -> ConnectionsConfig:
    return ConnectionsConfig() if full else ConnectionsConfig(clients=(10, 100))


def _check_connections(full: bool) -> None:
    config = _connections_config(full)
    check_connections(config)
    check_open_files(
        max(config.clients) * FDS_PER_CLIENT, "the connections section", "leave it out with --only"
    )


def _check_tree(full: bool) -> None:
    check_tree(_tree_config(full))


def _states(full: bool) -> Measurement:
    return observe_states() + measure_timeslice(3.0 if full else 1.0, 30 if full else 10)


@dataclass(frozen=True)
class Section:
    """One part of the report: how to check its limits before anything runs, and to run it."""

    check: Callable[[bool], None]
    run: Callable[[bool], Measurement]


def _no_check(full: bool) -> None:
    """A section whose needs are within what any host that runs Python gives."""


SECTIONS: dict[str, Section] = {
    "switch": Section(_no_check, lambda full: measure_switch(_switch_config(full))),
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
    "connections": Section(
        _check_connections, lambda full: measure_connections(_connections_config(full))
    ),
}


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


def _find(results: Sequence[Result], prefix: str, suffix: str = "") -> Result | None:
    """The result whose id starts and ends so, the largest client count first."""
    found = [r for r in results if r.id.startswith(prefix) and r.id.endswith(suffix)]
    return max(
        found, key=lambda r: int(r.id.split(".")[2]) if r.id.count(".") > 2 else 0, default=None
    )


def article_rows(results: Sequence[Result]) -> list[dict[str, str]]:
    """Each of the article's claims beside what this host measured, with a verdict."""
    by_id = {r.id: r for r in results}
    rows = []
    process, thread = by_id.get("switch.process.same_core"), by_id.get("switch.thread.same_core")
    if process:
        claim = CLAIMS["context_switch"]
        rows.append(_row("context switch", claim.text, f"{process.median:.2f} µs",
                         judge_time(process.median, claim)))  # fmt: skip
    if thread:
        rows.append(_row("thread switch", CLAIMS["thread_switch"].text, f"{thread.median:.2f} µs",
                         judge_time(thread.median, CLAIMS["thread_switch"])))  # fmt: skip
    if process and thread and thread.median > 0:
        rows.append(_row("threads switch faster", CLAIMS["thread_speedup"].text,
                         f"{process.median / thread.median:.2f}×",
                         judge_speedup(process.median, thread.median)))  # fmt: skip
    slice_ = by_id.get("sched.timeslice")
    if slice_:
        rows.append(_row("time slice", "milliseconds", f"{slice_.median:.2f} ms",
                         judge_timeslice(slice_.median)))  # fmt: skip
    pooled = _find(results, "conn.pooled.", ".procs")
    if pooled:
        clients = pooled.id.split(".")[2]
        backends = int(pooled.median) - 2
        rows.append(_row("pool size", "5–50 connections", f"{backends} backends",
                         f"{backends} server connections served {clients} clients"))  # fmt: skip
    p_mem, t_mem = (
        by_id.get("memory.process.uss_per_worker"),
        by_id.get("memory.thread.uss_per_worker"),
    )
    if p_mem and t_mem:
        rows.append(_row("processes are heavier", "processes are heavy",
                         f"{p_mem.median / 2**10:.0f} KiB vs {t_mem.median / 2**10:.0f} KiB",
                         judge_heavier(p_mem.median, t_mem.median)))  # fmt: skip
    return rows


def _row(claim: str, article: str, here: str, verdict: str) -> dict[str, str]:
    return {"claim": claim, "the article": article, "this host": here, "verdict": verdict}


def run_suite(
    sections: Sequence[str], full: bool = False, progress: Progress | None = None
) -> Measurement:
    """Run the sections one after the other and merge them into one measurement."""
    check_suite(sections, full)
    parts: list[Measurement] = []
    data: dict[str, Any] = {}
    for name in sections:
        part = SECTIONS[name].run(full)
        data[name] = part.data
        parts.append(Measurement(part.results, part.findings, part.warnings))
        if progress:
            progress(1)
    merged = functools.reduce(operator.add, parts)
    columns = [[key, "text"] for key in ("claim", "the article", "this host", "verdict")]
    data["table"] = {"columns": columns, "rows": article_rows(merged.results), "note": ""}
    return Measurement(merged.results, merged.findings, merged.warnings, data)
