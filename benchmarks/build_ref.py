"""Build and run the C reference implementation (``lat_pipe.c``) for the benchmarks.

The reference measures context-switch cost with the pipe ping-pong method
(lmbench ``lat_ctx`` / ``perf bench sched pipe``) and subtracts a same-CPU
baseline of the same system calls.  The accuracy benchmark compares
ostoolkit's own numbers against it.  The source, its compiler flags and the
parsing of its output live in the package (``ostoolkit/measure/cref.py``,
which ``measure-switch --cross-check`` uses); these are thin wrappers that
raise instead of warning.

Example::

    binary = build_reference(Path("benchmarks/build"))
    result = run_reference(binary, "process", 0, 0, 20000, 15, 0)
    result["net_us_median"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ostoolkit.measure.cref import (
    BINARY_NAME,
    CFLAGS,
    MODELS,
    RUN_TIMEOUT_S,
    SOURCE,
    compile_harness,
    parse_output,
    run_harness,
)
from ostoolkit.measure.cref import (
    find_compiler as find_any_compiler,
)

__all__ = [
    "BINARY_NAME",
    "CFLAGS",
    "MODELS",
    "RUN_TIMEOUT_S",
    "SOURCE",
    "build_reference",
    "find_compiler",
    "parse_output",
    "run_reference",
]


def find_compiler() -> str:
    """Return the path of a C compiler (``gcc``, else ``cc``).

    Raises:
        RuntimeError: if neither is on ``PATH``.
    """
    path = find_any_compiler()
    if path is None:
        raise RuntimeError(
            "no C compiler found: neither 'gcc' nor 'cc' is on PATH "
            "(install gcc, e.g. 'apt-get install gcc', to build the lat_pipe reference)"
        )
    return path


def build_reference(out_dir: Path) -> Path:
    """Compile ``lat_pipe.c`` into ``out_dir`` (created if needed) and return the binary's path.

    The binary is rebuilt on every call, which takes well under a second.

    Raises:
        RuntimeError: if no compiler is available or compilation fails.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return compile_harness(out_dir, find_compiler())


def run_reference(
    binary: Path,
    model: str,
    cpu_a: int,
    cpu_b: int,
    iterations: int,
    repeat: int,
    working_set_kb: int,
) -> dict[str, Any]:
    """Run the reference binary once and return its measurements.

    Args:
        binary: path returned by :func:`build_reference`.
        model: ``"process"`` or ``"thread"``.
        cpu_a: CPU of task A (the timing task).
        cpu_b: CPU of task B (the echoing child/thread); equal to ``cpu_a``
            for a same-core measurement.
        iterations: round trips per sample.
        repeat: number of measured repetitions.
        working_set_kb: private buffer each task reads before each pass.

    Returns:
        ``{"net_us": [...], "gross_us": [...], "base_us": [...],
        "net_us_median": float, "gross_us_median": float}`` where the lists
        hold one value per repetition, ``gross = rt / 2``,
        ``net = (rt - 2 * base) / 2`` per hop and ``base`` is one same-CPU
        write+read(+touch) pair, all in microseconds.

    Raises:
        ValueError: on an unknown ``model``.
        RuntimeError: if the binary fails (exit 1: affinity or system call
            error, exit 2: bad arguments), times out, or prints garbage.
    """
    return run_harness(binary, model, (cpu_a, cpu_b), iterations, repeat, working_set_kb)


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        exe = build_reference(Path(tmp))
        args = sys.argv[1:] or ["process", "0", "0", "20000", "5", "0"]
        res = run_reference(exe, args[0], *(int(a) for a in args[1:6]))
        print(f"net_us_median={res['net_us_median']:.3f}", end=" ")
        print(f"gross_us_median={res['gross_us_median']:.3f}")
