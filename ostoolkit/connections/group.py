"""The one reader of a server's process group (the processes given and all their descendants),
for the built-in, DSN and --real servers alike: tasks and memory, and around a load the open
files, context switches and CPU time; and the shared shape of their figures and table rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass, replace
from typing import Any

import psutil

from ostoolkit.procfs import read_task_run_ns, read_task_switches
from ostoolkit.report import Result, make_result

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


def figure_maker(key: str, label: str, **defaults: Any) -> Callable[..., Result]:
    """``make_result`` for one server's figures: id ``<key>.<name>``, label ``<label>: <what>``,
    ``defaults`` its keywords unless a call gives its own."""

    def figure(name: str, what: str, unit: str, samples: Sequence[float], **kw: Any) -> Result:
        return make_result(f"{key}.{name}", f"{label}: {what}", unit, samples, **defaults | kw)

    return figure


def table_row(columns: Iterable[tuple[str, str, str]], results: Iterable[Result]) -> dict[str, Any]:
    """A summary table's row from one server's results: each (name, unit, figure) column the
    median of the result whose id ends in ``.<figure>`` (None where none does)."""
    medians = {r.id.rsplit(".", 1)[1]: r.median for r in results}
    return {name: medians.get(figure) for name, _, figure in columns}
