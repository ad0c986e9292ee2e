"""What the kernel did on each switch, counted: its tracepoints, via perf_event_open(2).

For the two tasks of a same-core ping-pong: how often the kernel switched away from one
(``sched:sched_switch``), how often that switch changed address space (``tlb:tlb_flush`` with
reason 0, TLB_FLUSH_ON_TASK_SWITCH, emitted by x86's switch_mm_irqs_off whenever it loads
another mm's page tables), and whether it kept the TLB (pages 0: the PCID still held the
mm's entries) or flushed it (pages TLB_FLUSH_ALL). Counted per CPU on the pair's pinned CPU,
filtered to the pair's task ids: a per-task counter is switched out by perf before
switch_mm runs and so never sees the flush. Why and how: docs/method.md, "Counting switches".
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import re
import statistics
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ostoolkit.measure.blocks import Timing
from ostoolkit.measure.pmu import PERF_FLAG_FD_CLOEXEC, PerfEventAttr, perf_event_open
from ostoolkit.procfs import read_perf_paranoid

TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
PERF_TYPE_TRACEPOINT = 2
# _IOW('$', 6, char *): the filter string's address, so the size field is a pointer's.
PERF_EVENT_IOC_SET_FILTER = (1 << 30) | (ctypes.sizeof(ctypes.c_void_p) << 16) | (0x24 << 8) | 6
TLB_FLUSH_ON_TASK_SWITCH = 0  # enum tlb_flush_reason (include/linux/mm_types.h)
# What each count is: (subsystem, tracepoint, filter), the filter's {pid} the pair's ids
# (common_pid: the task running when the event fired, on a switch the one switched away from).
SWITCHED = "sched_switches"
KEPT, FLUSHED = "tlb_kept", "tlb_flushed"
EVENTS: dict[str, tuple[str, str, str]] = {
    SWITCHED: ("sched", "sched_switch", "{prev}"),
    KEPT: ("tlb", "tlb_flush", f"reason == {TLB_FLUSH_ON_TASK_SWITCH} && pages == 0 && ({{pid}})"),
    FLUSHED: (
        "tlb",
        "tlb_flush",
        f"reason == {TLB_FLUSH_ON_TASK_SWITCH} && pages != 0 && ({{pid}})",
    ),
}
WINDOWS = 5  # counted windows per pair: each a baseline (background) then the round trips
NOT_PERMITTED = (errno.EACCES, errno.EPERM)


class TraceUnavailable(Exception):
    """Tracepoint counting cannot run here; the message is the one line that says why."""


def tracefs() -> Path | None:
    """Where tracefs is, or None: the first of TRACEFS that is a folder (for the unprivileged
    possibly unreadable: then reading an id says so)."""
    return next((path for path in TRACEFS if os.path.isdir(path)), None)


def tracepoint_id(subsystem: str, name: str, root: Path | None = None) -> int:
    """A tracepoint's id from tracefs (``events/<subsystem>/<name>/id``); TraceUnavailable
    naming the tracepoint where it is missing or unreadable."""
    root = root or tracefs()
    where = f"tracepoint {subsystem}:{name}"
    if root is None:
        raise TraceUnavailable("tracefs is not mounted (/sys/kernel/tracing)")
    path = root / "events" / subsystem / name / "id"
    try:
        return int(path.read_text())
    except FileNotFoundError:
        raise TraceUnavailable(f"{where} is missing from this kernel") from None
    except PermissionError:
        raise TraceUnavailable(
            f"not permitted: {where}'s id is in {root}, readable by root only (and counting "
            "tracepoints on a CPU needs root or CAP_PERFMON)"
        ) from None
    except (OSError, ValueError) as err:
        raise TraceUnavailable(f"{where}'s id is unreadable: {err}") from None


def filters(tids: Sequence[int]) -> dict[str, str]:
    """Each event's filter for the tasks ``tids``: switches away from one, and the address-space
    changes (TLB kept or flushed) made while one of them was the task switched away from."""
    prev = " || ".join(f"prev_pid == {tid}" for tid in tids)
    pid = " || ".join(f"common_pid == {tid}" for tid in tids)
    return {name: spec[2].format(prev=prev, pid=pid) for name, spec in EVENTS.items()}


def set_filter(fd: int, text: str) -> None:
    """PERF_EVENT_IOC_SET_FILTER: the kernel counts only the events the filter matches."""
    fcntl.ioctl(fd, PERF_EVENT_IOC_SET_FILTER, text.encode() + b"\0")


def _why(err: OSError) -> str:
    """perf_event_open's failure on a tracepoint, in words."""
    code = err.errno or 0
    name = errno.errorcode.get(code, str(code))
    if code in NOT_PERMITTED:
        paranoid = read_perf_paranoid()
        setting = f" (kernel.perf_event_paranoid is {paranoid})" if paranoid is not None else ""
        return (
            f"perf_event_open: {name}, counting tracepoints on a CPU needs root or "
            f"CAP_PERFMON{setting}"
        )
    return f"perf_event_open: {name}, {err.strerror or 'failed'}"


