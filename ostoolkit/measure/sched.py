"""Process states and time slices: what Linux reports while real children change state.

The article describes a process as running (on the CPU), ready (its time slice ended, waiting
for the scheduler), waiting (blocked on I/O) or killed, and says time slices last milliseconds.

``observe_states`` walks real children through those states and records, with timestamps, what
the kernel says: psutil's status and the state letter of /proc/PID/stat (proc(5)). Linux shows
``R`` for running and ready alike; only the run-queue wait in /proc/PID/schedstat
(Documentation/scheduler/sched-stats.rst) tells them apart. It also shows two states the
article does not name: ``T`` (stopped by a signal) and ``Z`` (exited, not yet reaped).

``measure_timeslice`` pins two identical CPU-bound children to one CPU, so they must take
turns, and reads their schedstat counters around equal windows: run time / slices run is the
average slice, run-queue wait / slices is how long each waited, ready, per slice. Run time and
wait include slices cut by a window's edges; over many slices that averages out.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import select
import signal
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import psutil

from ostoolkit.children import Children
from ostoolkit.claims import CLAIMS, judge_timeslice
from ostoolkit.errors import OstoolkitError
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.report import Measurement, Result, make_result

Progress = Callable[[int], None]

# The steps observe_states reports to its progress callback: running, ready, waiting,
# stopped, zombie, killed.
STATES_STEPS = 6
# The byte a child writes once it is pinned and running its task.
READY = b"r"
WAKE = b"w"
# Bounds on waits for a child to start or change state: generous, since a loaded host is slow.
START_TIMEOUT_S = 5.0
STATE_TIMEOUT_S = 5.0
# Interval between polls of a child's state (psutil's own tests poll the same way).
POLL_S = 0.002
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
_NO_SCHEDSTAT = (
    "/proc/PID/schedstat is missing or off on this kernel (CONFIG_SCHED_INFO, enabled by "
    "CONFIG_SCHEDSTATS or CONFIG_TASK_DELAY_ACCT)"
)


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


@dataclass(frozen=True)
class TaskSample:
    """One child's counters at one instant: schedstat (None where missing) and psutil's."""

    schedstat: SchedStat | None
    involuntary: int


@dataclass(frozen=True)
class Snapshot:
    """Both children's counters at one instant, with the monotonic time they were read."""

    t_s: float
    tasks: tuple[TaskSample, ...]


@dataclass(frozen=True)
class WindowFigures:
    """What one window between two snapshots shows; None where schedstat cannot say."""

    elapsed_s: float
    slice_ms: float | None
    wait_per_slice_ms: float | None
    involuntary_per_s: float
    busy_share: float | None
    run_shares: tuple[float, ...] | None


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


def window_figures(before: Snapshot, after: Snapshot) -> WindowFigures:
    """Turn two snapshots of both children into one window's slice, wait and switch rate."""
    elapsed = after.t_s - before.t_s
    involuntary = sum(
        b.involuntary - a.involuntary for a, b in zip(before.tasks, after.tasks, strict=True)
    )
    per_s = involuntary / elapsed if elapsed > 0 else 0.0
    deltas = [
        b.schedstat - a.schedstat
        for a, b in zip(before.tasks, after.tasks, strict=True)
        if a.schedstat is not None and b.schedstat is not None
    ]
    if not deltas or len(deltas) != len(before.tasks):
        return WindowFigures(elapsed, None, None, per_s, None, None)
    total = sum(deltas, SchedStat(0, 0, 0))
    busy = total.run_ns / 1e9 / elapsed if elapsed > 0 else None
    shares = tuple(d.run_ns / total.run_ns for d in deltas) if total.run_ns > 0 else None
    if total.slices <= 0:
        return WindowFigures(elapsed, None, None, per_s, busy, shares)
    return WindowFigures(
        elapsed,
        total.run_ns / total.slices / NS_PER_MS,
        total.wait_ns / total.slices / NS_PER_MS,
        per_s,
        busy,
        shares,
    )


