"""Process states: what psutil and /proc/PID/stat report while real children go through the
article's states (running, ready, waiting, killed) and two it does not name (T and Z). The
method: docs/method.md, "states".
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from ostoolkit.children import Children
from ostoolkit.errors import OstoolkitError
from ostoolkit.measure.placement import choose_cpu
from ostoolkit.measure.sched import fork_announcing, parent_off, spin
from ostoolkit.procfs import (
    NO_SCHEDSTAT,
    NS_PER_MS,
    SchedStat,
    read_schedstat,
    read_state_letter,
    read_wchan,
    schedstat_available,
)
from ostoolkit.report import Measurement, Progress

STATES_STEPS = 6  # observe_states's progress steps: one per state
WAKE = b"w"  # the byte that wakes the blocked child, so it exits
STATE_TIMEOUT_S = 5.0  # bound on a wait for a state change: generous, a loaded host is slow
POLL_S = 0.002  # between polls of a child's state, as psutil's own tests poll


def psutil_status(pid: int) -> str:
    """psutil's status of ``pid`` ("running", "sleeping", ...), or "gone" once reaped."""
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return "gone"


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


@dataclass
class _StateWalk:
    """The children of observe_states and the timeline of what the kernel said about them."""

    cpu: int
    children: Children
    stack: contextlib.ExitStack
    progress: Progress | None
    schedstat: bool = field(default_factory=schedstat_available)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)
    busy: int = 0
    blocked: int = 0
    wake_fd: int = -1

    def _observe(self, article_state: str, pid: int, detail: str) -> dict[str, Any]:
        """Add psutil's status and the /proc state letter of ``pid`` now to the timeline."""
        entry = {
            "t_ms": round((time.perf_counter() - self.t0) * 1e3, 3),
            "article_state": article_state,
            "pid": pid,
            "psutil_status": psutil_status(pid),
            "proc_state": read_state_letter(pid),
            "detail": detail,
        }
        self.timeline.append(entry)
        if self.progress:
            self.progress(1)
        return entry

    def running(self) -> None:
        """A busy child pinned to the CPU: on it, R."""
        self.busy, _ = fork_announcing(self.children, self.stack, spin, self.cpu)
        _wait_status(self.busy, "running")
        detail = f"busy loop pinned to CPU {self.cpu}"
        stat = read_schedstat(self.busy) if self.schedstat else None
        if stat is not None:
            detail += f"; {stat.run_ns / NS_PER_MS:.1f} ms on the CPU so far (schedstat)"
        self._observe("running", self.busy, detail)

    def ready(self) -> None:
        """A second busy child on the same CPU: both R, each waiting while the other runs."""
        second, _ = fork_announcing(self.children, self.stack, spin, self.cpu)
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
        self.children.end(second)

    def _wait_both_waited(self, pids: tuple[int, int]) -> str:
        """Poll until both children have waited on the run queue; say how much, in words."""
        deadline = time.monotonic() + STATE_TIMEOUT_S
        procs = [psutil.Process(pid) for pid in pids]

        def counts() -> list[int]:
            """Run-queue waits (schedstat, ns), or else involuntary switches (psutil)."""
            if self.schedstat:
                return [(read_schedstat(pid) or SchedStat(0, 0, 0)).wait_ns for pid in pids]
            return [p.num_ctx_switches().involuntary for p in procs]

        before = counts()
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            grown = [b - a for a, b in zip(before, counts(), strict=True)]
            if not all(g > 0 for g in grown):
                continue
            if self.schedstat:
                shown = " and ".join(f"{g / NS_PER_MS:.1f} ms" for g in grown)
                return f"their run-queue waits grew by {shown} (schedstat)"
            return f"their involuntary switches grew by {' and '.join(map(str, grown))} (psutil)"
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
            self.blocked, _ = fork_announcing(
                self.children, self.stack, lambda: os.read(wake_r, 1), self.cpu
            )
        finally:
            os.close(wake_r)
        _wait_status(self.blocked, "sleeping")
        wchan = read_wchan(self.blocked)
        where = f" (wchan {wchan})" if wchan else ""
        detail = f"blocked in read(2) on an empty pipe{where}: an interruptible sleep"
        self._observe("waiting", self.blocked, detail)

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

    def zombie(self) -> None:
        """Wake the blocked child so it exits; until reaped it is a zombie, Z."""
        os.write(self.wake_fd, WAKE)
        _wait_status(self.blocked, "zombie")
        detail = "read its byte and exited; not yet reaped, its exit status waits for waitpid(2)"
        self._observe("zombie", self.blocked, detail)

    def killed(self) -> None:
        """SIGKILL the busy child and reap it (and the zombie): gone from /proc."""
        os.kill(self.busy, signal.SIGKILL)
        code = self.children.reap(self.busy)
        zombie_code = self.children.reap(self.blocked)
        detail = (
            f"SIGKILL, then waitpid(2) reaped it (exit code {code}); the zombie "
            f"{self.blocked} reaped too (exit code {zombie_code})"
        )
        self._observe("killed", self.busy, detail)


def observe_states(cpu: int | None = None, progress: Progress | None = None) -> Measurement:
    """Walk real children, pinned to ``cpu``, through the article's states and record what Linux
    reports: ``data["timeline"]``, one observation per state (``STATES_STEPS``) in order."""
    cpu = choose_cpu(cpu)  # --cpu's documented default: the last allowed CPU
    with contextlib.ExitStack() as stack:
        warnings = stack.enter_context(parent_off(cpu))
        children = stack.enter_context(Children())
        walk = _StateWalk(cpu, children, stack, progress)
        for step in (walk.running, walk.ready, walk.waiting, walk.stopped, walk.zombie):
            step()
        walk.killed()
    if not walk.schedstat:
        warnings.append(NO_SCHEDSTAT + "; running and ready were told apart by psutil only")
    findings = (
        "Linux reports R for the task on the CPU and for the one waiting its turn alike (the "
        "article's running and ready); only the run-queue wait in /proc/PID/schedstat tells "
        "them apart",
        "a task blocked on a read is S, the article's waiting (disk I/O shows D); T (stopped "
        "by a signal) and Z (exited, not yet reaped) are Linux states the article does not "
        "name; a killed and reaped task is gone from /proc",
    )
    return Measurement((), findings, tuple(warnings), {"cpu": cpu, "timeline": walk.timeline})