@dataclass
class SwitchEvents:
    """Open tracepoint counters on one CPU, filtered to one pair's tasks: read them as counts."""

    cpu: int
    fds: dict[str, int] = field(default_factory=dict)

    def read(self) -> dict[str, int]:
        """Each event's count so far."""
        return {name: struct.unpack("=Q", os.read(fd, 8))[0] for name, fd in self.fds.items()}

    def close(self) -> None:
        """Close every counter."""
        while self.fds:
            os.close(self.fds.popitem()[1])


def available_events() -> tuple[dict[str, int], list[str]]:
    """The tracepoint id of each countable event, and a line per event skipped and why (a
    tracepoint this kernel lacks, as tlb:tlb_flush outside x86); TraceUnavailable when not
    even sched:sched_switch can be found."""
    ids: dict[str, int] = {}
    skipped: list[str] = []
    for name, (subsystem, tracepoint, _) in EVENTS.items():
        try:
            ids[name] = tracepoint_id(subsystem, tracepoint)
        except TraceUnavailable as why:
            if name == SWITCHED:
                raise
            if str(why) not in skipped:
                skipped.append(str(why))
    return ids, [f"address-space changes and TLB flushes not counted: {s}" for s in skipped]


def open_events(cpu: int, tids: Sequence[int], ids: Mapping[str, int]) -> SwitchEvents:
    """Counters of ``ids`` on ``cpu`` (every task there), each filtered to ``tids``;
    TraceUnavailable (one line) when the kernel refuses."""
    events = SwitchEvents(cpu)
    texts = filters(tids)
    try:
        for name, config in ids.items():
            attr = PerfEventAttr(
                type=PERF_TYPE_TRACEPOINT, size=ctypes.sizeof(PerfEventAttr), config=config
            )
            events.fds[name] = perf_event_open(attr, pid=-1, cpu=cpu, flags=PERF_FLAG_FD_CLOEXEC)
            try:
                set_filter(events.fds[name], texts[name])
            except OSError as err:
                raise TraceUnavailable(
                    f"the kernel refused the filter of {name} ({texts[name]!r}): "
                    f"{err.strerror or err}"
                ) from None
    except OSError as err:
        events.close()
        raise TraceUnavailable(_why(err)) from None
    except BaseException:
        events.close()
        raise
    return events


def probe(cpu: int) -> tuple[dict[str, int], list[str]]:
    """Whether switches can be counted on ``cpu`` here: the events' ids and the lines of what
    is skipped; TraceUnavailable (one line) when nothing can be counted."""
    ids, skipped = available_events()
    with contextlib.closing(open_events(cpu, (os.getpid(),), ids)):
        pass
    return ids, skipped


