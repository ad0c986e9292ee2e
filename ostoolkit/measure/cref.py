"""The C harness of measure-switch's own method (``lat_pipe.c``), built and run beside it.

lat_pipe.c bounces a byte between two tasks over two pipes and subtracts one task's write +
read on a private pipe, as ``measure/switch.py`` does: net = (round trip − 2 × baseline) / 2.
It is compiled (gcc, else cc) into a private folder that is removed after; in serve mode it
times blocks on ostoolkit's command, alternated with ostoolkit's own on the same CPU
(``served_pair``). Run by hand (its usage line) it prints whole runs.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from ostoolkit.children import Children, die_with_us, read_before, run_program
from ostoolkit.errors import OstoolkitError
from ostoolkit.measure.blocks import Timing

# Package data (pyproject's [tool.setuptools.package-data]), next to this module when installed.
SOURCE = Path(__file__).with_name("lat_pipe.c")
BINARY_NAME = "lat_pipe"
COMPILERS = ("gcc", "cc")
CFLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-pthread")
COMPILE_TIMEOUT_S = 60.0
MODELS = ("process", "thread")
PLURAL = {"process": "processes", "thread": "threads"}
NO_COMPILER = "no C compiler (gcc or cc) found (Debian: gcc)"
READY = "ready partner="  # serve mode's first line, then the partner task's pid or thread id
SERVE_TIMEOUT_S = 60.0  # one answer: a sample takes about 0.1 s; the first includes start-up
MAX_QUOTED = 80  # characters of an unexpected output line quoted in an error


class HarnessError(OstoolkitError):
    """The C harness could not be built or run, or printed what it should not (one line)."""


def find_compiler() -> str | None:
    """The path of a C compiler on PATH (gcc, else cc), or None."""
    return next(filter(None, map(shutil.which, COMPILERS)), None)


def _last_line(stderr: str, fallback: str) -> str:
    """The line of a program's stderr that says most: the last naming an error, else the last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [fallback])[-1]


def compile_harness(folder: Path, compiler: str) -> Path:
    """Compile lat_pipe.c into ``folder`` with ``compiler`` and return the binary's path."""
    binary = folder / BINARY_NAME
    # The compiler's own temporary files (cc*.s, cc*.o) go into ``folder`` too: killed
    # mid-compile by a signal to ostoolkit, gcc cannot remove them, and the folder is removed.
    argv = ["env", f"TMPDIR={folder}", compiler, *CFLAGS, "-o", str(binary), str(SOURCE)]
    try:
        done = run_program(argv, COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise HarnessError(
            f"compiling {SOURCE.name} timed out after {COMPILE_TIMEOUT_S:.0f} s"
        ) from None
    except OSError as error:
        raise HarnessError(f"could not run {compiler}: {error.strerror or error}") from None
    if done.returncode != 0 or not binary.is_file():
        reason = _last_line(done.stderr, f"exit status {done.returncode}")
        raise HarnessError(f"compiling {SOURCE.name} failed: {reason}")
    return binary


@contextlib.contextmanager
def built_harness(folder: Path) -> Iterator[Path]:
    """lat_pipe.c compiled into a folder made inside ``folder``, removed after; HarnessError
    without a compiler or when the build fails."""
    compiler = find_compiler()
    if compiler is None:
        raise HarnessError(NO_COMPILER)
    with tempfile.TemporaryDirectory(prefix="lat_pipe-", dir=folder) as build:
        yield compile_harness(Path(build), compiler)


class _Served:
    """A lat_pipe in serve mode: a command line in, an answer line out, under a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:
            raise HarnessError("lat_pipe started without its pipes")
        self.proc = proc
        self.stdin, self.stdout, self.stderr = proc.stdin, proc.stdout, proc.stderr
        self.pending = b""

    def line(self) -> str:
        """The next line lat_pipe printed; HarnessError if it stopped or fell silent."""
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while b"\n" not in self.pending:
            chunk = read_before(self.stdout.fileno(), deadline)
            if chunk is None:
                raise HarnessError(f"lat_pipe did not answer within {SERVE_TIMEOUT_S:.0f} s")
            if not chunk:
                said = read_before(self.stderr.fileno(), time.monotonic() + 1.0) or b""
                reason = _last_line(said.decode(errors="replace"), "it exited")
                raise HarnessError(f"lat_pipe stopped: {reason}")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode(errors="replace").strip()

    def elapsed_ns(self, command: str, n: int) -> int:
        """The elapsed ns of ``n`` round trips ("r") or baseline write+reads ("b")."""
        self.stdin.write(f"{command} {n}\n".encode())
        self.stdin.flush()
        answer = self.line()
        try:
            value = float(answer)
        except ValueError:
            raise HarnessError(f"unexpected lat_pipe answer: {answer[:MAX_QUOTED]!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise HarnessError(f"unexpected lat_pipe answer: {answer[:MAX_QUOTED]!r}")
        return round(value)


@contextlib.contextmanager
def served_pair(binary: Path, model: str, cpu: int, working_set_kb: int) -> Iterator[Timing]:
    """One block of the C harness on ``cpu``: a fresh lat_pipe pair in serve mode, timed
    through the same Timing as ostoolkit's own pair, so that take_rounds alternates the two
    block by block (the kernel's counters read from lat_pipe's partner task)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    argv = [str(binary), model, str(cpu), str(cpu), "serve", str(working_set_kb)]
    pipe = subprocess.PIPE
    with Children() as children:
        served = _Served(children.popen(die_with_us(argv), stdin=pipe, stdout=pipe, stderr=pipe))
        with served.stdin, served.stdout, served.stderr:
            ready = served.line()
            if not ready.startswith(READY):
                raise HarnessError(f"unexpected lat_pipe greeting: {ready[:MAX_QUOTED]!r}")
            try:
                partner = psutil.Process(int(ready.removeprefix(READY)))
            except (ValueError, psutil.Error) as error:
                raise HarnessError(f"lat_pipe's partner task: {error}") from None
            tasks = (psutil.Process(served.proc.pid), partner)  # lat_pipe's task A, then B
            yield Timing(
                rounds=lambda n: served.elapsed_ns("r", n),
                baseline=lambda n: served.elapsed_ns("b", n),
                switches=lambda: switches_of(tasks),
                tasks=tuple(task.pid for task in tasks),
            )


def switches_of(tasks: tuple[psutil.Process, ...]) -> tuple[int, int]:
    """The tasks' voluntary and involuntary switches, added up (/proc/<id>/status: one task's
    own, a thread's by its id)."""
    counts = [task.num_ctx_switches() for task in tasks]
    return sum(c.voluntary for c in counts), sum(c.involuntary for c in counts)