def read_state_letter(pid: int) -> str:
    """The state letter of /proc/PID/stat, or "-" once the process is gone."""
    try:
        return parse_state_letter(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return "-"


def read_schedstat(pid: int) -> SchedStat | None:
    """The schedstat counters of ``pid``, or None if unreadable (no CONFIG_SCHED_INFO, gone)."""
    try:
        return parse_schedstat(Path(f"/proc/{pid}/schedstat").read_text())
    except (OSError, ValueError):
        return None


def schedstat_available() -> bool:
    """Tell whether /proc/PID/schedstat exists and counts slices (CONFIG_SCHED_INFO, on).

    A kernel with the file but sched_info off prints "0 0 0"; this process has surely run at
    least one slice, so a zero count means the counters are off.
    """
    own = read_schedstat(os.getpid())
    return own is not None and own.slices > 0


def psutil_status(pid: int) -> str:
    """psutil's status of ``pid`` ("running", "sleeping", ...), or "gone" once reaped."""
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return "gone"


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


def choose_cpu(cpu: int | None, allowed: Sequence[int]) -> int:
    """Pick the children's CPU: ``cpu`` if this process may use it, else the last allowed one."""
    if cpu is None:
        return allowed[-1]
    if cpu not in allowed:
        raise OstoolkitError(
            f"CPU {cpu} is not available to this process (cpuset/affinity); "
            f"choose one of {list(allowed)}"
        )
    return cpu


@contextlib.contextmanager
def _parent_off(cpu: int) -> Iterator[list[str]]:
    """Keep the calling thread off ``cpu`` so it does not compete there; restore it after."""
    before = os.sched_getaffinity(0)
    others = before - {cpu}
    warnings: list[str] = []
    if others:
        os.sched_setaffinity(0, others)
    else:
        warnings.append(
            f"only CPU {cpu} is usable: ostoolkit itself runs there too and briefly competes "
            "with the children whenever it reads their counters"
        )
    try:
        yield warnings
    finally:
        os.sched_setaffinity(0, before)


def _spin() -> None:
    """Burn CPU forever: the children's CPU-bound work, ended only by SIGKILL."""
    count = 0
    while True:
        count += 1


def _announce_then(fd: int, target: Callable[[], object]) -> None:
    """In the child: say it is pinned and running, then run ``target``."""
    os.write(fd, READY)
    target()


def _fork_announcing(
    children: Children, stack: contextlib.ExitStack, target: Callable[[], object], cpu: int
) -> tuple[int, int]:
    """Fork a pinned child, wait until it says it runs; return its pid and liveness fd.

    Only the child keeps the pipe's write end, so the read end reaches end-of-file when it
    exits: waiting on it is both a bounded wait and a check that the child still lives.
    """
    read_end, write_end = os.pipe()
    stack.callback(os.close, read_end)
    try:
        pid = children.fork(lambda: _announce_then(write_end, target), cpu=cpu)
    finally:
        os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], START_TIMEOUT_S)
    if not ready or os.read(read_end, 1) != READY:
        raise OstoolkitError(f"child {pid} pinned to CPU {cpu} did not start; see stderr")
    return pid, read_end


def _wait_status(pid: int, wanted: str) -> None:
    """Poll psutil until ``pid`` shows status ``wanted``, under a deadline."""
    deadline = time.monotonic() + STATE_TIMEOUT_S
    while (status := psutil_status(pid)) != wanted:
        if time.monotonic() > deadline:
            raise OstoolkitError(
                f"child {pid} did not become {wanted} within {STATE_TIMEOUT_S:.0f} s "
                f"(it is {status})"
            )
        time.sleep(POLL_S)


