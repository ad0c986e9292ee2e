"""/proc and /sys readers: the project's one home for what the kernel reports about tasks.

The interference meter's counters (/proc/stat's ``cpuN`` lines, a process tree's CPU times;
whole USER_HZ units, ``USER_HZ_S``), the scheduler's view of a task (state letter, schedstat,
wait channel), its tick rate and base slice, and one process's identity and memory (RSS, USS)
as fork-tree reads thousands at once. Process readers take the /proc directory as a
parameter so that tests can hand them a fake one.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, TypeVar

from ostoolkit.errors import ProcUnreadable

_T = TypeVar("_T")

PROC = Path("/proc")
# USER_HZ: the unit of the time fields of /proc/stat and /proc/PID/stat (proc(5)).
USER_HZ = os.sysconf("SC_CLK_TCK")
USER_HZ_S = 1.0 / USER_HZ

# Positions in a cpuN line of /proc/stat after the name (proc(5)): user nice system idle
# iowait irq softirq steal guest guest_nice. Older kernels print fewer fields (steal since
# 2.6.11); missing ones read as 0.
_USER, _NICE, _SYSTEM, _IDLE, _IOWAIT, _IRQ, _SOFTIRQ, _STEAL = range(8)
# Busy = user + nice + system + irq + softirq; why not the others: docs/method.md.
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


def parse_file(path: Path | str, parse: Callable[[str], _T]) -> _T | None:
    """``parse`` of a /proc or /sys file's text; None where it is gone, unreadable or not in
    the format the kernel gives (a task that exits while it is read, a kernel without it)."""
    try:
        return parse(Path(path).read_text())
    except (OSError, ValueError, IndexError, ProcUnreadable):
        return None


def _task_files(pid: int, name: str, proc: Path) -> dict[str, str | None]:
    """/proc/PID/task/TID/<name> of every live thread, by tid: None where a live thread lacks
    the file (the kernel has none); a thread that exits meanwhile is left out."""
    try:
        tids = os.listdir(proc / str(pid) / "task")
    except OSError:
        return {}
    texts: dict[str, str | None] = {}
    for tid in tids:
        try:
            texts[tid] = (proc / str(pid) / "task" / tid / name).read_text()
        except FileNotFoundError:
            if (proc / str(pid) / "task" / tid).is_dir():
                texts[tid] = None
        except OSError:
            continue
    return texts


@dataclass(frozen=True)
class CpuTimes:
    """One CPU's time since boot, in seconds: busy (tasks and interrupts) and stolen."""

    busy: float
    steal: float


def parse_cpu_times(text: str, user_hz: int = USER_HZ) -> dict[int, CpuTimes]:
    """The per-CPU lines (``cpu0``, ...; an offline CPU has none) of /proc/stat text, by CPU
    number; ``ProcUnreadable`` when no per-CPU line can be read."""
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
    """One process's CPU time from /proc/PID/stat, in seconds: ``cpu_s`` is utime + stime of
    all its threads, alive and exited; ``children_s`` is cutime + cstime, the time of the
    children it has waited for (and of theirs)."""

    pid: int
    ppid: int
    start_ticks: int
    cpu_s: float
    children_s: float


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


def read_pid_times(pid: int, proc: Path = PROC) -> TaskTimes | None:
    """One process's CPU times from /proc/PID/stat, or None once it is gone or unreadable."""
    return parse_file(proc / str(pid) / "stat", parse_pid_stat)


def _child_pids(pid: int, proc: Path) -> list[int]:
    """Children of ``pid`` from /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN); none once
    it is gone. Raises ProcUnreadable where that file does not exist, so the caller can scan."""
    texts = _task_files(pid, "children", proc).values()
    if None in texts:
        raise ProcUnreadable("no /proc/PID/task/TID/children on this kernel")
    return [int(word) for text in texts if text for word in text.split()]


def read_tree_times(root: int, proc: Path = PROC) -> dict[tuple[int, int], TaskTimes]:
    """Every live descendant of ``root`` by (pid, start ticks), so a reused pid is a new key:
    found through the children files where the kernel has them, else from every process's
    parent; one that exits is left out."""
    children: dict[int, list[int]] = {}
    scanned = False
    try:
        children[root] = _child_pids(root, proc)
    except ProcUnreadable:
        scanned = True
        for name in os.listdir(proc):
            task = parse_file(proc / name / "stat", parse_pid_stat) if name.isdigit() else None
            if task is not None:
                children.setdefault(task.ppid, []).append(task.pid)
    found: dict[tuple[int, int], TaskTimes] = {}
    stack = [root]
    seen = {root}
    while stack:
        parent = stack.pop()
        if not scanned and parent not in children:
            with contextlib.suppress(ProcUnreadable):
                children[parent] = _child_pids(parent, proc)
        for pid in children.get(parent, []):
            if pid in seen:
                continue
            seen.add(pid)
            task = read_pid_times(pid, proc)
            if task is not None:
                found[(task.pid, task.start_ticks)] = task
                stack.append(pid)
    return found


