"""Memory per process versus per thread, counted as experts count it, and copy-on-write.

"Processes are heavy: there is memory overhead." For each model a fresh *leader* process is
forked; it starts N idle workers that each write the same small private state and then block
on a pipe. The whole group (leader and workers) is measured with psutil's memory_full_info:
USS (pages only it maps), PSS (shared pages split among their sharers) and RSS (shared pages
counted in full, once per process). The marginal cost of one worker is the least-squares
slope of the group's total over N = 0 and each N asked for, so the leader's own memory and
the interpreter's shared pages cancel out. Summed RSS is shown too, to show how far it
overstates a process's cost.

``measure_cow`` shows why forking is affordable at all: a child's unique memory right after
fork is near zero and grows only with what it writes (proc(5): smaps, Documentation/mm).

Memory figures have no timing window of their own: an interference meter covers each model's
whole measurement (every worker count), and ``measure_cow`` all its runs, on every CPU this
process may use. Other tasks' CPU time cannot change a byte or fault count, so the shares are
recorded in each result's extra as context and leave its status alone.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import resource
import secrets
import select
import selectors
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import psutil

from ostoolkit.children import (
    Children,
    check_open_files,
    check_task_budget,
    enough_open_files,
    fork_descendant,
    run_tempdir,
    set_parent_death_signal,
    spawn_context,
    spawn_launcher_warning,
    stopping_mp_helpers,
)
from ostoolkit.claims import judge_heavier
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.spawn import main_script
from ostoolkit.report import Measurement, Result, make_result

MODELS = ("process", "thread", "exec_process", "mp_spawn")
LABELS = {
    "process": "forked process",
    "thread": "thread",
    "exec_process": "fork+execve'd interpreter",
    "mp_spawn": "multiprocessing 'spawn' worker",
}
METRICS = ("uss", "pss", "rss")
MAX_PROCESSES = 1000
MAX_THREADS = 10000
# Each worker writes this much private state before it blocks, the same in every model.
STATE_KB = 64
# Budget per worker for the limit check before starting: generous for a fresh interpreter.
BYTES_PER_PROCESS = {"process": 4 * 2**20, "exec_process": 16 * 2**20, "mp_spawn": 48 * 2**20}
BYTES_PER_THREAD = 256 * 2**10
READY_TIMEOUT_PER_WORKER_S = 2.0
READY_TIMEOUT_MIN_S = 30.0
# Descriptors the leader holds per 'spawn' worker: its connection and multiprocessing's two pipe
# ends (the sentinel and the one it wrote the worker's instructions to).
FDS_PER_MP_WORKER = 3
COW_STEPS = ("fork", "read", "write10", "write50", "write100")
MAX_COW_MB = 4096
# The program an exec'd worker runs: write its state, say ready on stdout, block on stdin.
EXEC_WORKER = (
    "import os, sys\n"
    "state = bytearray(b'\\x01' * {size})\n"
    "os.write(1, b'r')\n"
    "sys.stdin.buffer.read()\n"
)
STATUS_FIELDS = ("VmPTE", "VmStk", "Threads")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class MemoryConfig:
    """Which models to start, and how many workers in each run."""

    workers: tuple[int, ...] = (1, 10, 100)
    models: tuple[str, ...] = MODELS
    state_kb: int = STATE_KB


@dataclass(frozen=True)
class GroupTotal:
    """A whole group's memory at one moment, in bytes, plus the kernel's own figures."""

    workers: int
    uss: int
    pss: int
    rss: int
    processes: int
    threads: int
    vmpte_kb: int
    vmstk_kb: int


def check_config(config: MemoryConfig) -> None:
    """Refuse, before starting anything, counts over the limits or over the host's headroom."""
    for model in config.models:
        if model not in MODELS:
            raise InvalidRequest(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        top = max(config.workers, default=0)
        limit = MAX_THREADS if model == "thread" else MAX_PROCESSES
        if top > limit:
            kind = "threads" if model == "thread" else "processes"
            raise InvalidRequest(f"--workers {top} is over {limit} {kind} (the accepted range)")
        per_worker = BYTES_PER_THREAD if model == "thread" else BYTES_PER_PROCESS[model]
        check_task_budget(top + 1, per_worker + config.state_kb * 1024, "--workers")
        if model == "mp_spawn":
            check_open_files(top * FDS_PER_MP_WORKER, f"--workers {top}", "lower --workers")


def _status_fields(pid: int) -> dict[str, int]:
    """VmPTE, VmStk (KiB) and Threads from /proc/PID/status; psutil offers none of them."""
    found: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in STATUS_FIELDS and rest.split():
            found[name] = int(rest.split()[0])
    return found


def _is_helper(proc: psutil.Process) -> bool:
    """multiprocessing's resource tracker is shared plumbing, not a worker: left out."""
    try:
        return any("resource_tracker" in part for part in proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return True


def measure_group(leader: int, workers: int) -> GroupTotal:
    """Sum USS, PSS and RSS (and page tables, stacks, threads) over a leader and its workers."""
    top = psutil.Process(leader)
    procs = [top, *(p for p in top.children(recursive=True) if not _is_helper(p))]
    uss = pss = rss = threads = pte = stk = 0
    for proc in procs:
        info = proc.memory_full_info()
        uss, pss, rss = uss + info.uss, pss + info.pss, rss + info.rss
        fields = _status_fields(proc.pid)
        threads += fields.get("Threads", 1)
        pte += fields.get("VmPTE", 0)
        stk += fields.get("VmStk", 0)
    return GroupTotal(workers, uss, pss, rss, len(procs), threads, pte, stk)


def _touch_state(kb: int) -> bytearray:
    """A worker's private state: allocated and written, so it is really its own."""
    return bytearray(b"\x01" * (kb * 1024))


def _reaper(pids: list[int]) -> Callable[[], None]:
    """How a leader waits for the worker processes it forked."""

    def reap() -> None:
        for pid in pids:
            os.waitpid(pid, 0)

    return reap


def _mp_worker(kb: int, address: str, leader: int) -> None:
    """A multiprocessing worker: write its state, say ready, wait for the release.

    It connects to the leader's abstract unix socket, sends one byte, then reads until
    end-of-file: the leader closing the connection is the release, and so is its death (the
    kernel closes its descriptors). It dies with its leader (PR_SET_PDEATHSIG, armed already
    by the launcher, see spawn_context) as forked workers do; a leader already gone or no
    longer listening ends it quietly.
    """
    set_parent_death_signal()
    if os.getppid() != leader:
        return
    state = _touch_state(kb)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(address)
            conn.sendall(b"r")
            while conn.recv(1):
                pass
    except OSError:
        return
    del state


def _start_workers(
    model: str, count: int, kb: int, release_r: int, ready_w: int
) -> Callable[[], None]:
    """Start ``count`` workers of one model in this (leader) process; return how to join them.

    Each worker writes its state, writes one byte to ``ready_w``, then blocks reading
    ``release_r`` until end-of-file. 'spawn' workers are started by ``_start_mp_workers``.
    """
    if model == "thread":

        def idle() -> None:
            state = _touch_state(kb)
            os.write(ready_w, b"r")
            os.read(release_r, 1)
            del state

        threads = [threading.Thread(target=idle, daemon=True) for _ in range(count)]
        for thread in threads:
            thread.start()

        def join_threads() -> None:
            for thread in threads:
                thread.join()

        return join_threads

    if model == "process":

        def forked() -> None:
            state = _touch_state(kb)
            os.write(ready_w, b"r")
            os.read(release_r, 1)
            del state

        return _reaper([fork_descendant(forked) for _ in range(count)])

    if model == "exec_process":
        code = EXEC_WORKER.format(size=kb * 1024)

        def execd() -> None:
            os.dup2(release_r, 0)
            os.dup2(ready_w, 1)
            os.execv(sys.executable, [sys.executable, "-c", code])

        return _reaper([fork_descendant(execd) for _ in range(count)])

    raise ValueError(f"no forked or threaded model {model!r}")


def _start_mp_workers(
    context: SpawnContext, count: int, kb: int, ready_w: int
) -> Callable[[], None]:
    """Start 'spawn' workers synchronised over an abstract unix socket; return how to join them.

    The leader listens on a name in Linux's abstract socket namespace (unix(7)): no file, so
    nothing to unlink, and it vanishes with its last descriptor, however the leader dies.
    (multiprocessing's semaphores are files in /dev/shm that a SIGKILLed leader never
    unlinks.) A relay thread accepts each worker and passes its ready byte on to ``ready_w``;
    ``join`` closes every connection, which releases the workers, and joins them.
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = f"\0ostoolkit-{os.getpid()}-{secrets.token_hex(8)}"
    listener.bind(address)
    listener.listen(max(count, 1))
    stop_r, stop_w = os.pipe()
    conns: list[socket.socket] = []
    args = (kb, address, os.getpid())
    procs = [context.Process(target=_mp_worker, args=args) for _ in range(count)]
    for proc in procs:
        proc.start()

    def relay() -> None:
        try:
            _relay_ready(listener, procs, ready_w, stop_r, conns)
        except OSError as err:  # the leader cannot go on: end it, so ostoolkit sees the group die
            os.write(2, f"ostoolkit: 'spawn' workers' leader: {err}\n".encode())
            os._exit(1)

    thread = threading.Thread(target=relay, name="ostoolkit-relay", daemon=True)
    thread.start()

    def join() -> None:
        os.write(stop_w, b"x")
        thread.join()
        listener.close()  # a late worker's connect fails and it ends
        for conn in conns:
            conn.close()  # the release: each worker reads end-of-file
        for proc in procs:
            proc.join()
            proc.close()
        for fd in (stop_r, stop_w):
            os.close(fd)

    return join


def _relay_ready(
    listener: socket.socket,
    procs: Sequence[BaseProcess],
    ready_w: int,
    stop_r: int,
    conns: list[socket.socket],
) -> None:
    """Accept workers and relay one ready byte per worker, until all are ready or a stop byte.

    A worker never ends before its release: one that does (its main script failed to import,
    say) is an error at once, instead of a wait for the ready timeout.
    """
    ready = 0
    with selectors.DefaultSelector() as selector:  # epoll: beyond select's 1024 descriptors
        selector.register(stop_r, selectors.EVENT_READ)
        selector.register(listener, selectors.EVENT_READ)
        for proc in procs:
            selector.register(proc.sentinel, selectors.EVENT_READ, proc)
        while ready < len(procs):
            for key, _ in selector.select():
                if key.fileobj == stop_r:
                    return
                if isinstance(key.data, BaseProcess):
                    key.data.join()
                    raise ChildProcessError(
                        f"a worker ended with {key.data.exitcode} before it was ready "
                        "(its error, if any, is above)"
                    )
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    conns.append(conn)
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                worker = key.fileobj
                assert isinstance(worker, socket.socket)
                selector.unregister(worker)
                with contextlib.suppress(OSError):  # a worker gone before its byte: not ready
                    if worker.recv(1):
                        ready += 1
                        os.write(ready_w, b"r")


def _leader(model: str, count: int, kb: int, release_r: int, ready_w: int) -> None:
    """The group's leader: start the workers, hold until released, then join or reap them.

    multiprocessing helpers it starts (the resource tracker) are stopped before it exits,
    so none is orphaned; 'spawn' workers start through spawn_context's launcher.
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(stopping_mp_helpers([]))
        if model == "mp_spawn":
            stack.enter_context(enough_open_files(count * FDS_PER_MP_WORKER))
            context = stack.enter_context(spawn_context([]))
            join = _start_mp_workers(context, count, kb, ready_w)
        else:
            join = _start_workers(model, count, kb, release_r, ready_w)
        os.write(ready_w, b"L")  # the leader itself is in place
        os.read(release_r, 1)
        join()


def _await_ready(ready_r: int, expected: int, timeout: float) -> None:
    """Read ``expected`` ready bytes (workers' and the leader's) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < expected:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([ready_r], [], [], max(left, 0))
        if not ready:
            raise OstoolkitError(f"only {seen} of {expected} workers became ready in time")
        chunk = os.read(ready_r, 65536)
        if not chunk:
            raise OstoolkitError(f"the worker group died after {seen} of {expected} were ready")
        seen += len(chunk)


def run_group(model: str, count: int, kb: int) -> GroupTotal:
    """Start a leader with ``count`` idle workers, measure the group, then end it all.

    Measured, the group is released and ends on its own; interrupted or failed, it is not
    waited for: Children.close kills the leader's whole process group at once.
    """
    release_r, release_w = os.pipe()
    ready_r, ready_w = os.pipe()
    measured = False
    with Children() as children:
        try:

            def lead() -> None:
                os.close(release_w)
                os.close(ready_r)
                _leader(model, count, kb, release_r, ready_w)

            leader = children.fork(lead)
            os.close(ready_w)
            ready_w = -1
            timeout = max(READY_TIMEOUT_MIN_S, count * READY_TIMEOUT_PER_WORKER_S)
            _await_ready(ready_r, count + 1, timeout)
            total = measure_group(leader, count)
            measured = True
            return total
        finally:
            os.close(release_w)  # leader and workers read end-of-file and finish
            if measured:
                children.reap(leader)
            for fd in (release_r, ready_r, ready_w):
                if fd >= 0:
                    os.close(fd)


def slope(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of y over x: the marginal cost of one more worker."""
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        raise ValueError("need at least two different worker counts")
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def _model_results(
    model: str, totals: list[GroupTotal], interference: Interference | None = None
) -> list[Result]:
    """Per-worker USS, PSS and RSS for one model: samples are the marginals at each N."""
    base = totals[0]
    results = []
    for metric in METRICS:
        marginals = [(getattr(t, metric) - getattr(base, metric)) / t.workers for t in totals[1:]]
        points = [(t.workers, float(getattr(t, metric))) for t in totals]
        extra: dict[str, Any] = {
            "slope_bytes": round(slope(points)),
            "by_workers": {str(t.workers): getattr(t, metric) for t in totals},
        }
        if metric == "uss":
            extra["kernel"] = {
                str(t.workers): {
                    "processes": t.processes,
                    "threads": t.threads,
                    "vmpte_kb": t.vmpte_kb,
                    "vmstk_kb": t.vmstk_kb,
                }
                for t in totals
            }
            pte_kb = slope([(t.workers, t.vmpte_kb) for t in totals])
            extra["vmpte_per_worker_bytes"] = round(pte_kb * 1024)
        results.append(
            make_result(
                f"memory.{model}.{metric}_per_worker",
                f"{LABELS[model]}: {metric.upper()} per worker",
                "bytes",
                marginals,
                extra=extra,
                interference=interference,
            )
        )
    return results


def measure_memory(config: MemoryConfig, progress: Progress | None = None) -> Measurement:
    """Measure each model's memory per worker at each count, against the same group at 0."""
    check_config(config)
    warnings: list[str] = []
    if "mp_spawn" in config.models:
        note = spawn_launcher_warning()  # probed here once; the forked leaders inherit it
        warnings.extend([note] if note else [])
    results: list[Result] = []
    with run_tempdir():
        for model in config.models:
            totals = []
            with Meter() as meter:
                for count in (0, *config.workers):
                    totals.append(run_group(model, count, config.state_kb))
                    if progress:
                        progress(1)
            results.extend(_model_results(model, totals, meter.result))
    return Measurement(
        tuple(_with_claim(results)), tuple(memory_findings(results)), tuple(warnings)
    )


def _with_claim(results: list[Result]) -> list[Result]:
    """Put the article's "processes are heavy" beside the forked process's USS per worker."""
    by_id = {r.id: r for r in results}
    thread = by_id.get("memory.thread.uss_per_worker")
    out = []
    for result in results:
        if thread and result.id.endswith(".uss_per_worker") and result.id != thread.id:
            result = replace(
                result,
                claim="processes are heavy",
                verdict=judge_heavier(result.median, thread.median),
            )
        out.append(result)
    return out


def memory_findings(results: Sequence[Result]) -> list[str]:
    """Say how much sharing saves and how far summed RSS overstates a process's cost."""
    by_id = {r.id: r for r in results}
    findings = []
    process = by_id.get("memory.process.uss_per_worker")
    rss = by_id.get("memory.process.rss_per_worker")
    pss = by_id.get("memory.process.pss_per_worker")
    if process and rss and process.median > 0:
        pss_text = _mib(pss.median) if pss else "?"
        findings.append(
            f"summed RSS says a forked process costs {_mib(rss.median)}, "
            f"{rss.median / process.median:.0f}× its real unique cost ({_mib(process.median)} "
            f"USS, {pss_text} PSS): RSS counts every shared page once per process"
        )
    script = main_script()
    if process and process.median > 0:
        for model in ("exec_process", "mp_spawn"):
            other = by_id.get(f"memory.{model}.uss_per_worker")
            if other is None:
                continue
            rerun = (
                f", and re-runs its main script {script}" if script and model == "mp_spawn" else ""
            )
            findings.append(
                f"a {LABELS[model]} costs {_mib(other.median)} unique, "
                f"{other.median / process.median:.1f}× a forked process: a fresh interpreter "
                f"shares nothing copy-on-write with its parent{rerun}"
            )
    thread = by_id.get("memory.thread.uss_per_worker")
    if thread:
        findings.append(
            f"a thread costs {_mib(thread.median)}: the stack pages it touched, its state and "
            "interpreter bookkeeping; the kernel adds a kernel stack per task (16 KiB on x86-64) "
            "that no user-space figure shows"
        )
    return findings


def _mib(size: float) -> str:
    """Bytes as KiB or MiB for a finding."""
    return f"{size / 2**20:.2f} MiB" if abs(size) >= 2**20 else f"{size / 1024:.0f} KiB"


def _cow_child(buf: bytearray, step_r: int, report_w: int) -> None:
    """The forked child: report faults after each step, then wait for the next one."""
    page = mmap.PAGESIZE
    size = len(buf)
    done = 0

    def report() -> None:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        os.write(report_w, f"{faults}\n".encode())

    report()  # right after fork
    for step in COW_STEPS[1:]:
        if os.read(step_r, 1) != b"n":
            return
        if step == "read":
            buf.find(b"\xff")  # reads every byte; the buffer holds none of them
        else:
            upto = size * int(step.removeprefix("write")) // 100
            for offset in range(done, upto, page):  # one byte per page: the page is copied
                buf[offset] = 2
            done = upto
        report()
    os.read(step_r, 1)


def measure_cow(
    size_mb: int = 64, repeat: int = 3, progress: Progress | None = None
) -> Measurement:
    """Fork a child of a parent holding ``size_mb`` written MiB; watch its memory as it writes."""
    if not 1 <= size_mb <= MAX_COW_MB:
        raise InvalidRequest(f"--size {size_mb} is outside 1..{MAX_COW_MB} MiB")
    check_task_budget(1, 2 * size_mb * 2**20, "--size")
    buf = bytearray(b"\x01" * (size_mb * 2**20))
    uss: dict[str, list[float]] = {step: [] for step in COW_STEPS}
    faults: dict[str, list[float]] = {step: [] for step in COW_STEPS}
    try:
        with Meter() as meter:
            for _ in range(repeat):
                _one_cow_run(buf, uss, faults)
                if progress:
                    progress(1)
    finally:
        del buf
    results = [
        make_result(
            f"memory.cow.uss_after_{step}",
            f"child's USS after {_COW_WORDS[step]}",
            "bytes",
            uss[step],
            interference=meter.result,
        )
        for step in COW_STEPS
    ]
    results.append(
        make_result(
            "memory.cow.minor_faults_write100",
            "child's minor faults, fork to 100% written",
            "count",
            faults["write100"],
            extra={"pages": size_mb * 2**20 // mmap.PAGESIZE, "page_size": mmap.PAGESIZE},
            interference=meter.result,
        )
    )
    written = statistics.median(uss["write100"]) - statistics.median(uss["fork"])
    findings = (
        f"right after fork the child owns {_mib(statistics.median(uss['fork']))} of its parent's "
        f"{size_mb} MiB; reading it all copies nothing; writing it all makes {_mib(written)} its "
        f"own, with {statistics.median(faults['write100']):,.0f} minor faults for "
        f"{size_mb * 2**20 // mmap.PAGESIZE:,} pages: each first write to a shared page copies it",
    )
    return Measurement(tuple(results), findings, data={"cow_size_mb": size_mb})


_COW_WORDS = {
    "fork": "fork",
    "read": "reading all",
    "write10": "writing 10%",
    "write50": "writing 50%",
    "write100": "writing 100%",
}


def _one_cow_run(
    buf: bytearray, uss: dict[str, list[float]], faults: dict[str, list[float]]
) -> None:
    """Fork one child over ``buf`` and record its USS and faults at every step."""
    step_r, step_w = os.pipe()
    report_r, report_w = os.pipe()
    with Children() as children:
        try:

            def child() -> None:
                os.close(step_w)
                os.close(report_r)
                _cow_child(buf, step_r, report_w)

            pid = children.fork(child)
            os.close(report_w)
            report_w = -1
            proc = psutil.Process(pid)
            reports = os.fdopen(report_r, "rb", buffering=0)
            report_r = -1
            start_faults = 0
            with reports:
                for index, step in enumerate(COW_STEPS):
                    if index:
                        os.write(step_w, b"n")
                    line = reports.readline()
                    if not line:
                        raise OstoolkitError("the copy-on-write child died")
                    count = int(line)
                    if index == 0:
                        start_faults = count
                    uss[step].append(proc.memory_full_info().uss)
                    faults[step].append(count - start_faults)
                os.write(step_w, b"n")
                children.reap(pid)
        finally:
            for fd in (step_r, step_w, report_r, report_w):
                if fd >= 0:
                    os.close(fd)
