"""The CPU limit of this process's control group and how often it throttled us.

A CFS quota (``--cpus``, a Kubernetes limit, ``CPUQuota``) stops a group's tasks until the
next period once used up, unseen by the other-tasks and steal shares: only the group's own
counters show it. Every level up to the mounted root is read, v2 or v1; nothing here raises.
The files and why: docs/method.md, "Interference, measured".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
MOUNTINFO = Path("/proc/self/mountinfo")
# A cgroup file is a line or a few: anything longer is not one. mountinfo has a line per mount:
# a container host's runs to thousands of mounts, so it is read to a far larger bound.
MAX_FILE_BYTES = 4096
MAX_MOUNTINFO_BYTES = 4 << 20


@dataclass(frozen=True)
class CpuLimit:
    """A CFS quota on one group: ``quota_us`` of CPU time per ``period_us``, at ``folder``."""

    quota_us: int
    period_us: int
    folder: Path
    version: int

    @property
    def cpus(self) -> float:
        """The quota in CPUs: 0.2 lets the group use a fifth of one CPU's time."""
        return self.quota_us / self.period_us


@dataclass(frozen=True)
class Throttling:
    """A group's CFS counters at one moment: periods with runnable tasks, periods in which
    the quota ran out, and the time its tasks spent stopped (µs)."""

    periods: int
    throttled: int
    throttled_us: float


def _read(path: Path, limit: int = MAX_FILE_BYTES) -> str | None:
    """A cgroup or proc file's text up to ``limit`` bytes, or None when it cannot be read."""
    try:
        with path.open("rb") as file:
            return file.read(limit).decode("ascii", errors="replace")
    except OSError:
        return None


def parse_memberships(text: str) -> dict[str, str]:
    """/proc/PID/cgroup: the group path of each hierarchy, keyed ``v2`` or by v1 controller."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        number, controllers, path = parts
        if number == "0" and not controllers:
            paths["v2"] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


@dataclass(frozen=True)
class Mount:
    """One cgroup hierarchy's mount: where it is, which group it shows, v1 or v2."""

    point: Path
    root: str
    version: int
    controllers: frozenset[str]


def parse_mounts(text: str) -> list[Mount]:
    """The cgroup mounts of /proc/PID/mountinfo (proc(5)): v2's, and v1's with controllers."""
    mounts = []
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        version = 2 if tail[0] == "cgroup2" else 1
        options = frozenset(tail[2].split(","))
        point = Path(fields[4].replace("\\040", " "))
        mounts.append(Mount(point, fields[3], version, options))
    return mounts


def _folders(mount: Mount, path: str) -> list[Path]:
    """The group's folder under ``mount`` and every ancestor up to the mount's root."""
    relative = path[len(mount.root) :] if path.startswith(mount.root) else path
    parts = [part for part in relative.split("/") if part]
    return [mount.point.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def cpu_folders(proc_cgroup: Path = PROC_CGROUP, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Where this process's CPU controller is, innermost group first (v1 ``cpu``, else v2)."""
    memberships = parse_memberships(_read(proc_cgroup) or "")
    mounts = parse_mounts(_read(mountinfo, MAX_MOUNTINFO_BYTES) or "")
    for mount in mounts:
        if mount.version == 1 and "cpu" in mount.controllers and "cpu" in memberships:
            return _folders(mount, memberships["cpu"])
    for mount in mounts:
        if mount.version == 2 and "v2" in memberships:
            return _folders(mount, memberships["v2"])
    return []


def read_limit(folder: Path) -> CpuLimit | None:
    """The CFS quota set on one group (v2 ``cpu.max``, v1 ``cfs_quota_us``), or None."""
    text = _read(folder / "cpu.max")
    if text is not None:
        quota, _, period = text.strip().partition(" ")
        version = 2
    else:  # v1: two files, and a quota of -1 for none
        quota, period = [
            (_read(folder / f"cpu.cfs_{name}_us") or "").strip() for name in ("quota", "period")
        ]
        version = 1
    if quota.isdigit() and period.isdigit() and int(period) > 0:
        return CpuLimit(int(quota), int(period), folder, version)
    return None


def parse_throttling(text: str) -> Throttling | None:
    """cpu.stat's CFS counters (v2 ``throttled_usec``, v1 ``throttled_time`` in ns)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    if "nr_periods" not in values or "nr_throttled" not in values:
        return None
    if "throttled_usec" in values:
        stopped = float(values["throttled_usec"])
    else:
        stopped = values.get("throttled_time", 0) / 1000
    return Throttling(values["nr_periods"], values["nr_throttled"], stopped)


@functools.cache
def cpu_limits() -> tuple[CpuLimit, ...]:
    """Every CFS quota that binds this process, innermost group first (cached: groups do
    not change while ostoolkit runs)."""
    return tuple(limit for folder in cpu_folders() if (limit := read_limit(folder)))


def tightest_limit(limits: tuple[CpuLimit, ...]) -> CpuLimit | None:
    """The quota that binds hardest: the fewest CPUs."""
    return min(limits, key=lambda limit: limit.cpus, default=None)


def read_throttling() -> tuple[Throttling, ...]:
    """Each limited group's counters now, in the order of ``cpu_limits``."""
    found = (parse_throttling(_read(limit.folder / "cpu.stat") or "") for limit in cpu_limits())
    return tuple(counters or Throttling(0, 0, 0.0) for counters in found)


def throttled_between(
    before: tuple[Throttling, ...], after: tuple[Throttling, ...]
) -> Throttling | None:
    """How much the quotas throttled between two readings: the group that was throttled in
    the most periods (each counts the stops its own quota caused), or None without a quota."""
    if not before or len(before) != len(after):
        return None
    moves = [
        Throttling(
            b.periods - a.periods, b.throttled - a.throttled, b.throttled_us - a.throttled_us
        )
        for a, b in zip(before, after, strict=True)
    ]
    return max(moves, key=lambda move: (move.throttled, move.throttled_us))