@dataclass(frozen=True)
class SchedStat:
    """The three fields of /proc/PID/schedstat (Documentation/scheduler/sched-stats.rst)."""

    run_ns: int
    wait_ns: int
    slices: int

    def __add__(self, other: SchedStat) -> SchedStat:
        return SchedStat(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __sub__(self, other: SchedStat) -> SchedStat:
        return SchedStat(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


def parse_state_letter(stat_line: str) -> str:
    """Return field 3 of /proc/PID/stat, the state letter (proc(5)): the first word after the
    last ``)``, as the command name before it may itself hold spaces and ``)``."""
    return stat_line[stat_line.rindex(")") + 1 :].split()[0]


def parse_task_stat(stat_line: str) -> tuple[str, str]:
    """The command name (field 2, between the first "(" and the last ")") and state letter."""
    name = stat_line[stat_line.index("(") + 1 : stat_line.rindex(")")]
    return name, parse_state_letter(stat_line)


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
    return "EEVDF" if tuple(map(int, match.groups())) >= EEVDF_SINCE else "CFS"


def read_state_letter(pid: int, proc: Path = PROC) -> str:
    """The state letter of /proc/PID/stat, or "-" once the process is gone."""
    return parse_file(proc / str(pid) / "stat", parse_state_letter) or "-"


def read_schedstat(pid: int, proc: Path = PROC) -> SchedStat | None:
    """The schedstat counters of ``pid``, or None if unreadable (no CONFIG_SCHED_INFO, gone)."""
    return parse_file(proc / str(pid) / "schedstat", parse_schedstat)


def schedstat_available() -> bool:
    """Whether /proc/PID/schedstat exists and counts slices: with sched_info off it reads
    "0 0 0", and this process has surely run at least one slice."""
    own = read_schedstat(os.getpid())
    return own is not None and own.slices > 0


def read_wchan(pid: int, proc: Path = PROC) -> str | None:
    """The kernel function a sleeping task waits in (proc(5) wchan), where shown."""
    wchan = parse_file(proc / str(pid) / "wchan", str.strip)
    return wchan if wchan not in (None, "", "0") else None


def read_config_hz() -> int | None:
    """CONFIG_HZ of the running kernel from /proc/config.gz or /boot/config-RELEASE."""
    with contextlib.suppress(OSError, EOFError, gzip.BadGzipFile):
        return parse_config_hz(gzip.decompress(Path("/proc/config.gz").read_bytes()).decode())
    return parse_file(f"/boot/config-{os.uname().release}", parse_config_hz)


def scheduler_facts() -> dict[str, Any]:
    """What the kernel says about its fair scheduler's slice: base slice, tick rate, name."""
    facts: dict[str, Any] = {"scheduler": fair_scheduler(os.uname().release)}
    for path in BASE_SLICE_PATHS:
        base_ns = parse_file(path, int)
        if base_ns is not None:
            facts["base_slice_ms"] = round(base_ns / NS_PER_MS, 3)
            facts["base_slice_source"] = path
            break
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
    return parse_file(proc / str(pid) / "status", lambda text: parse_kb_fields(text, names)) or {}


# Most a /proc file read by ``read_proc_bytes`` may hold: /proc/PID/smaps of a large process
# runs to a few MiB; a reader that finds more stops rather than eat memory.
PROC_READ_LIMIT = 16 * 2**20
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def read_proc_bytes(path: str, limit: int = PROC_READ_LIMIT) -> bytes:
    """A /proc file's bytes, read with os.read until end-of-file (a seq_file hands its text
    over in pieces); ``ProcUnreadable`` past ``limit``. OSError as open(2)/read(2) raise it:
    ENOENT/ESRCH once the process is gone, EACCES where ptrace access is refused."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ProcUnreadable(f"{path} holds more than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_private_kb(text: str) -> int:
    """Sum of the ``Private_*`` lines (Private_Clean, Private_Dirty, Private_Hugetlb; kB) of
    /proc/PID/smaps or smaps_rollup text: the process's USS as psutil computes it
    (``_pslinux._parse_smaps_rollup``). No line, as for a kernel thread's empty smaps, is 0."""
    total = 0
    for line in text.splitlines():
        if line.startswith("Private_"):
            parts = line.split()
            if len(parts) != 3 or not parts[1].isdigit() or parts[2] != "kB":
                raise ProcUnreadable(f"not a smaps line: {line!r}")
            total += int(parts[1])
    return total


def parse_smaps_rollup(text: str) -> int:
    """USS in kB from /proc/PID/smaps_rollup text (proc(5)): its Private_* lines summed;
    ``ProcUnreadable`` unless it is a rollup with Rss, Private_Clean and Private_Dirty."""
    header, _, body = text.partition("\n")
    if not header.endswith("[rollup]"):
        raise ProcUnreadable("not a /proc/PID/smaps_rollup text")
    names = {line.partition(":")[0] for line in body.splitlines()}
    if not {"Rss", "Private_Clean", "Private_Dirty"} <= names:
        raise ProcUnreadable("/proc/PID/smaps_rollup lacks Rss or Private_* lines")
    return parse_private_kb(body)


def parse_statm_rss(text: str, page_size: int = PAGE_SIZE) -> int:
    """Resident set size in bytes from /proc/PID/statm (field 2, in pages; proc(5)): what ps,
    top and psutil's ``memory_info().rss`` report."""
    fields = text.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise ProcUnreadable("not a /proc/PID/statm line")
    return int(fields[1]) * page_size


def parse_cmdline(text: str) -> list[str]:
    """/proc/PID/cmdline's arguments, as psutil splits them: on NUL, or on spaces where a
    process rewrote its command line as one string (psutil ``_pslinux.cmdline``)."""
    if not text:
        return []
    sep = "\x00" if text.endswith("\x00") else " "
    args = text.removesuffix(sep).split(sep)
    if sep == "\x00" and len(args) == 1 and " " in text:
        args = text.split(" ")
    return args


def full_name(comm: str, cmdline: list[str]) -> str:
    """A process's name as psutil gives it: the kernel's ``comm`` (cut to 15 characters), or,
    when it was cut, the base name of argv[0] if that starts with it."""
    if len(comm) >= 15 and cmdline:
        longer = os.path.basename(cmdline[0])
        if longer.startswith(comm):
            return longer
    return comm


@dataclass(frozen=True)
class ProcessView:
    """One process as fork-tree draws it, read straight from /proc: parent, name, state
    letter, RSS (statm, bytes) and USS (smaps_rollup, bytes; None where the kernel refused)."""

    pid: int
    ppid: int
    name: str
    state: str
    rss: int
    uss: int | None


def read_uss(pid: int, proc: Path = PROC) -> int | None:
    """USS in bytes from /proc/PID/smaps_rollup, else /proc/PID/smaps where the rollup says
    ESRCH/ENOENT for a live process (as psutil falls back); None where ptrace access is refused.
    ProcessLookupError/FileNotFoundError when the process is gone."""
    base = f"{proc}/{pid}"
    try:
        try:
            return parse_smaps_rollup(read_proc_bytes(f"{base}/smaps_rollup").decode()) * 1024
        except (ProcessLookupError, FileNotFoundError):
            return parse_private_kb(read_proc_bytes(f"{base}/smaps").decode()) * 1024
    except PermissionError:
        return None


def read_process(pid: int, proc: Path = PROC) -> ProcessView | None:
    """Read one process from /proc/PID/{stat,statm,smaps_rollup} (cmdline too for a name
    the kernel cut): four small reads, no psutil objects, as fork-tree reads thousands at
    once; None once it is gone or its stat cannot be read."""
    base = f"{proc}/{pid}"
    try:
        stat = read_proc_bytes(f"{base}/stat").decode(errors="surrogateescape")
        comm, state = parse_task_stat(stat)
        ppid = parse_pid_stat(stat).ppid
        rss = parse_statm_rss(read_proc_bytes(f"{base}/statm").decode())
        if len(comm) >= 15:
            with contextlib.suppress(PermissionError):
                raw = read_proc_bytes(f"{base}/cmdline")
                comm = full_name(comm, parse_cmdline(os.fsdecode(raw)))
        uss = read_uss(pid, proc)
    except (OSError, ValueError, ProcUnreadable):
        return None
    return ProcessView(pid, ppid, comm, state, rss, uss)


def read_threads(pid: int, proc: Path = PROC) -> list[dict[str, Any]]:
    """The threads of ``pid`` besides its main one, by tid: ``{tid, name, state}`` each, from
    /proc/PID/task/TID/stat (psutil lists thread ids but not their names or states)."""
    texts = _task_files(pid, "stat", proc)
    threads = []
    for tid, text in sorted((int(tid), text) for tid, text in texts.items()):
        if tid != pid and text is not None:
            with contextlib.suppress(ValueError, IndexError):  # not a stat line
                name, state = parse_task_stat(text)
                threads.append({"tid": tid, "name": name, "state": state})
    return threads


def read_task_switches(pid: int, proc: Path = PROC) -> int:
    """Context switches (voluntary + involuntary) of every live thread of ``pid``, from each
    thread's own status (/proc/PID/status counts the main thread only). A thread that exited
    took its counts with it, so this suits long-lived tasks."""
    names = ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
    texts = _task_files(pid, "status", proc).values()
    return sum(sum(parse_kb_fields(text, names).values()) for text in texts if text is not None)


def read_task_run_ns(pid: int, proc: Path = PROC) -> int | None:
    """CPU time of every live thread of ``pid`` in ns, exact (schedstat's first field, where
    /proc/PID/stat's whole ticks lose most of many short-lived tasks' time); None without it."""
    total = 0
    for text in _task_files(pid, "schedstat", proc).values():
        if text is None:
            return None
        with contextlib.suppress(ValueError):
            total += parse_schedstat(text).run_ns
    return total


def parse_sysv_shm(text: str) -> dict[int, tuple[int, int]]:
    """/proc/sysvipc/shm as ``{shmid: (key, nattch)}`` (columns named by its header line)."""
    header, *rows = text.splitlines() or [""]
    names = header.split()
    try:
        key_at, id_at, nattch_at = names.index("key"), names.index("shmid"), names.index("nattch")
    except ValueError:
        return {}
    segments = {}
    for fields in map(str.split, rows):
        with contextlib.suppress(ValueError, IndexError):
            segments[int(fields[id_at])] = (int(fields[key_at]), int(fields[nattch_at]))
    return segments


def read_sysv_shm(proc: Path = PROC) -> dict[int, tuple[int, int]]:
    """This IPC namespace's System V shared-memory segments; none where the file is missing."""
    return parse_file(proc / "sysvipc" / "shm", parse_sysv_shm) or {}


def read_ctxt(proc: Path = PROC) -> int | None:
    """Context switches on every CPU since boot (/proc/stat's ``ctxt``, proc(5)); None if absent."""
    found = re.search(r"^ctxt (\d+)$", (proc / "stat").read_text(), re.MULTILINE)
    return int(found.group(1)) if found else None


def read_cpu_schedstat(proc: Path = PROC) -> dict[int, tuple[int, int, int]]:
    """Per CPU: schedule() calls, idle picks, timeslices (/proc/schedstat v15+ fields 3, 4, 9)."""
    text = parse_file(proc / "schedstat", str) or ""
    if not re.match(r"version (1[5-9]|[2-9]\d)\n", text):  # a cpuN line has 9 fields since v15
        return {}
    rows = re.findall(r"^cpu(\d+) (?:\d+ ){2}(\d+) (\d+) (?:\d+ ){4}(\d+)", text, re.M)
    return {int(c): (int(calls), int(idle), int(slices)) for c, calls, idle, slices in rows}


def read_cpu_mhz(proc: Path = PROC) -> tuple[float, str]:
    """The CPU's nominal MHz and its source: "model name ... @ 2.60GHz", else "cpu MHz"."""
    text = (proc / "cpuinfo").read_text()
    if found := re.search(r"^model name\s*:.*@ *(\d+(?:\.\d+)?) *GHz", text, re.MULTILINE):
        return float(found.group(1)) * 1000, "/proc/cpuinfo model name"
    found = re.search(r"^cpu MHz\s*:\s*(\d+(?:\.\d+)?)", text, re.MULTILINE)
    return (float(found.group(1)), "/proc/cpuinfo cpu MHz") if found else (0.0, "no CPU clock")


def read_perf_paranoid(proc: Path = PROC) -> int | None:
    """kernel.perf_event_paranoid: above 1, unprivileged perf_event_open(2) counts no kernel."""
    return parse_file(proc / "sys/kernel/perf_event_paranoid", int)
