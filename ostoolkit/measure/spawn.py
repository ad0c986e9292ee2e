"""Creation cost: one fork, fork+execve, posix_spawn, subprocess.run, thread or multiprocessing
start, each complete operation timed on its own, beside a thread start + join (the cheapest
task). The operations: measure/creation.py, mpstart.py; the method: docs/method.md.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from ostoolkit.budget import check_task_budget
from ostoolkit.children import Children
from ostoolkit.errors import InvalidRequest, LimitExceeded
from ostoolkit.measure.creation import (
    WARMUP,
    Operation,
    forked,
    memory_extra,
    noop,
    posix_spawned,
    subprocess_run,
    thread_start_join,
    time_operations,
    touched_buffer,
    warm_up,
)
from ostoolkit.measure.interference import Meter
from ostoolkit.measure.mpstart import FORKSERVER_PRELOAD, MP_START_METHODS, launcher_extra, mp_op
from ostoolkit.mpspawn import main_script, spawn_context, stopping_mp_helpers
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.scratch import run_tempdir
from ostoolkit.units import format_kib, format_times, format_us

# Each method's result label, and its name in findings ("a fork+exit costs 14× a thread start").
NAMES = {
    "fork":          ("fork + _exit + waitpid",                     "a fork+exit"),
    "fork_exec":     ("fork + execve(true) + waitpid",              "fork+execve"),
    "posix_spawn":   ("posix_spawn(true) + waitpid",                "posix_spawn"),
    "subprocess":    ("subprocess.run([true])",                     "subprocess.run"),
    "thread":        ("thread start + join",                        "a thread start"),
    "mp_fork":       ("multiprocessing 'fork': start + join",       "multiprocessing 'fork'"),
    "mp_forkserver": ("multiprocessing 'forkserver': start + join", "multiprocessing 'forkserver'"),
    "mp_spawn":      ("multiprocessing 'spawn': start + join",      "multiprocessing 'spawn'"),
}  # fmt: skip
METHODS = tuple(NAMES)
EXEC_METHODS = ("fork_exec", "posix_spawn", "subprocess")  # those that run ``true``
# Methods whose new process is our own child, so getrusage(RUSAGE_CHILDREN) sees its faults
# once it is reaped; a forkserver's workers are the server's children, a thread is no child.
OWN_CHILD_METHODS = ("fork", "fork_exec", "posix_spawn", "subprocess", "mp_fork", "mp_spawn")
# The largest --parent-rss, in MiB: 16 GiB already shows the trend on any host that has it.
MAX_PARENT_RSS_MB = 16384
# Above this factor between the largest and the smallest parent, fork cost is said to grow.
GROWTH_FACTOR = 1.25
# A method's figure: its Result, made once the meter has closed (``figure(interference=...)``).
Figure = partial[Result]


@dataclass(frozen=True)
class SpawnConfig:
    """What to create and how often; ``parent_rss_mb`` adds bare forks of a bigger parent."""

    repeat: int = 30
    mp_repeat: int = 10
    methods: tuple[str, ...] = METHODS
    parent_rss_mb: tuple[int, ...] = ()

    @classmethod
    def full(cls) -> SpawnConfig:
        """The careful settings (the defaults): about 5 s."""
        return cls()

    @classmethod
    def quick(cls) -> SpawnConfig:
        """Fewer repetitions, for CI logs and the report's quick run."""
        return cls(repeat=10, mp_repeat=5)

    def count(self, method: str) -> int:
        """Timed operations of one method: multiprocessing ones are slow, so they have their own."""
        return self.mp_repeat if method in MP_START_METHODS else self.repeat

    def steps(self) -> int:
        """How many progress steps ``measure_spawn`` reports (one per timed operation)."""
        return sum(map(self.count, self.methods)) + self.repeat * len(self.parent_rss_mb)


def result_id(method: str) -> str:
    """The stable result id of one method."""
    return f"spawn.{method}"


def rss_result_id(mb: int) -> str:
    """The stable result id of a bare fork from a parent holding ``mb`` MiB more."""
    return f"spawn.fork_rss_{mb}mb"


