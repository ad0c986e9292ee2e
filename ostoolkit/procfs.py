"""/proc and /sys readers: the project's one home for what the kernel reports about tasks.

The interference meter's counters (/proc/stat's ``cpuN`` lines, a process tree's CPU times;
whole USER_HZ units, ``USER_HZ_S``), the scheduler's view of a task (state letter, schedstat,
wait channel), its tick rate and base slice. Process readers take the /proc directory as a
parameter so that tests can hand them a fake one.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ostoolkit.errors import ProcUnreadable

PROC = Path("/proc")
# USER_HZ: the unit of the time fields of /proc/stat and /proc/PID/stat (proc(5)).
USER_HZ = os.sysconf("SC_CLK_TCK")
USER_HZ_S = 1.0 / USER_HZ

# Positions in a cpuN line of /proc/stat after the name (proc(5)): user nice system idle
# iowait irq softirq steal guest guest_nice. Older kernels print fewer fields (steal since
# 2.6.11); missing ones read as 0.
_USER, _NICE, _SYSTEM, _IDLE, _IOWAIT, _IRQ, _SOFTIRQ, _STEAL = range(8)
# Busy = user + nice + system + irq + softirq. Not idle or iowait (the CPU had nothing to
# run), not steal (reported on its own: the hypervisor's, not a task's), and not guest or
# guest_nice: the kernel already adds a guest's time to user or nice (account_guest_time in
# kernel/sched/cputime.c), so adding them again would count it twice.
BUSY_FIELDS = (_USER, _NICE, _SYSTEM, _IRQ, _SOFTIRQ)

# Fields of /proc/PID/stat after the ")" that ends the command name, counted from field 3
# (state) as index 0 (proc(5)): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17,
# starttime 22 (in clock ticks after boot; with the pid it names a process uniquely).
_PPID, _UTIME, _STIME, _CUTIME, _CSTIME, _STARTTIME = 1, 11, 12, 13, 14, 19

# Where kernels expose the fair scheduler's base slice: EEVDF (6.6+) in debugfs, some
# distributions as a sysctl, CFS before 6.6 as its minimum granularity.
BASE_SLICE_PATHS = (
    "/sys/kernel/debug/sched/base_slice_ns",
    "/proc/sys/kernel/sched_base_slice_ns",
    "/sys/kernel/debug/sched/min_granularity_ns",
    "/proc/sys/kernel/sched_min_granularity_ns",
)
# The fair scheduler became EEVDF in Linux 6.6 (Documentation/scheduler/sched-eevdf.rst).
EEVDF_SINCE = (6, 6)
NS_PER_MS = 1e6
# /proc/PID/schedstat exists only with CONFIG_SCHED_INFO (proc(5)).
NO_SCHEDSTAT = (
    "/proc/PID/schedstat is missing or off on this kernel (CONFIG_SCHED_INFO, enabled by "
    "CONFIG_SCHEDSTATS or CONFIG_TASK_DELAY_ACCT)"
)


@dataclass(frozen=True)
class CpuTimes:
    """One CPU's time since boot, in seconds: busy (tasks and interrupts) and stolen."""

    busy: float
    steal: float


def parse_cpu_times(text: str, user_hz: int = USER_HZ) -> dict[int, CpuTimes]:
    """The per-CPU lines (``cpu0``, ``cpu1``, ...) of /proc/stat text, by CPU number.

    The aggregate ``cpu`` line is skipped; a CPU that is offline has no line. Raises
    ``ProcUnreadable`` when no per-CPU line can be read.
    """
    times: dict[int, CpuTimes] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit():
            continue
        try:
            ticks = [int(field) for field in rest.split()]
        except ValueError:
            raise ProcUnreadable(f"/proc/stat: {name} holds a field that is not a number") from None
        if len(ticks) < _SOFTIRQ + 1:
            raise ProcUnreadable(f"/proc/stat: {name} has {len(ticks)} fields, expected 7 or more")
        steal = ticks[_STEAL] if len(ticks) > _STEAL else 0
        busy = sum(ticks[i] for i in BUSY_FIELDS)
        times[int(name[3:])] = CpuTimes(busy / user_hz, steal / user_hz)
    if not times:
        raise ProcUnreadable("/proc/stat has no per-CPU lines")
    return times


