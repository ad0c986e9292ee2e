"""The CPU's hardware counters: perf_event_open(2) via ctypes, and ``perf stat`` beside.

Instructions and cycles of the calling thread and the tasks it starts; without a PMU (most
VMs) the reason in words. How, and why libc's syscall(2): docs/method.md, "switch-rate".
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from ostoolkit.children import pinned_main, run_program
from ostoolkit.procfs import read_perf_paranoid

# perf_event_open(2)'s number per machine (the kernel's syscall tables), a row per number.
SYS_PERF_EVENT_OPEN = {
    "x86_64": 298,
    "aarch64": 241, "riscv64": 241, "loongarch64": 241,
    "ppc64le": 319, "ppc64": 319,
    "s390x": 331,
    "i686": 336, "i386": 336,
    "armv7l": 364, "armv6l": 364,
}  # fmt: skip
# PERF_TYPE_HARDWARE's PERF_COUNT_HW_INSTRUCTIONS and _CPU_CYCLES (linux/perf_event.h).
PERF_TYPE_HARDWARE, PERF_FLAG_FD_CLOEXEC, EVENTS = 0, 8, {"instructions": 1, "cycles": 0}
READ_TIMES = 1 | 2  # read_format: PERF_FORMAT_TOTAL_TIME_ENABLED | _RUNNING (multiplexing)
INHERIT, EXCLUDE_KERNEL, EXCLUDE_HV = 1, 5, 6  # bits of the bitfield word, from ``disabled``
# struct perf_event_attr to PERF_ATTR_SIZE_VER8 (136 bytes), its bitfields as one word (flags).
ATTR_LAYOUT = (
    "type I, size I, config Q, sample_period Q, sample_type Q, read_format Q, flags Q, "
    "wakeup_events I, bp_type I, config1 Q, config2 Q, branch_sample_type Q, "
    "sample_regs_user Q, sample_stack_user I, clockid i, sample_regs_intr Q, aux_watermark I, "
    "sample_max_stack H, reserved_2 H, aux_sample_size I, aux_action I, sig_data Q, config3 Q"
)
CTYPES = {"I": ctypes.c_uint32, "i": ctypes.c_int32, "H": ctypes.c_uint16, "Q": ctypes.c_uint64}
NO_PMU = {
    errno.ENOENT: "the CPU shows no PMU, usual in a VM",
    errno.ENODEV: "this CPU has none",
    errno.EOPNOTSUPP: "the PMU cannot count these events",
    errno.ENOSYS: "no perf_event_open(2) (no CONFIG_PERF_EVENTS, or a seccomp filter)",
}
NOT_PERMITTED = (errno.EACCES, errno.EPERM)
PERF_STAT_EVENTS, PERF_TIMEOUT_S = ("instructions", "cycles", "context-switches"), 30.0
NOT_COUNTED = "no hardware counters ({}): cycles come from the CPU's clock, instructions uncounted"
USER_ONLY = (
    "hardware counters count user space only (kernel.perf_event_paranoid): the kernel's part "
    "of a switch, most of it, is left out of instructions and cycles"
)


class PerfEventAttr(ctypes.Structure):
    """struct perf_event_attr (include/uapi/linux/perf_event.h), laid out by ATTR_LAYOUT."""

    _fields_ = [(n, CTYPES[t]) for n, t in (f.split() for f in ATTR_LAYOUT.split(", "))]


def attr_bit(bit: int, byteorder: str = sys.byteorder) -> int:
    """A bitfield's bit in the word: GCC fills from the low bit, on big-endian from the high."""
    return 1 << bit if byteorder == "little" else 1 << (63 - bit)


def make_attr(config: int, user_only: bool) -> PerfEventAttr:
    """A counting (not sampling) hardware event, inherited by tasks started after it opens."""
    flags = attr_bit(INHERIT) | (attr_bit(EXCLUDE_KERNEL) | attr_bit(EXCLUDE_HV)) * user_only
    size = ctypes.sizeof(PerfEventAttr)
    return PerfEventAttr(
        type=PERF_TYPE_HARDWARE, size=size, config=config, flags=flags, read_format=READ_TIMES
    )


def perf_event_open(
    attr: PerfEventAttr, pid: int = 0, cpu: int = -1, flags: int = PERF_FLAG_FD_CLOEXEC
) -> int:
    """perf_event_open(2) via libc's syscall(2), an fd: by default for the calling thread on
    any CPU; ``pid`` -1 and a ``cpu``: every task on that CPU (measure/trace.py)."""
    number = SYS_PERF_EVENT_OPEN.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"no perf_event_open number known for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    args = (ctypes.c_long(a) for a in (pid, cpu, -1, flags))  # no group
    fd = libc.syscall(ctypes.c_long(number), ctypes.byref(attr), *args)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(fd)


