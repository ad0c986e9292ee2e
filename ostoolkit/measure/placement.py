"""Where the two tasks of a switch measurement run: ``same_core`` (a real context switch) and
``cross_core`` (a wake-up across CPUs) by default; ``topology`` adds every placement this host
has and ``unpinned``. ``choose_cpu`` picks the one CPU that all of a measurement's tasks share.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ostoolkit.errors import InvalidRequest
from ostoolkit.topology import survey

PLACEMENTS = ("same_core", "cross_core")
TOPOLOGY = "topology"
UNPINNED = "unpinned"
ANY_CPU = -1  # a Pair's CPU number that means "not pinned"


@dataclass(frozen=True)
class Pair:
    """Where the two tasks run: ping on ``cpu_a``, pong on ``cpu_b``."""

    placement: str
    cpu_a: int
    cpu_b: int

    @property
    def pinned(self) -> bool:
        """Whether the tasks are pinned (every placement but ``unpinned``)."""
        return self.cpu_a != ANY_CPU


def expand_topology(
    allowed: list[int], placements: tuple[str, ...]
) -> tuple[tuple[str, ...], dict[str, tuple[int, int]], list[tuple[str, str]]]:
    """Replace ``topology`` by same_core, every placement the host has, and unpinned; the
    pairs the topology chose, and each placement it does not have with why."""
    if TOPOLOGY not in placements:
        return placements, {}, []
    plan = survey(set(allowed))
    chosen = {p.name: p.cpus for p in plan.placements if p.name != "same_cpu"}
    notes = [(s.name, s.why) for s in plan.skipped]
    expanded = [p for p in placements if p != TOPOLOGY]
    expanded += [name for name in ("same_core", *chosen, UNPINNED) if name not in expanded]
    return tuple(expanded), chosen, notes


def plan_pairs(
    allowed: list[int], wanted: tuple[int, ...] | None, placements: tuple[str, ...]
) -> tuple[list[Pair], list[str]]:
    """Choose CPUs for each placement among those this process may use; say what was skipped. A
    request for a CPU not allowed, more than two CPUs or a placement they cannot give is refused;
    without --cpus, a placement the host cannot give is skipped with a note."""
    choices = ",".join(map(str, allowed))
    if wanted and TOPOLOGY in placements:
        raise InvalidRequest("--placement topology chooses its own CPUs: leave out --cpus")
    placements, chosen, skipped = expand_topology(allowed, placements)
    if wanted:
        if refused := [c for c in wanted if c not in allowed]:
            raise InvalidRequest(
                f"--cpus {','.join(map(str, wanted))}: CPU {refused[0]} is not available to "
                f"this process (cpuset/affinity); choose one or two of {choices}"
            )
        if len(wanted) > 2:
            raise InvalidRequest(
                f"--cpus takes one CPU (same-core) or two (cross-core), not {len(wanted)}; "
                f"choose from {choices}"
            )
    cpus = list(wanted or allowed)
    pairs = []
    for placement in placements:
        if placement == "same_core":
            pairs.append(Pair(placement, cpus[0], cpus[0]))
        elif placement in chosen:
            pairs.append(Pair(placement, *chosen[placement]))
        elif placement == UNPINNED:
            pairs.append(Pair(placement, ANY_CPU, ANY_CPU))
        elif len(cpus) >= 2:
            pairs.append(Pair(placement, cpus[0], cpus[1]))
        else:
            why = "--cpus names one CPU" if wanted else f"only CPU {cpus[0]} is allowed"
            skipped.append(("cross_core", why))
    if not pairs:
        where = f"--cpus {cpus[0]}" if wanted else f"this process may use only CPU {cpus[0]}"
        raise InvalidRequest(
            f"--placement cross-core needs two CPUs but {where}: name two CPUs with --cpus "
            f"(from {choices}) or measure same-core"
        )
    return pairs, skipped_line(skipped)


def skipped_line(skipped: list[tuple[str, str]]) -> list[str]:
    """The placements not measured, in one line, grouped by why: [] when none was skipped."""
    reasons: dict[str, list[str]] = {}
    for name, why in skipped:
        reasons.setdefault(why, []).append(name)
    said = "; ".join(f"{', '.join(names)} ({why})" for why, names in reasons.items())
    return [f"placements not measured here: {said}"] if said else []


def choose_cpu(
    wanted: int | None, allowed: Sequence[int] | None = None, *, default: int | None = None
) -> int:
    """The one CPU a measurement's tasks share: ``wanted`` if this process may use it (``allowed``,
    by default its affinity), else ``default`` (by default the last allowed CPU), which its
    command's help documents."""
    allowed = sorted(os.sched_getaffinity(0)) if allowed is None else allowed
    if wanted is None:
        return allowed[-1] if default is None else default
    if wanted not in allowed:
        raise InvalidRequest(
            f"CPU {wanted} is not available to this process (cpuset/affinity); "
            f"choose one of {','.join(map(str, allowed))}"
        )
    return wanted