def _read_wchan(pid: int) -> str | None:
    """The kernel function a sleeping task waits in (proc(5) wchan), where shown."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text().strip()
    except OSError:
        return None
    return wchan if wchan not in ("", "0") else None


class _StateWalk:
    """The children of observe_states and the timeline of what the kernel said about them."""

    def __init__(
        self,
        cpu: int,
        children: Children,
        stack: contextlib.ExitStack,
        progress: Progress | None,
    ) -> None:
        self.cpu = cpu
        self.children = children
        self.stack = stack
        self.progress = progress
        self.schedstat = schedstat_available()
        self.timeline: list[dict[str, Any]] = []
        self.t0 = time.perf_counter()
        self.busy = 0
        self.blocked = 0
        self.wake_fd = -1

    def _observe(self, article_state: str, pid: int, detail: str) -> dict[str, Any]:
        """Read psutil's status and the /proc state letter of ``pid`` now."""
        return {
            "t_ms": round((time.perf_counter() - self.t0) * 1e3, 3),
            "article_state": article_state,
            "pid": pid,
            "psutil_status": psutil_status(pid),
            "proc_state": read_state_letter(pid),
            "detail": detail,
        }

    def _record(self, entry: dict[str, Any]) -> None:
        """Add one observation to the timeline and report the step done."""
        self.timeline.append(entry)
        if self.progress:
            self.progress(1)

    def running(self) -> None:
        """A busy child pinned to the CPU: on it, R."""
        self.busy, _ = _fork_announcing(self.children, self.stack, _spin, self.cpu)
        _wait_status(self.busy, "running")
        detail = f"busy loop pinned to CPU {self.cpu}"
        stat = read_schedstat(self.busy) if self.schedstat else None
        if stat is not None:
            detail += f"; {stat.run_ns / NS_PER_MS:.1f} ms on the CPU so far (schedstat)"
        self._record(self._observe("running", self.busy, detail))

    def ready(self) -> None:
        """A second busy child on the same CPU: both R, each waiting while the other runs."""
        second, _ = _fork_announcing(self.children, self.stack, _spin, self.cpu)
        _wait_status(second, "running")
        pids = (self.busy, second)
        start = time.perf_counter()
        grew = self._wait_both_waited(pids)
        entry = self._observe("ready", second, "")
        elapsed_ms = (time.perf_counter() - start) * 1e3
        entry["detail"] = (
            f"{pids[0]} and {pids[1]} both busy on CPU {self.cpu} and both R, but only one "
            f"runs at a time; in {elapsed_ms:.1f} ms {grew}, so each was ready while the other "
            f"ran; {second} then killed"
        )
        os.kill(second, signal.SIGKILL)
        self.children.reap(second)
        self._record(entry)

    def _wait_both_waited(self, pids: tuple[int, int]) -> str:
        """Poll until both children have waited on the run queue; say how much, in words."""
        deadline = time.monotonic() + STATE_TIMEOUT_S
        procs = [psutil.Process(pid) for pid in pids]
        if self.schedstat:
            stat_before = [read_schedstat(pid) or SchedStat(0, 0, 0) for pid in pids]
        invol_before = [p.num_ctx_switches().involuntary for p in procs]
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            if self.schedstat:
                now = [read_schedstat(pid) or SchedStat(0, 0, 0) for pid in pids]
                waits = [(b - a).wait_ns for a, b in zip(stat_before, now, strict=True)]
                if all(w > 0 for w in waits):
                    shown = " and ".join(f"{w / NS_PER_MS:.1f} ms" for w in waits)
                    return f"their run-queue waits grew by {shown} (schedstat)"
            else:
                invol = [p.num_ctx_switches().involuntary for p in procs]
                grown = [b - a for a, b in zip(invol_before, invol, strict=True)]
                if all(g > 0 for g in grown):
                    shown = " and ".join(str(g) for g in grown)
                    return f"their involuntary switches grew by {shown} (psutil)"
        raise OstoolkitError(
            f"children {pids} on CPU {self.cpu} did not take turns within "
            f"{STATE_TIMEOUT_S:.0f} s; is the host overloaded?"
        )

    def waiting(self) -> None:
        """A child blocked reading an empty pipe: S, the article's waiting."""
        wake_r, wake_w = os.pipe()
        self.stack.callback(os.close, wake_w)
        self.wake_fd = wake_w
        try:
            self.blocked, _ = _fork_announcing(
                self.children, self.stack, lambda: os.read(wake_r, 1), self.cpu
            )
        finally:
            os.close(wake_r)
        _wait_status(self.blocked, "sleeping")
        wchan = _read_wchan(self.blocked)
        where = f" (wchan {wchan})" if wchan else ""
        detail = f"blocked in read(2) on an empty pipe{where}: an interruptible sleep"
        self._record(self._observe("waiting", self.blocked, detail))

    def stopped(self) -> None:
        """SIGSTOP the blocked child: T, a state the article does not name; then SIGCONT."""
        os.kill(self.blocked, signal.SIGSTOP)
        _wait_status(self.blocked, "stopped")
        entry = self._observe(
            "stopped", self.blocked, "SIGSTOP: stopped by a signal, not one of the article's states"
        )
        os.kill(self.blocked, signal.SIGCONT)
        _wait_status(self.blocked, "sleeping")
        entry["detail"] += "; after SIGCONT it sleeps on its pipe again"
        self._record(entry)

    def zombie(self) -> None:
        """Wake the blocked child so it exits; until reaped it is a zombie, Z."""
        os.write(self.wake_fd, WAKE)
        _wait_status(self.blocked, "zombie")
        detail = "read its byte and exited; not yet reaped, its exit status waits for waitpid(2)"
        self._record(self._observe("zombie", self.blocked, detail))

    def killed(self) -> None:
        """SIGKILL the busy child and reap it (and the zombie): gone from /proc."""
        os.kill(self.busy, signal.SIGKILL)
        code = self.children.reap(self.busy)
        zombie_code = self.children.reap(self.blocked)
        detail = (
            f"SIGKILL, then waitpid(2) reaped it (exit code {code}); the zombie "
            f"{self.blocked} reaped too (exit code {zombie_code})"
        )
        self._record(self._observe("killed", self.busy, detail))


