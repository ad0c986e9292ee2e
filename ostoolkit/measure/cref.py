"""The C harness of measure-switch's own method (``lat_pipe.c``), built and run for --cross-check.

lat_pipe.c bounces a byte between two tasks over two pipes and subtracts one task's write +
read on a private pipe, as ``measure/switch.py`` does: net = (round trip − 2 × baseline) / 2.
It is compiled (gcc, else cc) into a private folder that is removed after, and run pinned to
the same-core CPU, so each run shows ostoolkit's figure beside a C program's.
"""

from __future__ import annotations

import math
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ostoolkit.children import pinned_main, run_program
from ostoolkit.report import Measurement, Result, make_result

# Package data (pyproject's [tool.setuptools.package-data]), next to this module when installed.
SOURCE = Path(__file__).with_name("lat_pipe.c")
BINARY_NAME = "lat_pipe"
COMPILERS = ("gcc", "cc")
CFLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-pthread")
COMPILE_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 120.0
MODELS = ("process", "thread")
PLURAL = {"process": "processes", "thread": "threads"}
NO_COMPILER = (
    "--cross-check: no C compiler (gcc or cc) found; the C harness was skipped (Debian: gcc)"
)
REP_PREFIXES = ("rt_ns=", "base_ns=")
SUMMARY_PREFIXES = ("net_us_median=", "gross_us_median=")
MAX_QUOTED = 80  # characters of an unexpected output line quoted in an error


class HarnessError(RuntimeError):
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


def _fields(line: str, prefixes: tuple[str, ...]) -> list[float] | None:
    """The numbers of a ``key=value key=value`` line with exactly these keys, else None."""
    parts = line.split()
    if len(parts) != len(prefixes) or not all(
        part.startswith(prefix) for part, prefix in zip(parts, prefixes, strict=True)
    ):
        return None
    try:
        values = [float(part.partition("=")[2]) for part in parts]
    except ValueError:
        raise HarnessError(
            f"unparseable number in lat_pipe output: {line[:MAX_QUOTED]!r}"
        ) from None
    if not all(math.isfinite(value) for value in values):
        raise HarnessError(f"non-finite number in lat_pipe output: {line[:MAX_QUOTED]!r}")
    return values


def parse_output(stdout: str) -> dict[str, Any]:
    """lat_pipe's stdout: each repetition's ``net_us``, ``gross_us`` and ``base_us`` (as
    measure-switch defines them) and its ``net_us_median``, ``gross_us_median``; HarnessError
    on any other line or a missing part."""
    reps: list[list[float]] = []
    summary: dict[str, float] | None = None
    for raw in stdout.splitlines():
        line = raw.strip()
        if not line:
            continue
        if (rep := _fields(line, REP_PREFIXES)) is not None:
            reps.append(rep)
        elif (medians := _fields(line, SUMMARY_PREFIXES)) is not None:
            summary = {"net_us_median": medians[0], "gross_us_median": medians[1]}
        else:
            raise HarnessError(f"unexpected line in lat_pipe output: {line[:MAX_QUOTED]!r}")
    if not reps:
        raise HarnessError("incomplete lat_pipe output: no repetition line")
    if summary is None:
        raise HarnessError("incomplete lat_pipe output: no summary line")
    return {
        "net_us": [(rt_ns - 2.0 * base_ns) / 2.0 / 1000.0 for rt_ns, base_ns in reps],
        "gross_us": [rt_ns / 2.0 / 1000.0 for rt_ns, _ in reps],
        "base_us": [base_ns / 1000.0 for _, base_ns in reps],
        **summary,
    }


def run_harness(
    binary: Path,
    model: str,
    cpus: tuple[int, int],
    iterations: int,
    repeat: int,
    working_set_kb: int = 0,
) -> dict[str, Any]:
    """Run the built harness once (``model`` on CPUs A and B) and return parse_output's dict."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    argv = [str(binary), model, *(str(c) for c in cpus)]
    argv += [str(iterations), str(repeat), str(working_set_kb)]
    try:
        done = run_program(argv, RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"lat_pipe {model} timed out after {RUN_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        reason = _last_line(done.stderr, f"exit status {done.returncode}")
        raise HarnessError(f"lat_pipe {model} failed: {reason}")
    return parse_output(done.stdout)


def _result(model: str, cpu: int, iterations: int, run: dict[str, Any]) -> Result:
    """One model's figure: the net µs of each repetition, with the medians of gross and base."""
    return make_result(
        f"ref.lat_pipe.{model}.same_core",
        f"C harness lat_pipe.c, {PLURAL[model]}, same core (net)",
        "us",
        run["net_us"],
        extra={
            "cpus": [cpu, cpu],
            "iterations": iterations,
            "gross_us": statistics.median(run["gross_us"]),
            "baseline_us": statistics.median(run["base_us"]),
        },
    )


def cross_check_c(cpu: int, iterations: int, repeat: int, folder: Path) -> Measurement:
    """Build lat_pipe.c in a folder made inside ``folder`` (always removed) and run it per model
    on ``cpu``: results ``ref.lat_pipe.{process,thread}.same_core``, or one warning line."""
    compiler = find_compiler()
    if compiler is None:
        return Measurement((), warnings=(NO_COMPILER,))
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lat_pipe-", dir=folder) as build:
            binary = compile_harness(Path(build), compiler)
            for model in MODELS:
                with pinned_main(cpu):  # lat_pipe pins its tasks itself; start it there too
                    run = run_harness(binary, model, (cpu, cpu), iterations, repeat)
                results.append(_result(model, cpu, iterations, run))
    except HarnessError as error:
        return Measurement((), warnings=(f"--cross-check: the C harness was skipped: {error}",))
    return Measurement(tuple(results))