def check_config(config: SpawnConfig) -> None:
    """Refuse an unknown method, a count below 1, or a parent size out of range, before any work."""
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise InvalidRequest(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if config.repeat < 1 or config.mp_repeat < 1:
        raise InvalidRequest("repeat and mp_repeat must be at least 1")
    for mb in config.parent_rss_mb:
        if mb < 0:
            raise InvalidRequest(f"--parent-rss {mb} is negative; give MiB from 0")
        if mb > MAX_PARENT_RSS_MB:
            raise LimitExceeded(
                f"--parent-rss {mb} is above the {MAX_PARENT_RSS_MB} MiB ostoolkit allows; "
                "lower --parent-rss"
            )
    if config.parent_rss_mb:
        check_task_budget(1, max(config.parent_rss_mb) * 2**20, "--parent-rss")


def unavailable_reason(method: str, true: str | None) -> str | None:
    """Say why a method cannot run on this host, or None when it can."""
    if method in EXEC_METHODS and true is None:
        return "no 'true' executable on PATH"
    if method == "posix_spawn" and not hasattr(os, "posix_spawn"):
        return "this Python has no os.posix_spawn"
    start_method = MP_START_METHODS.get(method)
    if start_method and start_method not in multiprocessing.get_all_start_methods():
        return f"multiprocessing offers no {start_method!r} start method here"
    return None


def _operation(method: str, children: Children, true: str | None) -> Operation:
    """The one operation a method times, waiting for what it started."""
    if method == "fork":
        return partial(forked, children, noop, "fork")
    if method == "thread":
        return thread_start_join
    if method in MP_START_METHODS:
        return mp_op(MP_START_METHODS[method])
    assert true is not None  # unavailable_reason checked it
    if method == "fork_exec":
        return partial(forked, children, partial(os.execv, true, [true]), "fork+execve")
    if method == "posix_spawn":
        return partial(posix_spawned, children, true, os.environ, "posix_spawn")
    return partial(subprocess_run, true)


def _measure_method(
    method: str,
    config: SpawnConfig,
    children: Children,
    true: str | None,
    progress: Progress | None,
) -> tuple[Figure | None, str | None]:
    """Warm up and time one method; return its figure, or why it was skipped."""
    count = config.count(method)
    # An unavailable method is not even set up; one that fails its warm-up is skipped too.
    reason = unavailable_reason(method, true) or warm_up(op := _operation(method, children, true))
    if reason:
        if progress:
            progress(count)
        return None, f"{result_id(method)} skipped: {reason}"
    samples, faults = time_operations(op, count, progress, method in OWN_CHILD_METHODS)
    extra: dict[str, Any] = {"warmup": WARMUP, **faults}
    if method in EXEC_METHODS:
        extra["executable"] = true
    if method in MP_START_METHODS:
        extra["start_method"] = MP_START_METHODS[method]
    if method == "mp_forkserver":
        extra["forkserver_preload"] = FORKSERVER_PRELOAD
    if method == "mp_spawn":
        extra.update(launcher_extra(children, true, count))
    if method == "fork":
        extra.update(memory_extra())
    figure = partial(make_result, result_id(method), NAMES[method][0], "us", samples, extra=extra)
    return figure, None


def _measure_fork_rss(
    mb: int, config: SpawnConfig, children: Children, progress: Progress | None
) -> Figure:
    """Time bare forks while the parent holds ``mb`` MiB more written memory, then free it."""
    check_task_budget(1, mb * 2**20, "--parent-rss")
    buf = touched_buffer(mb)
    try:
        memory = memory_extra()
        op = _operation("fork", children, None)
        for _ in range(WARMUP):
            op()
        samples, faults = time_operations(op, config.repeat, progress, own_child=True)
    finally:
        del buf
    extra = {"parent_rss_mb": mb, "warmup": WARMUP, **memory, **faults}
    label = f"{NAMES['fork'][0]}, parent holding {mb} MiB more"
    return partial(make_result, rss_result_id(mb), label, "us", samples, extra=extra)


def with_thread_ratios(results: Sequence[Result]) -> list[Result]:
    """Add ``ratio_to_thread`` (median / thread start median) to every result's extra."""
    thread = next((r for r in results if r.id == result_id("thread")), None)
    if thread is None or thread.median <= 0:
        return list(results)
    return [
        replace(r, extra={**r.extra, "ratio_to_thread": round(r.median / thread.median, 2)})
        for r in results
    ]


def thread_finding(results: Sequence[Result]) -> str | None:
    """Say, in words, how many thread starts each way of creating a process costs here."""
    by_id = {r.id: r for r in results}
    thread = by_id.get(result_id("thread"))
    if thread is None or thread.median <= 0:
        return None
    parts = [
        (NAMES[m][1], format_times(by_id[result_id(m)].median / thread.median))
        for m in METHODS
        if m != "thread" and result_id(m) in by_id
    ]
    if not parts:
        return None
    (first, ratio), *rest = parts
    return "; ".join([f"{first} costs {ratio} a thread start here", *map(" ".join, rest)])


def parent_finding(results: Sequence[Result]) -> str | None:
    """Say what the timed fork copied: the parent's size and memory map decide its cost."""
    fork = next((r for r in results if r.id == result_id("fork")), None)
    if fork is None or "parent_mappings" not in fork.extra:
        return None
    rss = fork.extra.get("parent_vmrss_kb")
    size = f"{format_kib(rss)} resident in " if rss is not None else ""
    return (
        f"fork's cost is its parent's: the parent timed here is a Python process with {size}"
        f"{fork.extra['parent_mappings']} memory mappings (page tables "
        f"{format_kib(fork.extra.get('parent_vmpte_kb', 0))}), all of which fork copies; "
        "a smaller process forks faster"
    )


def main_reimport_finding(results: Sequence[Result]) -> str | None:
    """Say when forkserver and spawn workers re-run (as ``__mp_main__``, with all it imports) the
    main script of a parent started as a script (not with ``python -m``)."""
    measured = {r.id for r in results} & {result_id("mp_forkserver"), result_id("mp_spawn")}
    path = main_script()
    if not measured or not path:
        return None
    return (
        f"forkserver and spawn workers re-run this parent's main script ({path}) and import "
        "all it imports, which is much of their cost here; started as "
        "'python -m ostoolkit', the forkserver preloads it instead"
    )


def launcher_finding(results: Sequence[Result]) -> str | None:
    """Say that the 'spawn' figure includes the parent-death launcher, and what that costs."""
    spawn = next((r for r in results if r.id == result_id("mp_spawn")), None)
    if spawn is None or not spawn.extra.get("launcher"):
        return None
    overhead = spawn.extra.get("launcher_overhead_us")
    cost = (
        f"; the launcher itself costs {format_us(overhead)} of its {format_us(spawn.median)} "
        "(timed in the same run)"
        if overhead is not None
        else ""
    )
    return (
        "multiprocessing 'spawn' is timed through ostoolkit's parent-death launcher, which "
        "arms SIGKILL (setpriv --pdeathsig) before the interpreter starts, so that no worker "
        f"outlives a killed ostoolkit{cost}"
    )


def exec_finding(results: Sequence[Result]) -> str | None:
    """Say how much cheaper posix_spawn starts a program than fork+execve, and why."""
    by_id = {r.id: r for r in results}
    fork_exec, spawn = by_id.get(result_id("fork_exec")), by_id.get(result_id("posix_spawn"))
    if not fork_exec or not spawn or spawn.median <= 0:
        return None
    ratio = fork_exec.median / spawn.median
    if ratio < GROWTH_FACTOR:
        return None
    return (
        f"posix_spawn starts a program {format_times(ratio)} faster than fork+execve here: "
        "glibc's posix_spawn (and subprocess, through vfork) shares the parent's memory "
        "until execve instead of copying its page tables"
    )


def rss_finding(results: Sequence[Result]) -> str | None:
    """Say how fork cost changes with the parent's memory, with the page tables it copies."""
    by_id = {r.id: r for r in results}
    sized = sorted((r.extra["parent_rss_mb"], r) for r in results if "parent_rss_mb" in r.extra)
    if not sized:
        return None
    base = by_id.get(result_id("fork"))
    points: list[tuple[int, Result]] = ([(0, base)] if base else []) + sized
    top_mb, top = points[-1]
    top_pte = format_kib(top.extra.get("parent_vmpte_kb", 0))
    if len(points) < 2:
        return (
            f"a fork of a parent holding {top_mb} MiB more costs {format_us(top.median)} "
            f"(page tables copied: {top_pte})"
        )
    low_mb, low = points[0]
    low_pte = format_kib(low.extra.get("parent_vmpte_kb", 0))
    grows = low.median > 0 and top.median / low.median >= GROWTH_FACTOR
    verb = "grows" if grows else "hardly grows"
    low_words = "without" if low_mb == 0 else f"with {low_mb} MiB"
    text = (
        f"fork cost {verb} with the parent's memory: {format_us(top.median)} with {top_mb} MiB "
        f"more vs {format_us(low.median)} {low_words} (page tables copied: {top_pte} vs "
        f"{low_pte})"
    )
    if not grows and top.extra.get("parent_anon_huge_kb", 0) >= top_mb * 1024 / 2:
        text += (
            "; most of that memory sits in transparent huge pages, one page-table entry "
            "per 2 MiB instead of 512"
        )
    return text


def measure_spawn(config: SpawnConfig, progress: Progress | None = None) -> Measurement:
    """Measure what creating a process or thread costs on this host, one operation at a time."""
    check_config(config)
    true = shutil.which("true")
    figures: list[Figure] = []
    warnings: list[str] = []
    with Meter() as meter, Children() as children, run_tempdir(), stopping_mp_helpers(warnings):
        for method in config.methods:
            # A 'spawn' worker, the forkserver and the resource tracker exec a fresh interpreter:
            # started within spawn_context, they die with ostoolkit even while it starts up.
            with spawn_context(warnings) if method in MP_START_METHODS else nullcontext():
                figure, skipped = _measure_method(method, config, children, true, progress)
            figures.extend([figure] if figure else [])
            warnings.extend([skipped] if skipped else [])
        for mb in config.parent_rss_mb:
            figures.append(_measure_fork_rss(mb, config, children, progress))
    results = with_thread_ratios([figure(interference=meter.result) for figure in figures])
    finders = (
        thread_finding,
        parent_finding,
        main_reimport_finding,
        launcher_finding,
        exec_finding,
        rss_finding,
    )
    findings = tuple(f for find in finders if (f := find(results)))
    warnings.extend(children.lost)  # the figures' noise warnings: claims.annotate
    return Measurement(tuple(results), findings, tuple(warnings))
