"""Build and run the C reference implementation (``lat_pipe.c``).

The reference measures context-switch cost with the pipe ping-pong method
(lmbench ``lat_ctx`` / ``perf bench sched pipe``) and subtracts a same-CPU
baseline of the same system calls.  The accuracy benchmark compares
ostoolkit's own numbers against it.

Example::

    binary = build_reference(Path("benchmarks/build"))
    result = run_reference(binary, "process", 0, 0, 20000, 15, 0)
    result["net_us_median"]
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().with_name("lat_pipe.c")
BINARY_NAME = "lat_pipe"
CFLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-pthread")
RUN_TIMEOUT_S = 120.0
MODELS = ("process", "thread")

_REP_RE = re.compile(r"^rt_ns=(?P<rt>\S+) base_ns=(?P<base>\S+)$")
_SUMMARY_RE = re.compile(r"^net_us_median=(?P<net>\S+) gross_us_median=(?P<gross>\S+)$")


def find_compiler() -> str:
    """Return the path of a C compiler (``gcc``, else ``cc``).

    Raises:
        RuntimeError: if neither is on ``PATH``.
    """
    for name in ("gcc", "cc"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        "no C compiler found: neither 'gcc' nor 'cc' is on PATH "
        "(install gcc, e.g. 'apt-get install gcc', to build the lat_pipe reference)"
    )


def build_reference(out_dir: Path) -> Path:
    """Compile ``lat_pipe.c`` into ``out_dir`` and return the binary's path.

    ``out_dir`` is created if needed.  The binary is rebuilt on every call,
    which takes well under a second.

    Raises:
        RuntimeError: if no compiler is available or compilation fails.
    """
    compiler = find_compiler()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / BINARY_NAME
    cmd = [compiler, *CFLAGS, "-o", str(binary), str(SOURCE)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"compiling {SOURCE.name} failed (exit {proc.returncode}): "
            f"{' '.join(cmd)}\n{proc.stderr.strip()}"
        )
    return binary


def _float(text: str, line: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise RuntimeError(f"unparseable number in lat_pipe output: {line!r}") from None


def parse_output(stdout: str) -> dict[str, Any]:
    """Parse ``lat_pipe`` stdout into the dict documented in :func:`run_reference`.

    Raises:
        RuntimeError: if the output is not in the expected format.
    """
    net_us: list[float] = []
    gross_us: list[float] = []
    base_us: list[float] = []
    summary: dict[str, float] | None = None
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        if m := _REP_RE.match(line):
            rt_ns = _float(m["rt"], line)
            base_ns = _float(m["base"], line)
            gross_us.append(rt_ns / 2.0 / 1000.0)
            net_us.append((rt_ns - 2.0 * base_ns) / 2.0 / 1000.0)
            base_us.append(base_ns / 1000.0)
        elif m := _SUMMARY_RE.match(line):
            summary = {
                "net_us_median": _float(m["net"], line),
                "gross_us_median": _float(m["gross"], line),
            }
        else:
            raise RuntimeError(f"unexpected line in lat_pipe output: {line!r}")
    if summary is None or not net_us:
        raise RuntimeError(f"incomplete lat_pipe output:\n{stdout}")
    return {"net_us": net_us, "gross_us": gross_us, "base_us": base_us, **summary}


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
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    cmd = [
        str(binary),
        model,
        str(cpu_a),
        str(cpu_b),
        str(iterations),
        str(repeat),
        str(working_set_kb),
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"lat_pipe timed out after {RUN_TIMEOUT_S:.0f} s: {' '.join(cmd)}"
        ) from None
    if proc.returncode != 0:
        raise RuntimeError(
            f"lat_pipe failed (exit {proc.returncode}): {' '.join(cmd)}: {proc.stderr.strip()}"
        )
    return parse_output(proc.stdout)


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        exe = build_reference(Path(tmp))
        args = sys.argv[1:] or ["process", "0", "0", "20000", "5", "0"]
        res = run_reference(exe, args[0], *(int(a) for a in args[1:6]))
        print(f"net_us_median={res['net_us_median']:.3f}", end=" ")
        print(f"gross_us_median={res['gross_us_median']:.3f}")
