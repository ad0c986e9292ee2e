"""The host's CPU topology from sysfs, and the CPU pairs worth measuring a switch between.

Where two tasks run decides what a switch costs (one CPU, SMT siblings, one last-level cache,
one NUMA node, two nodes): among the allowed CPUs this picks one pair per placement the host
has and says why the others are absent. A missing sysfs file is an unknown fact, never an
error; the files read: docs/method.md, "Rings, working sets, placements".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ostoolkit.procfs import parse_file

SYS = Path("/sys")
# The placements in the order a caller measures them, nearest first.
PLACEMENT_NAMES = ("same_cpu", "smt_sibling", "same_llc", "other_llc", "other_node")
# The pair offered when sysfs says too little to place two CPUs relative to each other.
OTHER_CPU = "other_cpu"
# Linux's CONFIG_NR_CPUS is at most 8192; a larger number in a list is not a CPU.
MAX_CPU = 65535
_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?", re.ASCII)
_SIZE = re.compile(r"([0-9]+)([KMG]?)", re.ASCII)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
# What sysfs calls each kind of cache (the ``type`` file) and its letter in a name like L1d.
_KIND_LETTER = {"Data": "d", "Instruction": "i", "Unified": ""}
HIDDEN = "(a container or VM may hide it)"

CpuSet = frozenset[int]


def parse_cpu_list(text: str) -> list[int]:
    """A kernel CPU list ("0-3,8,10-11", cpuset(7)'s list format) as sorted distinct numbers. An
    empty list (a node without CPUs) is []; anything else that is not ASCII numbers and low-high
    ranges separated by commas raises ValueError in one line."""
    stripped = text.strip()
    cpus: set[int] = set()
    for part in stripped.split(",") if stripped else ():
        match = _RANGE.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"{stripped!r} is not a CPU list like 0-3,8: bad item {part!r}")
        low = int(match[1])
        high = int(match[2]) if match[2] is not None else low
        if high < low:
            raise ValueError(f"{stripped!r} is not a CPU list: range {part!r} runs backwards")
        if high > MAX_CPU:
            raise ValueError(f"{stripped!r} is not a CPU list: CPU {high} is over {MAX_CPU}")
        cpus.update(range(low, high + 1))
    return sorted(cpus)


def format_cpu_list(cpus: Iterable[int]) -> str:
    """CPUs as the kernel writes a list, "0-3,8-11": the inverse of parse_cpu_list."""
    runs: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in runs)


def parse_cache_size(text: str) -> int:
    """A sysfs cache size ("48K", "2048K", "32M"; K is 1024) in bytes; ValueError if not one."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a cache size like 48K or 32M")
    return int(match[1]) * _SIZE_UNITS[match[2]]


@dataclass(frozen=True)
class Cache:
    """One cache of a CPU: its level, kind (Data, Instruction, Unified), size and sharers."""

    level: int
    kind: str
    size: int | None  # bytes; None if sysfs does not say
    cpus: CpuSet | None  # the CPUs sharing this cache; None if sysfs does not say

    @property
    def name(self) -> str:
        """The cache as people name it: L1d, L1i, L2, L3."""
        return f"L{self.level}{_KIND_LETTER.get(self.kind, '')}"


@dataclass(frozen=True)
class CpuTopology:
    """What sysfs says about one CPU; None (or no caches) where it says nothing."""

    cpu: int
    threads: CpuSet | None  # the hardware threads of its core, itself included
    package: int | None
    package_cpus: CpuSet | None
    caches: tuple[Cache, ...]
    node: int | None

    @property
    def llc(self) -> Cache | None:
        """Its last-level cache: the highest level that holds data (Unified before Data)."""
        data = [c for c in self.caches if c.kind != "Instruction"]
        return max(data, key=lambda c: (c.level, c.kind == "Unified"), default=None)


@dataclass(frozen=True)
class Placement:
    """Two CPUs to put two tasks on (the same CPU twice for same_cpu), and why they fit."""

    name: str
    cpus: tuple[int, int]
    why: str


@dataclass(frozen=True)
class Skipped:
    """A placement this host (or this process's CPUs) does not offer, and why."""

    name: str
    why: str


@dataclass(frozen=True)
class Plan:
    """The placements found, nearest first, and the ones skipped with their reasons."""

    placements: tuple[Placement, ...]
    skipped: tuple[Skipped, ...]


def _cpu_set(text: str) -> CpuSet:
    return frozenset(parse_cpu_list(text))