@dataclass
class Counted:
    """One pair's counted windows: per window, each event's count per hop, net of background."""

    per_hop: dict[str, list[float]] = field(default_factory=dict)
    gross: dict[str, int] = field(default_factory=dict)
    background: dict[str, float] = field(default_factory=dict)
    hops: int = 0
    traced_round_us: list[float] = field(default_factory=list)

    def add(self, name: str, gross: int, background: float, hops: int) -> None:
        """One window's count of ``name``: ``gross`` in the round trips, ``background`` the
        same tasks' count over as long without the ping-pong."""
        self.per_hop.setdefault(name, []).append((gross - background) / hops)
        self.gross[name] = self.gross.get(name, 0) + gross
        self.background[name] = self.background.get(name, 0.0) + background


def _delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Each counter's increase between two reads."""
    return {name: after[name] - before[name] for name in after}


def count_windows(
    timing: Timing, events: SwitchEvents, rounds: int, windows: int = WINDOWS
) -> Counted:
    """``windows`` times: the baseline (one task alone, no ping-pong) then ``rounds`` round
    trips, the counters read around each; a window's background is the baseline's count
    scaled to the round trips' duration, subtracted from theirs."""
    counted = Counted()
    hops = rounds * timing.hops_per_round
    for _ in range(windows):
        start = events.read()
        alone_ns = max(timing.baseline(rounds), 1)
        middle = events.read()
        pinged_ns = timing.rounds(rounds)
        end = events.read()
        quiet, busy = _delta(middle, start), _delta(end, middle)
        for name in busy:
            counted.add(name, busy[name], quiet[name] * pinged_ns / alone_ns, hops)
        counted.hops += hops
        counted.traced_round_us.append(pinged_ns / 1e3 / rounds)
    return counted


# --- Timing decomposition (measure-switch --trace): every event of a window, timestamped. ---

PERF_SAMPLE_TID, PERF_SAMPLE_TIME, PERF_SAMPLE_RAW = 1 << 1, 1 << 2, 1 << 10
PERF_RECORD_LOST, PERF_RECORD_SAMPLE = 2, 9
PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_SET_OUTPUT = 0x2401, 0x2405  # _IO('$', 1), _IO('$', 5)
# struct perf_event_mmap_page: data_head, data_tail, data_offset, data_size.
MMAP_DATA = struct.Struct("=4Q")
MMAP_DATA_AT = 1024
RECORD_HEADER = struct.Struct("=IHH")
SAMPLE_FIXED = struct.Struct("=IIQI")  # TID (pid, tid), TIME, then RAW's size
RING_PAGES = 256  # 1 MiB for a window's events: TRACED_ROUNDS round trips hold ~1,600 samples
TRACED_ROUNDS, TRACED_WINDOWS = 400, 5
WAKING, SWITCH, ENTER, EXIT = "waking", "switch", "enter", "exit"
# Sampled events: (subsystem, tracepoint, filter), {pid}/{prev}/{next}/{wakee} the pair's ids.
# A hop's system calls are a read and a write: their entries and exits split its time.
TIMED: dict[str, tuple[str, str, str]] = {
    WAKING: ("sched", "sched_waking", "{wakee}"),
    SWITCH: ("sched", "sched_switch", "{prev} || {next}"),
    "enter_read": ("syscalls", "sys_enter_read", "{pid}"),
    "exit_read": ("syscalls", "sys_exit_read", "{pid}"),
    "enter_write": ("syscalls", "sys_enter_write", "{pid}"),
    "exit_write": ("syscalls", "sys_exit_write", "{pid}"),
}
# The raw record starts with common_type; the fields read from it, by (event, field), are at the
# offsets each event's tracefs ``format`` gives (raw_layout reads them; these are x86-64's, for
# records parsed without tracefs, as in the unit tests).
COMMON_TYPE = struct.Struct("=H")
LAYOUT_FIELDS = {(SWITCH, "prev_pid"), (SWITCH, "next_pid"), (WAKING, "pid")}
DEFAULT_LAYOUT = {(SWITCH, "prev_pid"): 24, (SWITCH, "next_pid"): 56, (WAKING, "pid"): 24}
INT = struct.Struct("=i")
FORMAT_FIELD = re.compile(r"field:[^;]*?\b(\w+)(?:\[\d+\])?;\s*offset:(\d+);\s*size:(\d+);")