@dataclass
class Counters:
    """Open instruction and cycle counters of this thread and of the tasks it starts after."""

    fds: dict[str, int]
    user_only: bool

    def read(self) -> dict[str, float]:
        """Each event's count so far, scaled up where the kernel multiplexed it."""
        counts = {}
        for name, fd in self.fds.items():
            value, enabled, running = struct.unpack("=3Q", os.read(fd, 24))
            counts[name] = value * enabled / running if running else 0.0
        return counts

    def close(self) -> None:
        """Close every counter."""
        while self.fds:
            os.close(self.fds.popitem()[1])


def _why(err: OSError, user_only: bool) -> str:
    """perf_event_open's failure in words, with its errno's name."""
    code = err.errno or 0
    name = {errno.EOPNOTSUPP: "EOPNOTSUPP"}.get(code) or errno.errorcode.get(code, str(code))
    scope = "even user space" if user_only else "the kernel"
    why = f"not permitted to count {scope} (perf_event_paranoid)" if code in NOT_PERMITTED else ""
    return f"perf_event_open: {name}, {why or NO_PMU.get(code, err.strerror or 'failed')}"


def open_counters() -> Counters | str:
    """Open both counters for user and kernel where permitted, else user space only; or why not."""
    paranoid = read_perf_paranoid()  # above 1, the unprivileged may count user space only
    restricted = paranoid is not None and paranoid > 1 and os.geteuid() != 0
    why = "not tried"
    for user_only in (True,) if restricted else (False, True):
        counters = Counters({}, user_only)
        try:
            for name, config in EVENTS.items():
                counters.fds[name] = perf_event_open(make_attr(config, user_only))
            return counters
        except OSError as err:
            counters.close()
            why = _why(err, user_only)
            if err.errno not in NOT_PERMITTED:
                break
    return why


def pmu_status() -> tuple[dict[str, Any], list[str]]:
    """Whether the hardware counters open here (``data.pmu``), and the one warning if not."""
    probe = open_counters()
    if not isinstance(probe, Counters):
        return {"available": False, "reason": probe}, [NOT_COUNTED.format(probe)]
    probe.close()
    pmu = {"available": True, "events": list(EVENTS), "user_only": probe.user_only}
    return pmu, [USER_ONLY] if probe.user_only else []


def parse_perf_stat(text: str) -> dict[str, float | None]:
    """``perf stat -x,`` lines (value,unit,event,...) by event; None where not counted."""
    counts: dict[str, float | None] = {}
    for line in text.splitlines():
        parts = line.split(",")
        name = re.sub(r"^\w+/(.+)/$", r"\1", parts[2]).split(":")[0] if len(parts) > 2 else ""
        if name not in PERF_STAT_EVENTS:
            continue
        try:
            value: float | None = float(parts[0])
        except ValueError:  # <not supported>, <not counted>
            value = None
        known = counts.get(name)  # a hybrid CPU prints one line per core type: add them
        counts[name] = value if known is None or value is None else known + value
    return counts


def perf_stat_check(cpu: int, loops: int) -> tuple[list[str], list[str], dict[str, Any]]:
    """``perf stat`` over ``perf bench sched pipe`` on the same CPU: findings, warnings, data."""
    perf = shutil.which("perf")
    if perf is None:
        return [], ["perf stat cross-check skipped: perf is not installed (Debian: linux-perf)"], {}
    pipe = [perf, "bench", "sched", "pipe", "-l", str(loops)]
    argv = [perf, "stat", "-x,", "-e", ",".join(PERF_STAT_EVENTS), "--", *pipe]
    try:
        with pinned_main(cpu):  # perf and its two tasks inherit this single-CPU mask
            done = run_program(argv, PERF_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return [], ["perf stat cross-check: perf timed out; skipped"], {}
    counts = parse_perf_stat(done.stderr)
    switches = counts.get("context-switches")
    if done.returncode != 0 or not switches:
        reason = (done.stderr.strip().splitlines() or ["no context-switches count"])[-1]
        return [], [f"perf stat cross-check failed: {reason}"], {}
    instructions, cycles = counts.get("instructions"), counts.get("cycles")
    where = f"perf stat over perf bench sched pipe ({switches:,.0f} switches on CPU {cpu})"
    if instructions is None or cycles is None:
        finding = f"{where} cannot count instructions or cycles here either (<not supported>)"
    else:
        finding = (
            f"{where}: {instructions / switches:,.0f} instructions and {cycles / switches:,.0f} "
            "cycles per switch, gross (perf's own loop, write and read included)"
        )
    return [finding], [], {"command": " ".join(argv[1:]), "counts": counts}