def read_cpu_times(proc: Path = PROC) -> dict[int, CpuTimes]:
    """Read every CPU's busy and stolen time now, from ``proc``/stat (see parse_cpu_times)."""
    try:
        text = (proc / "stat").read_text()
    except OSError as err:
        raise ProcUnreadable(f"{proc / 'stat'}: {err.strerror or err}") from None
    return parse_cpu_times(text)


@dataclass(frozen=True)
class TaskTimes:
    """One process's CPU time from /proc/PID/stat, in seconds.

    ``cpu_s`` is utime + stime of all its threads, alive and exited; ``children_s`` is
    cutime + cstime, the time of the children it has waited for (and of theirs).
    """

    pid: int
    ppid: int
    start_ticks: int
    cpu_s: float
    children_s: float

    @property
    def total_s(self) -> float:
        """Its own time and that of the children it reaped."""
        return self.cpu_s + self.children_s


def parse_pid_stat(text: str, user_hz: int = USER_HZ) -> TaskTimes:
    """Parse /proc/PID/stat. The command name (field 2) may hold spaces and parentheses,
    so fields are counted after its last ")"."""
    head, paren, rest = text.rpartition(")")
    pid_text = head.partition(" (")[0].strip()
    fields = rest.split()
    if not paren or not pid_text.isdigit() or len(fields) <= _STARTTIME:
        raise ProcUnreadable("not a /proc/PID/stat line")
    try:
        values = [int(fields[i]) for i in (_PPID, _UTIME, _STIME, _CUTIME, _CSTIME, _STARTTIME)]
    except ValueError:
        raise ProcUnreadable("/proc/PID/stat holds a field that is not a number") from None
    ppid, utime, stime, cutime, cstime, start = values
    return TaskTimes(
        int(pid_text), ppid, start, (utime + stime) / user_hz, (cutime + cstime) / user_hz
    )


def _child_pids(pid: int, proc: Path) -> list[int]:
    """Children of ``pid`` from /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN).

    Raises ProcUnreadable where that file does not exist, so the caller can scan instead.
    """
    found: list[int] = []
    try:
        tids = os.listdir(proc / str(pid) / "task")
    except OSError:
        return []  # the process is gone: it has no children to list
    for tid in tids:
        try:
            text = (proc / str(pid) / "task" / tid / "children").read_text()
        except FileNotFoundError:
            if (proc / str(pid) / "task" / tid).is_dir():
                raise ProcUnreadable("no /proc/PID/task/TID/children on this kernel") from None
            continue  # the thread exited meanwhile
        except OSError:
            continue
        found.extend(int(word) for word in text.split())
    return found


def _scan_parents(proc: Path) -> dict[int, list[int]]:
    """Every process's children, from the ppid field of every /proc/PID/stat."""
    children: dict[int, list[int]] = {}
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            task = parse_pid_stat((proc / name / "stat").read_text())
        except (OSError, ProcUnreadable):
            continue  # exited meanwhile
        children.setdefault(task.ppid, []).append(task.pid)
    return children