def raw_layout(root: Path | None = None) -> dict[tuple[str, str], int]:
    """Where the fields parse_samples reads lie in this kernel's raw records (each event's
    ``format`` in tracefs); TraceUnavailable when a format is missing or lacks a 4-byte field."""
    root = root or tracefs()
    if root is None:
        raise TraceUnavailable("tracefs is not mounted (/sys/kernel/tracing)")
    layout = {}
    for event, name in sorted(LAYOUT_FIELDS):
        subsystem, tracepoint, _ = TIMED[event]
        path = root / "events" / subsystem / tracepoint / "format"
        try:
            text = path.read_text()
        except OSError as err:
            raise TraceUnavailable(
                f"{subsystem}:{tracepoint}'s format is unreadable: {err}"
            ) from None
        found = {m[1]: (int(m[2]), int(m[3])) for m in FORMAT_FIELD.finditer(text)}
        if found.get(name, (0, 0))[1] != INT.size:
            raise TraceUnavailable(f"{subsystem}:{tracepoint} has no 4-byte field {name}")
        layout[event, name] = found[name][0]
    return layout


@dataclass(frozen=True)
class Event:
    """One sampled event: which, when (ns), on which task, and the task it names (the wakee,
    or the task switched to)."""

    kind: str
    time_ns: int
    tid: int
    other: int = 0


def timed_filters(tids: Sequence[int]) -> dict[str, str]:
    """Each sampled event's filter for the pair ``tids``."""

    def any_of(field_name: str) -> str:
        return " || ".join(f"{field_name} == {tid}" for tid in tids)

    words = {
        "pid": any_of("common_pid"),
        "prev": any_of("prev_pid"),
        "next": any_of("next_pid"),
        "wakee": any_of("pid"),
    }
    return {name: spec[2].format(**words) for name, spec in TIMED.items()}


def timed_ids() -> dict[str, int]:
    """The sampled events' tracepoint ids; TraceUnavailable naming the first one missing."""
    return {name: tracepoint_id(sub, tracepoint) for name, (sub, tracepoint, _) in TIMED.items()}


def parse_samples(
    data: bytes,
    kinds: Mapping[int, str],
    layout: Mapping[tuple[str, str], int] = DEFAULT_LAYOUT,
) -> tuple[list[Event], int]:
    """The ring buffer's records as Events in order (``kinds``: tracepoint id to event name;
    ``layout``: raw_layout's offsets), and how many the kernel lost (PERF_RECORD_LOST)."""
    prev_at, next_at = layout[SWITCH, "prev_pid"], layout[SWITCH, "next_pid"]
    wakee_at = layout[WAKING, "pid"]
    events: list[Event] = []
    lost, at = 0, 0
    while at + RECORD_HEADER.size <= len(data):
        kind, _, size = RECORD_HEADER.unpack_from(data, at)
        if size < RECORD_HEADER.size:
            break
        body = at + RECORD_HEADER.size
        if kind == PERF_RECORD_LOST:
            lost += struct.unpack_from("=QQ", data, body)[1]
        elif kind == PERF_RECORD_SAMPLE:
            _, tid, time_ns, raw_size = SAMPLE_FIXED.unpack_from(data, body)
            raw = data[body + SAMPLE_FIXED.size : body + SAMPLE_FIXED.size + raw_size]
            name = kinds.get(COMMON_TYPE.unpack_from(raw)[0]) if len(raw) >= 2 else None
            if name == SWITCH and len(raw) >= max(prev_at, next_at) + INT.size:
                prev, following = INT.unpack_from(raw, prev_at)[0], INT.unpack_from(raw, next_at)[0]
                events.append(Event(name, time_ns, prev, following))
            elif name == WAKING and len(raw) >= wakee_at + INT.size:
                events.append(Event(name, time_ns, tid, INT.unpack_from(raw, wakee_at)[0]))
            elif name is not None:
                events.append(Event(ENTER if name.startswith(ENTER) else EXIT, time_ns, tid))
        at += size
    return events, lost