def _whole(text: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,9}", text.strip()):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


def _numbered(folder: Path, prefix: str) -> list[tuple[int, Path]]:
    """The entries prefixN of a folder (cpuN, nodeN, indexN), by number; [] if unreadable."""
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return []
    numbered = (re.fullmatch(f"{prefix}([0-9]+)", name, re.ASCII) for name in names)
    return sorted((int(match[1]), folder / match[0]) for match in numbered if match)


def _cpu_dir(sys_root: Path, cpu: int) -> Path:
    return sys_root / "devices/system/cpu" / f"cpu{cpu}"


def read_caches(cpu: int, sys_root: Path = SYS) -> tuple[Cache, ...]:
    """A CPU's caches from cache/index*/ (an index without a readable level is left out)."""
    caches = []
    for _, index in _numbered(_cpu_dir(sys_root, cpu) / "cache", "index"):
        level = parse_file(index / "level", _whole)
        kind = parse_file(index / "type", str.strip)
        if level is not None and kind is not None:
            size = parse_file(index / "size", parse_cache_size)
            caches.append(Cache(level, kind, size, parse_file(index / "shared_cpu_list", _cpu_set)))
    return tuple(caches)


def read_nodes(sys_root: Path = SYS) -> dict[int, int]:
    """Each CPU's NUMA node from node*/cpulist; {} where sysfs has no nodes."""
    nodes: dict[int, int] = {}
    for node, folder in _numbered(sys_root / "devices/system/node", "node"):
        for cpu in parse_file(folder / "cpulist", _cpu_set) or ():
            nodes.setdefault(cpu, node)
    return nodes


def read_cpu(cpu: int, sys_root: Path = SYS, nodes: dict[int, int] | None = None) -> CpuTopology:
    """What sysfs says about one CPU (``nodes`` from read_nodes, read here if not given)."""
    topology = _cpu_dir(sys_root, cpu) / "topology"
    package_cpus = parse_file(topology / "package_cpus_list", _cpu_set)
    if package_cpus is None:
        package_cpus = parse_file(topology / "core_siblings_list", _cpu_set)
    return CpuTopology(
        cpu=cpu,
        threads=parse_file(topology / "thread_siblings_list", _cpu_set),
        package=parse_file(topology / "physical_package_id", _whole),
        package_cpus=package_cpus,
        caches=read_caches(cpu, sys_root),
        node=(read_nodes(sys_root) if nodes is None else nodes).get(cpu),
    )


def cache_sizes(sys_root: Path = SYS, cpu: int = 0) -> dict[str, int]:
    """A CPU's data caches by name ("L1d", "L2", "L3") and size in bytes, smallest level first.
    Instruction caches are left out (a working set is data); a cache whose size sysfs does not give
    is absent, so a VM without cache information gives {}."""
    caches = sorted(read_caches(cpu, sys_root), key=lambda c: (c.level, c.kind != "Data"))
    sizes: dict[str, int] = {}
    for cache in caches:
        if cache.kind != "Instruction" and cache.size is not None:
            sizes.setdefault(cache.name, cache.size)
    return sizes


# -- choosing the pairs --------------------------------------------------------------------


# Whether two CPUs, in this order, fit a placement.
_Fits = Callable[[CpuTopology, CpuTopology], bool]


def _llc_cpus(cpu: CpuTopology) -> CpuSet | None:
    llc = cpu.llc
    return None if llc is None else llc.cpus


def _smt(a: CpuTopology, b: CpuTopology) -> bool:
    return a.threads is not None and b.cpu in a.threads


def _why(name: str, a: CpuTopology, b: CpuTopology) -> str:
    """The one line saying what a found pair shares."""
    pair = f"CPUs {a.cpu} and {b.cpu}"
    if name == "smt_sibling":
        return f"{pair} are hardware threads of one core"
    llc = a.llc
    llc_name = llc.name if llc is not None else "last-level"
    if name == "same_llc":
        shared = format_cpu_list(_llc_cpus(a) or ())
        return f"{pair} are on different cores sharing one {llc_name} cache (CPUs {shared})"
    if name == "other_llc":
        return f"{pair} are on NUMA node {a.node} with different {llc_name} caches"
    packages = f" (packages {a.package} and {b.package})"  # when both are known and differ
    if a.package is None or b.package is None or a.package == b.package:
        packages = ""
    return f"{pair} are on NUMA nodes {a.node} and {b.node}{packages}"