def read_tree_times(root: int, proc: Path = PROC) -> dict[tuple[int, int], TaskTimes]:
    """Every live descendant of ``root`` (not ``root`` itself) with its CPU times.

    Keyed by (pid, start ticks), so a reused pid is a new key; found through the children files
    where the kernel has them, else from every process's parent; one that exits is left out.
    """
    try:
        below = {root: _child_pids(root, proc)}
        scanned = None
    except ProcUnreadable:
        scanned = _scan_parents(proc)
        below = {}
    found: dict[tuple[int, int], TaskTimes] = {}
    stack = [root]
    seen = {root}
    while stack:
        parent = stack.pop()
        if scanned is not None:
            kids = scanned.get(parent, [])
        elif parent in below:
            kids = below[parent]
        else:
            try:
                kids = _child_pids(parent, proc)
            except ProcUnreadable:
                kids = []
        for pid in kids:
            if pid in seen:
                continue
            seen.add(pid)
            try:
                task = parse_pid_stat((proc / str(pid) / "stat").read_text())
            except (OSError, ProcUnreadable):
                continue
            found[(task.pid, task.start_ticks)] = task
            stack.append(pid)
    return found


def read_pid_times(pid: int, proc: Path = PROC) -> TaskTimes | None:
    """One process's CPU times from /proc/PID/stat, or None once it is gone or unreadable."""
    try:
        return parse_pid_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ProcUnreadable):
        return None


@dataclass(frozen=True)
class SchedStat:
    """The three fields of /proc/PID/schedstat (Documentation/scheduler/sched-stats.rst)."""

    run_ns: int
    wait_ns: int
    slices: int

    def __add__(self, other: SchedStat) -> SchedStat:
        return SchedStat(
            self.run_ns + other.run_ns, self.wait_ns + other.wait_ns, self.slices + other.slices
        )

    def __sub__(self, other: SchedStat) -> SchedStat:
        return SchedStat(
            self.run_ns - other.run_ns, self.wait_ns - other.wait_ns, self.slices - other.slices
        )


def parse_state_letter(stat_line: str) -> str:
    """Return field 3 of /proc/PID/stat, the state letter (proc(5)).

    Field 2, the command name, is in parentheses and may itself contain spaces and ``)``, so
    the state is the first word after the last ``)``.
    """
    return stat_line[stat_line.rindex(")") + 1 :].split()[0]


def parse_schedstat(text: str) -> SchedStat:
    """Parse /proc/PID/schedstat: run time (ns), run-queue wait (ns), timeslices run."""
    run_ns, wait_ns, slices = (int(field) for field in text.split()[:3])
    return SchedStat(run_ns, wait_ns, slices)


def parse_config_hz(config: str) -> int | None:
    """Return CONFIG_HZ, the scheduler tick rate, from a kernel config text; None if absent."""
    match = re.search(r"^CONFIG_HZ=(\d+)$", config, re.MULTILINE)
    return int(match.group(1)) if match else None


def fair_scheduler(release: str) -> str:
    """Name the fair scheduler of a kernel release: EEVDF from 6.6, CFS before."""
    match = re.match(r"(\d+)\.(\d+)", release)
    if not match:
        return "unknown"
    version = (int(match.group(1)), int(match.group(2)))
    return "EEVDF" if version >= EEVDF_SINCE else "CFS"