@dataclass
class Hops:
    """Per hop of a ping-pong, in µs: the wake-up to run (the task woken until switched to);
    the switch path (from the task switched away from leaving user space for the last time,
    its blocking read's entry, or the exit of the write it is preempted on the way out of,
    to the partner's return from its read); and, for each turn of a task that blocked in a
    system call (switch to switch), its time in the kernel and in user space."""

    wake_to_run: list[float] = field(default_factory=list)
    switch_path: list[float] = field(default_factory=list)
    kernel: list[float] = field(default_factory=list)
    user: list[float] = field(default_factory=list)


def decompose(events: Sequence[Event], tids: Sequence[int]) -> Hops:
    """The pair's hops from its events on one CPU. A task that blocked in a system call is
    switched in inside it, so its turn is observed whole: kernel until that call returns,
    user until the next entry, and so on, to the switch away (after a last exit: preempted
    on its way out, the rest is kernel). A task switched out after an exit (wake-up
    preemption) resumes with no event to say when it reached user space: its turn is left
    out, and so is any turn next to another task's."""
    hops = Hops()
    pair = set(tids)
    running: int | None = None  # the pair's task on the CPU, whose turn is observed whole
    started = kernel = 0
    since: int | None = None  # when the running task last entered the kernel, if it is there
    last_exit: dict[int, int] = {}
    blocked: dict[int, bool] = {}  # each task: switched out inside a system call
    path: int | None = None  # the switch path's start, until the running task's first exit
    woken: dict[int, int] = {}
    for event in events:
        if event.kind == WAKING:
            woken[event.other] = event.time_ns
            continue
        if event.kind == SWITCH:
            prev, following, now = event.tid, event.other, event.time_ns
            inside = since is not None if prev == running else None
            start = since if since is not None else last_exit.get(prev)
            if prev == running and start is not None:
                kernel += now - start
                hops.kernel.append(kernel / 1e3)
                hops.user.append((now - started - kernel) / 1e3)
            if prev in pair:
                blocked[prev] = inside if inside is not None else since is not None
            between = prev in pair and following in pair and prev != following
            whole = between and blocked.get(following, False)
            running = following if whole else None
            path = start if whole else None
            started, kernel, since = now, 0, now
            if between and (wake := woken.pop(following, None)) is not None:
                hops.wake_to_run.append((now - wake) / 1e3)
            continue
        if event.kind == EXIT:
            last_exit[event.tid] = event.time_ns
        if event.tid != running:
            if event.tid in pair:  # the resumed task: only where it is in the kernel
                since = event.time_ns if event.kind == ENTER else None
            continue
        if event.kind == EXIT and since is not None:
            kernel += event.time_ns - since
            since = None
            if path is not None:
                hops.switch_path.append((event.time_ns - path) / 1e3)
                path = None
        elif event.kind == ENTER:
            since = event.time_ns
    return hops


@dataclass
class Ring:
    """The sampled events of one CPU, filtered to a pair, all written into one ring buffer."""

    ids: dict[str, int]
    layout: dict[tuple[str, str], int]
    fds: dict[str, int] = field(default_factory=dict)
    buffer: mmap.mmap | None = None

    def close(self) -> None:
        """Unmap the buffer and close every event."""
        if self.buffer is not None:
            self.buffer.close()
            self.buffer = None
        while self.fds:
            os.close(self.fds.popitem()[1])

    def stop_and_read(self) -> tuple[list[Event], int]:
        """Stop every event, then the buffer's records as Events and how many were lost (also
        those overwritten: more than the buffer holds)."""
        for fd in self.fds.values():
            fcntl.ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
        if self.buffer is None:
            return [], 0
        head, _, offset, size = MMAP_DATA.unpack_from(self.buffer, MMAP_DATA_AT)
        if head > size:  # the ring wrapped: what it overwrote is lost, say so
            return [], head - size
        data = self.buffer[offset : offset + head]
        kinds = {config: name for name, config in self.ids.items()}
        return parse_samples(data, kinds, self.layout)