def observe_states(cpu: int | None = None, progress: Progress | None = None) -> Measurement:
    """Walk real children through the article's states and record what Linux reports.

    ``data["timeline"]`` lists one observation per state, in order: running, ready, waiting,
    stopped, zombie, killed. Every child is pinned to ``cpu`` and reaped, also on errors.
    """
    allowed = sorted(os.sched_getaffinity(0))
    cpu = choose_cpu(cpu, allowed)
    with contextlib.ExitStack() as stack:
        warnings = stack.enter_context(_parent_off(cpu))
        children = stack.enter_context(Children())
        walk = _StateWalk(cpu, children, stack, progress)
        for step in (walk.running, walk.ready, walk.waiting, walk.stopped, walk.zombie):
            step()
        walk.killed()
    if not walk.schedstat:
        warnings.append(_NO_SCHEDSTAT + "; running and ready were told apart by psutil only")
    findings = (
        "Linux reports R for the task on the CPU and for the one waiting its turn alike (the "
        "article's running and ready); only the run-queue wait in /proc/PID/schedstat tells "
        "them apart",
        "a task blocked on a read is S, the article's waiting (disk I/O shows D); T (stopped "
        "by a signal) and Z (exited, not yet reaped) are Linux states the article does not "
        "name; a killed and reaped task is gone from /proc",
    )
    return Measurement((), findings, tuple(warnings), {"cpu": cpu, "timeline": walk.timeline})


def _snapshot(procs: Sequence[psutil.Process], schedstat: bool) -> Snapshot:
    """Read both children's counters now."""
    tasks = tuple(
        TaskSample(read_schedstat(p.pid) if schedstat else None, p.num_ctx_switches().involuntary)
        for p in procs
    )
    return Snapshot(time.perf_counter(), tasks)


def _wait_window(live_fds: Sequence[int], window_s: float) -> None:
    """Block for one window; a child's liveness pipe turning readable means it died."""
    died, _, _ = select.select(list(live_fds), [], [], window_s)
    if died:
        raise OstoolkitError("a CPU-bound child exited during the measurement; see stderr")


def _sample_windows(
    cpu: int, duration_s: float, windows: int, schedstat: bool, progress: Progress | None
) -> tuple[list[WindowFigures], list[str]]:
    """Run two busy children on ``cpu`` and read their counters around each window."""
    with contextlib.ExitStack() as stack:
        warnings = stack.enter_context(_parent_off(cpu))
        children = stack.enter_context(Children())
        started = [_fork_announcing(children, stack, _spin, cpu) for _ in range(2)]
        procs = [psutil.Process(pid) for pid, _ in started]
        live_fds = [fd for _, fd in started]
        snapshots = [_snapshot(procs, schedstat)]
        for _ in range(windows):
            _wait_window(live_fds, duration_s / windows)
            snapshots.append(_snapshot(procs, schedstat))
            if progress:
                progress(1)
    return [window_figures(a, b) for a, b in pairwise(snapshots)], warnings


def timeslice_steps(windows: int) -> int:
    """How many progress steps ``measure_timeslice`` will report, for a progress bar."""
    return windows


def measure_timeslice(
    duration_s: float = 1.0,
    windows: int = 10,
    cpu: int | None = None,
    progress: Progress | None = None,
) -> Measurement:
    """Measure the time slices two CPU-bound children get when they share one CPU.

    Results: ``sched.timeslice`` (average slice, ms), ``sched.runqueue_wait`` (run-queue
    wait per slice, ms) and ``sched.involuntary_per_s`` (preemptions per second, both
    children); one sample per window. An interference meter on the children's CPU covers
    all windows, from before the children start until they are reaped: a third task there
    would take turns with them and change every figure.
    """
    if duration_s <= 0 or windows < 1:
        raise OstoolkitError(
            f"duration_s must be > 0 and windows >= 1 (got {duration_s} and {windows})"
        )
    allowed = sorted(os.sched_getaffinity(0))
    cpu = choose_cpu(cpu, allowed)
    schedstat = schedstat_available()
    with Meter({cpu}) as meter:
        figures, warnings = _sample_windows(cpu, duration_s, windows, schedstat, progress)
    interference = meter.result
    extra: dict[str, Any] = {
        "cpu": cpu,
        "windows": windows,
        "window_ms": round(duration_s / windows * 1e3, 3),
        **scheduler_facts(),
    }
    results: list[Result] = []
    findings: list[str] = []
    if not schedstat:
        warnings.append(_NO_SCHEDSTAT + "; only involuntary switches (psutil) are reported")
    else:
        slice_results, notes = _slice_results(figures, extra, interference)
        results.extend(slice_results)
        warnings.extend(notes)
    invol = make_result(
        "sched.involuntary_per_s",
        "involuntary switches per second (both tasks)",
        "per_s",
        [f.involuntary_per_s for f in figures],
        interference=interference,
        extra={"cpu": cpu, "windows": windows},
    )
    if invol.median > 0:
        invol = replace(
            invol, extra={**invol.extra, "slice_estimate_ms": round(1e3 / invol.median, 3)}
        )
    results.append(invol)
    findings.extend(_timeslice_findings(results, cpu))
    return Measurement(tuple(results), tuple(findings), tuple(warnings))