def read_state_letter(pid: int, proc: Path = PROC) -> str:
    """The state letter of /proc/PID/stat, or "-" once the process is gone."""
    try:
        return parse_state_letter((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return "-"


def read_schedstat(pid: int, proc: Path = PROC) -> SchedStat | None:
    """The schedstat counters of ``pid``, or None if unreadable (no CONFIG_SCHED_INFO, gone)."""
    try:
        return parse_schedstat((proc / str(pid) / "schedstat").read_text())
    except (OSError, ValueError):
        return None


def schedstat_available() -> bool:
    """Tell whether /proc/PID/schedstat exists and counts slices (CONFIG_SCHED_INFO, on).

    A kernel with the file but sched_info off prints "0 0 0"; this process has surely run at
    least one slice, so a zero count means the counters are off.
    """
    own = read_schedstat(os.getpid())
    return own is not None and own.slices > 0


def read_wchan(pid: int, proc: Path = PROC) -> str | None:
    """The kernel function a sleeping task waits in (proc(5) wchan), where shown."""
    try:
        wchan = (proc / str(pid) / "wchan").read_text().strip()
    except OSError:
        return None
    return wchan if wchan not in ("", "0") else None


def read_base_slice() -> tuple[float, str] | None:
    """The fair scheduler's base slice in ms and the file it came from, where readable."""
    for path in BASE_SLICE_PATHS:
        try:
            return int(Path(path).read_text()) / NS_PER_MS, path
        except (OSError, ValueError):
            continue
    return None


def read_config_hz() -> int | None:
    """CONFIG_HZ of the running kernel from /proc/config.gz or /boot/config-RELEASE."""
    with contextlib.suppress(OSError, EOFError, gzip.BadGzipFile):
        return parse_config_hz(gzip.decompress(Path("/proc/config.gz").read_bytes()).decode())
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return parse_config_hz(Path(f"/boot/config-{os.uname().release}").read_text())
    return None


def scheduler_facts() -> dict[str, Any]:
    """What the kernel says about its fair scheduler's slice: base slice, tick rate, name."""
    facts: dict[str, Any] = {"scheduler": fair_scheduler(os.uname().release)}
    base = read_base_slice()
    if base is not None:
        facts["base_slice_ms"] = round(base[0], 3)
        facts["base_slice_source"] = base[1]
    hz = read_config_hz()
    if hz:
        facts["config_hz"] = hz
        facts["tick_ms"] = round(1000 / hz, 3)
    return facts


def parse_kb_fields(text: str, names: tuple[str, ...]) -> dict[str, int]:
    """Pick ``Name:  123 kB`` fields out of /proc status-style text; absent ones are left out."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if name in names and parts and parts[0].isdigit():
            found[name] = int(parts[0])
    return found


def read_status_fields(pid: int, names: tuple[str, ...], proc: Path = PROC) -> dict[str, int]:
    """``names``'s numbers from /proc/PID/status (``parse_kb_fields``); {} if it is gone."""
    try:
        return parse_kb_fields((proc / str(pid) / "status").read_text(), names)
    except OSError:
        return {}


def parse_task_stat(stat_line: str) -> tuple[str, str]:
    """The command name (field 2, between the first "(" and the last ")") and state letter."""
    name = stat_line[stat_line.index("(") + 1 : stat_line.rindex(")")]
    return name, parse_state_letter(stat_line)


def read_threads(pid: int, proc: Path = PROC) -> list[dict[str, Any]]:
    """The threads of ``pid`` besides its main one, by tid: ``{tid, name, state}`` each.

    From /proc/PID/task/TID/stat (psutil lists thread ids but not their names or states); a
    thread that ends while it is read is left out, and an unreadable process has none.
    """
    threads = []
    try:
        tids = sorted(int(entry.name) for entry in (proc / str(pid) / "task").iterdir())
    except (OSError, ValueError):
        return []
    for tid in tids:
        if tid == pid:
            continue
        try:
            name, state = parse_task_stat(
                (proc / str(pid) / "task" / str(tid) / "stat").read_text()
            )
        except (OSError, ValueError, IndexError):
            continue
        threads.append({"tid": tid, "name": name, "state": state})
    return threads


def parse_sysv_shm(text: str) -> dict[int, tuple[int, int]]:
    """/proc/sysvipc/shm as ``{shmid: (key, nattch)}`` (columns named by its header line)."""
    lines = text.splitlines()
    if not lines:
        return {}
    names = lines[0].split()
    try:
        key_at, id_at, nattch_at = names.index("key"), names.index("shmid"), names.index("nattch")
    except ValueError:
        return {}
    segments = {}
    for line in lines[1:]:
        fields = line.split()
        with contextlib.suppress(ValueError, IndexError):
            segments[int(fields[id_at])] = (int(fields[key_at]), int(fields[nattch_at]))
    return segments


def read_sysv_shm(proc: Path = PROC) -> dict[int, tuple[int, int]]:
    """This IPC namespace's System V shared-memory segments; none where the file is missing."""
    try:
        return parse_sysv_shm((proc / "sysvipc" / "shm").read_text())
    except OSError:
        return {}


def _task_texts(pid: int, name: str, proc: Path) -> list[str | None]:
    """/proc/PID/task/TID/<name> of every live thread; None where a live thread lacks it."""
    try:
        tids = os.listdir(proc / str(pid) / "task")
    except OSError:
        return []
    texts: list[str | None] = []
    for tid in tids:
        try:
            texts.append((proc / str(pid) / "task" / tid / name).read_text())
        except FileNotFoundError:
            if (proc / str(pid) / "task" / tid).is_dir():
                texts.append(None)  # the thread lives: the kernel has no such file
        except OSError:
            continue  # exited meanwhile
    return texts


def read_task_switches(pid: int, proc: Path = PROC) -> int:
    """Context switches (voluntary + involuntary) of every live thread of ``pid``.

    /proc/PID/status counts the main thread only; each thread's own status has its counts.
    A thread that exited took its counts with it, so this suits long-lived tasks.
    """
    names = ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
    texts = [text for text in _task_texts(pid, "status", proc) if text is not None]
    return sum(sum(parse_kb_fields(text, names).values()) for text in texts)


def read_task_run_ns(pid: int, proc: Path = PROC) -> int | None:
    """CPU time of every live thread of ``pid`` in ns (schedstat's first field), exact.

    /proc/PID/stat's whole ticks lose most of many short-lived tasks' time (docs/method.md).
    None where schedstat is missing; a thread that exited is left out.
    """
    total = 0
    for text in _task_texts(pid, "schedstat", proc):
        if text is None:
            return None
        with contextlib.suppress(ValueError):
            total += parse_schedstat(text).run_ns
    return total


def read_ctxt(proc: Path = PROC) -> int | None:
    """Context switches on every CPU since boot (/proc/stat's ``ctxt``, proc(5)); None if absent."""
    found = re.search(r"^ctxt (\d+)$", (proc / "stat").read_text(), re.MULTILINE)
    return int(found.group(1)) if found else None


def read_cpu_schedstat(proc: Path = PROC) -> dict[int, tuple[int, int, int]]:
    """Per CPU: schedule() calls, idle picks, timeslices (/proc/schedstat v15+ fields 3, 4, 9)."""
    with contextlib.suppress(OSError):
        text = (proc / "schedstat").read_text()
        if re.match(r"version (1[5-9]|[2-9]\d)\n", text):  # a cpuN line has 9 fields since v15
            rows = re.findall(r"^cpu(\d+) (?:\d+ ){2}(\d+) (\d+) (?:\d+ ){4}(\d+)", text, re.M)
            return {int(c): (int(calls), int(idle), int(slices)) for c, calls, idle, slices in rows}
    return {}


def read_cpu_mhz(proc: Path = PROC) -> tuple[float, str]:
    """The CPU's nominal MHz and its source: "model name ... @ 2.60GHz", else "cpu MHz"."""
    text = (proc / "cpuinfo").read_text()
    if found := re.search(r"^model name\s*:.*@ *(\d+(?:\.\d+)?) *GHz", text, re.MULTILINE):
        return float(found.group(1)) * 1000, "/proc/cpuinfo model name"
    found = re.search(r"^cpu MHz\s*:\s*(\d+(?:\.\d+)?)", text, re.MULTILINE)
    return (float(found.group(1)), "/proc/cpuinfo cpu MHz") if found else (0.0, "no CPU clock")


def read_perf_paranoid(proc: Path = PROC) -> int | None:
    """kernel.perf_event_paranoid: above 1, unprivileged perf_event_open(2) counts no kernel."""
    with contextlib.suppress(OSError, ValueError):
        return int((proc / "sys/kernel/perf_event_paranoid").read_text())
    return None