def _absent_reason(name: str, known: list[int], topo: dict[int, CpuTopology]) -> str:
    """Why no pair of these CPUs (each with the facts the placement needs) fits a placement."""
    listed = format_cpu_list(known)
    if name == "smt_sibling":
        if all(topo[c].threads == frozenset({c}) for c in known):
            return "no SMT: each core runs one thread"
        return f"no two allowed CPUs ({listed}) are hardware threads of one core"
    if name == "same_llc":
        if all(_llc_cpus(topo[c]) == topo[c].threads for c in known):
            return "each core has its own last-level cache"
        return f"no two allowed CPUs ({listed}) on different cores share a last-level cache"
    if name == "other_llc":
        if len({_llc_cpus(topo[c]) for c in known}) == 1:
            llc = topo[known[0]].llc
            return (
                f"one {llc.name if llc else 'last-level'} cache serves every allowed CPU ({listed})"
            )
        return f"the allowed CPUs ({listed}) of each NUMA node share one last-level cache"
    return f"every allowed CPU ({listed}) is on NUMA node {topo[known[0]].node}"


# Per placement: what sysfs must say about each CPU (and the files that say it), and whether
# a pair of CPUs that it says it about fits.
_PLACEMENTS: dict[str, tuple[Callable[[CpuTopology], bool], str, _Fits]] = {
    "smt_sibling": (lambda c: c.threads is not None, "topology/thread_siblings_list", _smt),
    "same_llc": (
        lambda c: c.threads is not None and _llc_cpus(c) is not None,
        "topology/thread_siblings_list or cache/index*/shared_cpu_list",
        lambda a, b: not _smt(a, b) and b.cpu in (_llc_cpus(a) or ()),
    ),
    "other_llc": (
        lambda c: c.node is not None and _llc_cpus(c) is not None,
        "NUMA nodes (devices/system/node) or cache/index*/shared_cpu_list",
        lambda a, b: a.node == b.node and _llc_cpus(a) != _llc_cpus(b),
    ),
    "other_node": (
        lambda c: c.node is not None,
        "NUMA nodes (devices/system/node)",
        lambda a, b: a.node != b.node,
    ),
}


def plan_placements(allowed: Iterable[int], topology: dict[int, CpuTopology]) -> Plan:
    """One pair per placement these CPUs offer, lowest numbers first, and why others are absent.
    When sysfs says too little to find a pair of two different CPUs, a generic ``other_cpu`` pair
    stands in for them. ValueError if no CPU is allowed."""
    cpus = sorted(set(allowed))
    if not cpus:
        raise ValueError("no CPU is allowed: a placement needs at least one")
    topo = {c: topology.get(c) or CpuTopology(c, None, None, None, (), None) for c in cpus}
    first = cpus[0]
    found = [
        Placement(
            "same_cpu", (first, first), f"both tasks on CPU {first}: one CPU runs them in turn"
        )
    ]
    skipped: list[Skipped] = []
    for name in PLACEMENT_NAMES[1:]:
        if len(cpus) == 1:
            skipped.append(Skipped(name, f"only CPU {first} is allowed"))
            continue
        has_facts, files, fits = _PLACEMENTS[name]
        known = [c for c in cpus if has_facts(topo[c])]
        pairs = itertools.combinations(known, 2)  # the lowest numbers first: a, then b
        pair = next(((a, b) for a, b in pairs if fits(topo[a], topo[b])), None)
        if pair is not None:
            found.append(Placement(name, pair, _why(name, topo[pair[0]], topo[pair[1]])))
        elif len(known) < 2:
            hidden = format_cpu_list(c for c in cpus if c not in known)
            skipped.append(Skipped(name, f"sysfs does not show {files} for CPUs {hidden} {HIDDEN}"))
        else:
            skipped.append(Skipped(name, _absent_reason(name, known, topo)))
    if len(cpus) >= 2 and len(found) == 1:
        a, b = cpus[0], cpus[1]
        why = f"CPUs {a} and {b} are two CPUs; sysfs does not show what they share {HIDDEN}"
        found.append(Placement(OTHER_CPU, (a, b), why))
    return Plan(tuple(found), tuple(skipped))


def survey(allowed: Iterable[int], sys_root: Path = SYS) -> Plan:
    """The placements of the allowed CPUs on the machine sysfs under sys_root describes."""
    cpus = sorted(set(allowed))
    nodes = read_nodes(sys_root)
    return plan_placements(cpus, {cpu: read_cpu(cpu, sys_root, nodes) for cpu in cpus})