def _slice_results(
    figures: Sequence[WindowFigures], extra: dict[str, Any], interference: Interference
) -> tuple[list[Result], list[str]]:
    """The slice and run-queue wait results from schedstat windows, and what to warn about."""
    counted = [f for f in figures if f.slice_ms is not None and f.wait_per_slice_ms is not None]
    warnings: list[str] = []
    if len(counted) < len(figures):
        warnings.append(
            f"{len(figures) - len(counted)} of {len(figures)} windows saw no new slice: a "
            f"slice lasted longer than a {extra['window_ms']} ms window"
        )
    if not counted:
        return [], [*warnings, "no slice was counted: measure longer or with fewer windows"]
    busy = [f.busy_share for f in counted if f.busy_share is not None]
    shares = [f.run_shares for f in counted if f.run_shares is not None]
    slice_extra = dict(extra)
    if busy:
        slice_extra["cpu_busy_share"] = round(statistics.median(busy), 3)
    if shares:
        slice_extra["run_shares"] = [
            round(sum(s[i] for s in shares) / len(shares), 3) for i in range(len(shares[0]))
        ]
    timeslice = make_result(
        "sched.timeslice",
        "time slice, two CPU-bound tasks on one CPU",
        "ms",
        [f.slice_ms for f in counted if f.slice_ms is not None],
        interference=interference,
        extra=slice_extra,
    )
    timeslice = replace(
        timeslice, claim=CLAIMS["timeslice"].text, verdict=judge_timeslice(timeslice.median)
    )
    wait = make_result(
        "sched.runqueue_wait",
        "run-queue wait per slice (ready)",
        "ms",
        [f.wait_per_slice_ms for f in counted if f.wait_per_slice_ms is not None],
        interference=interference,
        extra={"cpu": extra["cpu"], "windows": extra["windows"]},
    )
    for result in (timeslice, wait):
        if result.status != "ok":
            warnings.append(f"{result.label} is {result.status}: {'; '.join(result.notes)}")
    return [timeslice, wait], warnings


def _timeslice_findings(results: Sequence[Result], cpu: int) -> list[str]:
    """Explain in words what the slices and waits show."""
    by_id = {r.id: r for r in results}
    timeslice, wait = by_id.get("sched.timeslice"), by_id.get("sched.runqueue_wait")
    invol = by_id["sched.involuntary_per_s"]
    if timeslice is None or wait is None:
        return [
            f"two CPU-bound tasks on CPU {cpu} were preempted {invol.median:.0f} times a "
            "second between them: they took turns on the CPU"
        ]
    findings = [
        f"two CPU-bound tasks on CPU {cpu} took turns in slices of {timeslice.median:.1f} ms "
        f"on average; per slice each waited {wait.median:.1f} ms on the run queue, ready (in "
        f"the article's words) while the other ran; {invol.median:.0f} involuntary switches "
        "a second"
    ]
    facts = timeslice.extra
    if "tick_ms" in facts:
        findings.append(
            f"the median slice is {timeslice.median / facts['tick_ms']:.1f} scheduler ticks "
            f"(CONFIG_HZ={facts['config_hz']}, a tick every {facts['tick_ms']} ms): the fair "
            f"scheduler ({facts['scheduler']}) checks at each tick whether a slice is used up"
        )
    if "base_slice_ms" in facts:
        findings.append(
            f"the kernel's base slice is {facts['base_slice_ms']} ms ({facts['base_slice_source']})"
        )
    return findings
