"""The inside of fork-tree's tree: a lean interpreter that forks the tree below itself.

ostoolkit starts it (``python -I -S``, importing this module, the standard library and
``ostoolkit.deathsig`` only) so that every fork copies a small process: forked from
ostoolkit itself, with its command line's 300-odd modules loaded, each fork and exit cost
about 4 times as much here (docs/method.md, "fork-tree"). Stdin is the release pipe, whose
end-of-file ends the tree; stdout is the report pipe, one line each (atomic, under PIPE_BUF):
``C us`` a bare fork's cost, timed before the tree; ``F pid parent us`` a fork as its parent
saw it; ``E pid parent fork_us exec_us`` a leaf's fork + execve; ``R pid`` ready; ``X pid
reason`` a failure. Every process arms its parent-death signal first, so none outlives its
parent, and each reaps its own children.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable

from ostoolkit.deathsig import arm_parent_death, set_name

NAME = "ostoolkit-tree"  # what ps shows for every process of the tree
RELEASE_FD, REPORT_FD = 0, 1
WARMUP_FORKS = 1  # untimed, before the timed bare forks


def _report(text: str) -> None:
    os.write(REPORT_FD, text.encode())


def _forked(run: Callable[[], None]) -> int:
    """Fork a child that arms its parent-death signal, runs ``run`` and exits."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, seen by its parent through the pipes
        code = 1
        try:
            if arm_parent_death(parent):
                run()
                code = 0
        except BaseException as err:
            _report(f"X {os.getpid()} {type(err).__name__}: {err}\n")
        finally:
            os._exit(code)
    return pid


def bare_fork_us(count: int) -> list[float]:
    """``count`` bare forks timed one at a time: fork, the child's _exit, the reap. The lean
    twin of measure-spawn's fork operation (``creation.forked``), which this process does not
    import: its supervisor would make every fork of the tree costlier."""
    samples = []
    for index in range(WARMUP_FORKS + count):
        start = time.perf_counter_ns()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child only exits
            os._exit(0)
        os.waitpid(pid, 0)
        if index >= WARMUP_FORKS:
            samples.append((time.perf_counter_ns() - start) / 1e3)
    return samples


def _exec_leaf(program: str) -> tuple[int, float, float]:
    """Fork and execve ``program`` reading the release pipe, its stdout /dev/null; pid, fork
    µs, exec µs: until the new image is in place, when the child's close-on-exec pipe reaches
    end-of-file (subprocess's trick)."""
    done_r, done_w = os.pipe()  # both ends close-on-exec (PEP 446)
    parent = os.getpid()
    start = time.perf_counter_ns()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(done_r)
            if arm_parent_death(parent):
                os.dup2(os.open(os.devnull, os.O_WRONLY), REPORT_FD)
                os.execv(program, [program])
        except BaseException:
            os.write(done_w, b"!")
        finally:
            os._exit(127)
    forked = time.perf_counter_ns()
    os.close(done_w)
    failed = os.read(done_r, 1)
    execd = time.perf_counter_ns()
    os.close(done_r)
    if failed:
        os.waitpid(pid, 0)
        raise OSError(f"execve of {program} failed")
    return pid, (forked - start) / 1e3, (execd - start) / 1e3


def node(level: int, depth: int, breadth: int, program: str | None) -> None:
    """One tree process: fork its children (or exec a leaf program), report, hold until the
    release pipe ends, reap."""
    kids: list[int] = []
    lines: list[str] = []
    me = os.getpid()
    if level < depth:
        for _ in range(breadth):
            start = time.perf_counter_ns()
            pid = _forked(lambda: node(level + 1, depth, breadth, program))
            kids.append(pid)
            lines.append(f"F {pid} {me} {(time.perf_counter_ns() - start) / 1e3:.3f}")
    elif program is not None:
        pid, fork_us, exec_us = _exec_leaf(program)
        kids.append(pid)
        lines.append(f"E {pid} {me} {fork_us:.3f} {exec_us:.3f}")
    lines.append(f"R {me}")
    _report("\n".join(lines) + "\n")
    os.read(RELEASE_FD, 1)  # blocks until ostoolkit closes the release pipe
    for pid in kids:
        os.waitpid(pid, 0)


def main(argv: list[str]) -> None:
    """``depth breadth exec-program|- forks``: time the bare forks, then be the tree's root."""
    depth, breadth, program, forks = int(argv[0]), int(argv[1]), argv[2], int(argv[3])
    set_name(NAME)
    leaf = None if program == "-" else shutil.which(program) or program
    try:
        _report("".join(f"C {us:.3f}\n" for us in bare_fork_us(forks)))
        node(0, depth, breadth, leaf)
    except BaseException as err:
        _report(f"X {os.getpid()} {type(err).__name__}: {err}\n")
        sys.exit(1)
