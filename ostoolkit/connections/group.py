"""The one reader of a server's process group (the processes given and all their descendants),
for the built-in, DSN and --real servers alike: tasks and memory, and around a load the open
files, context switches and CPU time."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import astuple, dataclass, replace

import psutil

from ostoolkit.procfs import read_task_run_ns, read_task_switches

# PSS is counted in pages, and the server's own pages come and go between two readings: a
# difference below one page per connection cannot be told from that noise (the pooler's
# cost per client is about that), so the renderer shows "< 1 page" instead of the number.
PAGE_BYTES = float(os.sysconf("SC_PAGE_SIZE"))


@dataclass(frozen=True)
class ServerState:
    """A server group at one moment: tasks, memory (bytes), open files, switches, CPU time."""

    processes: int = 0
    threads: int = 0
    uss: int = 0
    pss: int = 0
    rss: int = 0
    fds: int = 0
    switches: int = 0
    cpu_s: float = 0.0

    def __add__(self, other: ServerState) -> ServerState:
        return ServerState(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def _read_process(proc: psutil.Process, memory: bool, counters: bool) -> ServerState:
    """One process of the group; psutil.NoSuchProcess once it is gone."""
    with proc.oneshot():
        one = ServerState(processes=1, threads=proc.num_threads())
        if memory:
            info = proc.memory_full_info()
            one = replace(one, uss=info.uss, pss=info.pss, rss=info.rss)
        if counters:
            # Each live thread's exact run time (schedstat), else whole ticks, plus the reaped
            # children's: a backend that exits between two readings counts once.
            times = proc.cpu_times()
            run_ns = read_task_run_ns(proc.pid)
            own = times.user + times.system if run_ns is None else run_ns / 1e9
            one = replace(
                one,
                fds=proc.num_fds(),
                switches=read_task_switches(proc.pid),
                cpu_s=times.children_user + times.children_system + own,
            )
    return one


def read_group(pids: Sequence[int], memory: bool = True, counters: bool = False) -> ServerState:
    """Sum each pid's process and its descendants: memory (it walks every page table) if
    ``memory``, open files, switches and CPU time if ``counters``. A given process gone raises
    NoSuchProcess, a descendant is left out; AccessDenied (another user's smaps) propagates."""
    procs: list[psutil.Process] = []
    for pid in pids:
        top = psutil.Process(pid)
        procs += [top, *top.children(recursive=True)]
    total = ServerState()
    for proc in procs:
        try:
            total += _read_process(proc, memory, counters)
        except psutil.NoSuchProcess:
            if proc.pid in pids:
                raise
    return total
