"""Copy-on-write after fork: a child's unique memory (proc(5): smaps) is near zero right after
fork and grows only with what it writes, which is why forking is affordable at all.
"""

from __future__ import annotations

import mmap
import os
import resource
import statistics

import psutil

from ostoolkit.budget import check_task_budget
from ostoolkit.children import Children, Fds
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Meter
from ostoolkit.report import Measurement, Progress, make_result
from ostoolkit.units import format_size

COW_WORDS = {  # the child's steps, as its result labels say them
    "fork": "fork",
    "read": "reading all",
    "write10": "writing 10%",
    "write50": "writing 50%",
    "write100": "writing 100%",
}
COW_STEPS = tuple(COW_WORDS)
MAX_COW_MB = 4096
# The parent's memory (MiB) and the children forked one after the other: the careful settings
# (measure_cow's defaults), and the quick run's one child (measure-memory --cow --quick).
COW_SIZE_MB = 64
COW_REPEAT = 3
QUICK_COW_REPEAT = 1


def _cow_child(buf: bytearray, step_r: int, report_w: int) -> None:
    """The forked child: after each step (the fork itself first), report its minor faults and
    wait for the next."""
    done = 0
    for step in COW_STEPS:
        if step == "read":
            buf.find(b"\xff")  # reads every byte; the buffer holds none of them
        elif step != "fork":
            upto = len(buf) * int(step.removeprefix("write")) // 100
            for offset in range(done, upto, mmap.PAGESIZE):  # a byte per page: the page is copied
                buf[offset] = 2
            done = upto
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        os.write(report_w, f"{faults}\n".encode())
        if os.read(step_r, 1) != b"n":
            return


def measure_cow(
    size_mb: int = COW_SIZE_MB, repeat: int = COW_REPEAT, progress: Progress | None = None
) -> Measurement:
    """Fork ``repeat`` children (a progress step each) of a parent holding ``size_mb`` written
    MiB; watch their memory as they write."""
    if not 1 <= size_mb <= MAX_COW_MB:
        raise InvalidRequest(f"--size {size_mb} is outside 1..{MAX_COW_MB} MiB")
    check_task_budget(1, 2 * size_mb * 2**20, "--size")
    pages = size_mb * 2**20 // mmap.PAGESIZE
    buf = bytearray(b"\x01" * (size_mb * 2**20))
    runs = []
    try:
        with Meter() as meter:
            for _ in range(repeat):
                runs.append(_one_cow_run(buf))
                if progress:
                    progress(1)
    finally:
        del buf
    uss = {step: [run[index] for run, _ in runs] for index, step in enumerate(COW_STEPS)}
    faults = [run_faults for _, run_faults in runs]
    results = [
        make_result(
            f"memory.cow.uss_after_{step}",
            f"child's USS after {COW_WORDS[step]}",
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
            faults,
            extra={"pages": pages, "page_size": mmap.PAGESIZE},
            interference=meter.result,
        )
    )
    owned = format_size(statistics.median(uss["fork"]))
    written = statistics.median(uss["write100"]) - statistics.median(uss["fork"])
    findings = (
        f"right after fork the child owns {owned} of its parent's {size_mb} MiB; reading it all "
        f"copies nothing; writing it all makes {format_size(written)} its "
        f"own, with {statistics.median(faults):,.0f} minor faults for "
        f"{pages:,} pages: each first write to a shared page copies it",
    )
    return Measurement(tuple(results), findings, data={"cow_size_mb": size_mb})


def _one_cow_run(buf: bytearray) -> tuple[list[int], int]:
    """Fork one child over ``buf``: its USS at every step, and its minor faults, fork to end."""
    fds = Fds()
    step_r, step_w = fds.pipe()
    report_r, report_w = fds.pipe()
    with Children() as children:
        try:

            def child() -> None:
                fds.close_copies({step_r, report_w})
                _cow_child(buf, step_r, report_w)

            pid = children.fork(child)
            fds.close(report_w)
            proc = psutil.Process(pid)
            uss: list[int] = []
            faults: list[int] = []
            for _ in COW_STEPS:
                line = os.read(report_r, 64)  # one line per step, written whole (< PIPE_BUF)
                if not line:
                    raise OstoolkitError("the copy-on-write child died")
                faults.append(int(line))
                uss.append(proc.memory_full_info().uss)
                os.write(step_w, b"n")
            children.reap(pid)
        finally:
            fds.close_all()
    return uss, faults[-1] - faults[0]