def open_ring(cpu: int, tids: Sequence[int], ids: Mapping[str, int]) -> Ring:
    """Every event of ``ids`` sampled on ``cpu`` (each occurrence, with its task and time),
    filtered to ``tids``, into one ring buffer; TraceUnavailable (one line) when refused."""
    ring = Ring(dict(ids), raw_layout())
    leader = -1
    texts = timed_filters(tids)
    sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW
    try:
        for name, config in ids.items():
            attr = PerfEventAttr(
                type=PERF_TYPE_TRACEPOINT,
                size=ctypes.sizeof(PerfEventAttr),
                config=config,
                sample_period=1,
                sample_type=sample_type,
            )
            fd = ring.fds[name] = perf_event_open(attr, pid=-1, cpu=cpu)
            set_filter(fd, texts[name])
            if ring.buffer is None:
                length = (1 + RING_PAGES) * mmap.PAGESIZE
                ring.buffer = mmap.mmap(
                    fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
                )
                leader = fd
            else:
                fcntl.ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, leader)
    except OSError as err:
        ring.close()
        raise TraceUnavailable(_why(err)) from None
    except BaseException:
        ring.close()
        raise
    return ring


@dataclass
class Traced:
    """One pair's traced windows: per window the median of each part of a hop (µs, as
    Hops), the traced round trip (µs), the hops decomposed and the events the kernel lost."""

    wake_to_run: list[float] = field(default_factory=list)
    switch_path: list[float] = field(default_factory=list)
    kernel: list[float] = field(default_factory=list)
    user: list[float] = field(default_factory=list)
    round_us: list[float] = field(default_factory=list)
    hops: int = 0
    woken: int = 0
    lost: int = 0

    def extend(self, other: Traced) -> None:
        """Add another block's windows to these."""
        for name in ("wake_to_run", "switch_path", "kernel", "user", "round_us"):
            getattr(self, name).extend(getattr(other, name))
        self.hops += other.hops
        self.woken += other.woken
        self.lost += other.lost

    def kernel_share(self) -> list[float]:
        """Per window, the kernel's share of a hop: kernel / (kernel + user)."""
        return [k / (k + u) for k, u in zip(self.kernel, self.user, strict=True) if k + u > 0]


def trace_windows(
    timing: Timing,
    cpu: int,
    ids: Mapping[str, int],
    rounds: int = TRACED_ROUNDS,
    windows: int = TRACED_WINDOWS,
) -> Traced:
    """``windows`` times: ``rounds`` round trips with every event of the pair sampled, then
    decomposed hop by hop; a window whose events were lost, or without a whole hop of every
    kind, is left out (its loss counted)."""
    traced = Traced()
    for _ in range(windows):
        with contextlib.closing(open_ring(cpu, timing.tasks, ids)) as ring:
            elapsed_ns = timing.rounds(rounds)
            events, lost = ring.stop_and_read()
        hops = decompose(events, timing.tasks)
        traced.lost += lost
        if lost or not (hops.wake_to_run and hops.switch_path and hops.kernel):
            continue
        traced.round_us.append(elapsed_ns / 1e3 / rounds)
        for name in ("wake_to_run", "switch_path", "kernel", "user"):
            getattr(traced, name).append(statistics.median(getattr(hops, name)))
        traced.hops += len(hops.kernel)
        traced.woken += len(hops.wake_to_run)
    return traced
