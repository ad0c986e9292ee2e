"""Copy-on-write after fork: a child's unique memory as it reads and writes its parent's.

``measure_cow`` shows why forking is affordable at all: a child's unique memory right after
fork is near zero and grows only with what it writes (proc(5): smaps). The interference
shares are context only: they cannot change a byte or a fault count.
"""

from __future__ import annotations

import mmap
import os
import resource
import statistics

import psutil

from ostoolkit.budget import check_task_budget
from ostoolkit.children import Children
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Meter
from ostoolkit.report import Measurement, Progress, make_result
from ostoolkit.units import format_size

COW_STEPS = ("fork", "read", "write10", "write50", "write100")
MAX_COW_MB = 4096
# The parent's memory (MiB) and the children forked one after the other: the careful settings
# (measure_cow's defaults), and the quick run's one child (measure-memory --cow --quick).
COW_SIZE_MB = 64
COW_REPEAT = 3
QUICK_COW_REPEAT = 1


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
    size_mb: int = COW_SIZE_MB, repeat: int = COW_REPEAT, progress: Progress | None = None
) -> Measurement:
    """Fork a child of a parent holding ``size_mb`` written MiB; watch its memory as it writes.

    It reports one progress step per child (``repeat`` in all).
    """
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
    owned = format_size(statistics.median(uss["fork"]))
    written = statistics.median(uss["write100"]) - statistics.median(uss["fork"])
    findings = (
        f"right after fork the child owns {owned} of its parent's {size_mb} MiB; reading it all "
        f"copies nothing; writing it all makes {format_size(written)} its "
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
