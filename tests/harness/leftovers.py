"""Finding what a run left behind: its processes (by the marker in their environment, see
below), the /dev/shm entries they made, the files in its folders; and killing what is left.
"""

# Every run gets a unique marker in its environment (``OSTOOLKIT_TEST_MARKER=<uuid4>``), which
# every process it forks or execs inherits, so the processes of one run can be found by reading
# ``/proc/PID/environ`` of every process, whoever their parent is now (an orphan is reparented to
# PID 1, so ``psutil.children`` would miss it). A zombie's environ reads empty, so a process once
# seen with the marker is remembered by (pid, start time). A zombie counts as left behind while
# its parent is a live process of the run (that parent failed to reap it); a zombie already
# handed to PID 1 has died and waits for init, which on the Firecracker VM this was written on
# reaps orphans only every 1-2 s, so it is not counted.

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.waiting import POLL_S, poll_until

MARKER_VAR = "OSTOOLKIT_TEST_MARKER"
KILL_WAIT_S = 5.0  # how long kill_all waits for the processes it killed to exit
SHM = Path("/dev/shm")
# Names our runs could leave in /dev/shm: multiprocessing semaphores and shared memory, and
# anything ostoolkit names itself. PostgreSQL test servers make their own (PostgreSQL.NNN).
SHM_PATTERNS = (
    re.compile(r"^sem\.mp-"),
    re.compile(r"^mp-"),
    re.compile(r"^psm_"),
    re.compile(r"ostoolkit", re.IGNORECASE),
)
SHM_MAPPING = re.compile(r"/dev/shm/(\S+)")
SHM_SCAN_EVERY = 4  # polls between two reads of the run's /proc/PID/maps


@dataclass(frozen=True)
class Proc:
    """One process as seen in /proc: identity (pid, start time), state and command line."""

    pid: int
    start: int
    state: str
    cmdline: str
    ppid: int

    def describe(self) -> str:
        return f"pid {self.pid} [{self.state}, ppid {self.ppid}] {self.cmdline!r}"


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat the harness uses."""

    comm: str
    state: str
    ppid: int
    start: int


def _stat(pid: int) -> Stat | None:
    """A process's /proc/PID/stat fields, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.find("(") + 1 : text.rfind(")")]
    fields = text[text.rfind(")") + 2 :].split()
    return Stat(comm, fields[0], int(fields[1]), int(fields[19]))


def _cmdline(pid: int, comm: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        raw = b""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or f"[{comm}]"


def _shm_mapped(pid: int) -> set[str]:
    """Names of the /dev/shm files a process has mapped (POSIX semaphores, shared memory)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    return {m.group(1) for m in SHM_MAPPING.finditer(maps)}


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def marked_processes(marker: str) -> dict[int, Proc]:
    """Every live process whose environment carries ``marker`` (zombies have none to read)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found: dict[int, Proc] = {}
    for pid in _pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle not in environ.split(b"\0"):
            continue
        info = _stat(pid)
        if info is not None:
            found[pid] = Proc(pid, info.start, info.state, _cmdline(pid, info.comm), info.ppid)
    return found


@dataclass
class MarkerWatch:
    """Every process ever seen with one run's marker, and which of them still exist."""

    marker: str
    seen: dict[tuple[int, int], Proc] = field(default_factory=dict)
    shm_seen: set[str] = field(default_factory=set)  # /dev/shm names the run's processes mapped
    polls: int = 0

    def poll(self) -> dict[int, Proc]:
        current = marked_processes(self.marker)
        for proc in current.values():
            self.seen.setdefault((proc.pid, proc.start), proc)
        if self.polls % SHM_SCAN_EVERY == 0:
            for pid in current:
                self.shm_seen |= _shm_mapped(pid)
        self.polls += 1
        return current

    def alive(self) -> list[Proc]:
        """Marked processes still there: live ones, and zombies a live marked parent holds.

        A zombie's environ is empty, so zombies are found by their parent, seen or not.
        """
        current = self.poll()
        still = {pid: p for pid, p in current.items() if p.state != "Z"}
        if not still:
            return []
        for pid in _pids():
            info = _stat(pid)
            if info is not None and info.state == "Z" and info.ppid in still:
                seen = self.seen.get((pid, info.start))
                cmdline = seen.cmdline if seen else f"[{info.comm}]"
                still[pid] = Proc(pid, info.start, info.state, cmdline, info.ppid)
        return sorted(still.values(), key=lambda p: p.pid)

    def children_seen(self, main_pid: int) -> list[Proc]:
        """Processes other than the main one that carried the marker at some poll."""
        return [p for p in self.seen.values() if p.pid != main_pid]

    def wait_gone(self, timeout: float) -> list[Proc]:
        """Poll until no marked process exists or ``timeout`` passes; return what is left."""
        poll_until(lambda: not self.alive(), timeout, POLL_S * 4)
        return self.alive()

    def kill_all(self, timeout: float = KILL_WAIT_S) -> None:
        """SIGKILL every marked process still there (only ever processes our run started), and
        wait until each has exited: a killed process lives on while the kernel tears it down."""
        pidfds = []
        for proc in self.alive():
            info = _stat(proc.pid)
            if info is None or info.start != proc.start:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                pidfds.append(os.pidfd_open(proc.pid))  # before the kill: the pid is still it
                os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        try:
            for pidfd in pidfds:  # readable once that process has exited
                select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            for pidfd in pidfds:
                os.close(pidfd)


def shm_ours() -> set[str]:
    """Entries of /dev/shm whose names look like ours (see SHM_PATTERNS)."""
    try:
        names = os.listdir(SHM)
    except OSError:
        return set()
    return {n for n in names if any(p.search(n) for p in SHM_PATTERNS)}


def _shm_held_by_others(marker: str, names: Iterable[str]) -> set[str]:
    """Those of ``names`` a live process without ``marker`` has open or mapped.

    Another test process running at the same time (another engineer's run, a later test)
    may create sem.mp-* entries of its own; an entry somebody else still holds is theirs.
    An entry nobody holds any more is a leak, whoever made it.
    """
    wanted = {str(SHM / n) for n in names}
    if not wanted:
        return set()
    needle = f"{MARKER_VAR}={marker}".encode()
    held: set[str] = set()
    for pid in _pids():
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                continue
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        held |= {w for w in wanted if w in maps}
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target in wanted:
                        held.add(target)
    return {Path(h).name for h in held}


def new_shm(before: set[str], marker: str) -> list[str]:
    """Our-looking /dev/shm entries that appeared since ``before`` and nobody else holds."""
    new = shm_ours() - before
    return sorted(new - _shm_held_by_others(marker, new))


def remove_shm(names: Iterable[str]) -> None:
    """Unlink /dev/shm entries a run of ours leaked, so that later tests start clean."""
    for name in names:
        with contextlib.suppress(OSError):
            (SHM / name).unlink()


def listing(folder: Path) -> list[str]:
    """Every entry below ``folder`` (relative paths), hidden ones included."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def wait_gone(marker: str, timeout: float, but: int = 0) -> list[Proc]:
    """Poll until no process with ``marker`` (``but`` left out) is alive, or ``timeout``."""

    def alive() -> list[Proc]:
        return [p for p in marked_processes(marker).values() if p.pid != but]

    poll_until(lambda: not alive(), timeout)
    return alive()


def kill_marked(marker: str) -> None:
    """SIGKILL what is left of a marked run after a failed check."""
    for proc in marked_processes(marker).values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)


def run_dirs(folder: Path) -> list[str]:
    """The ostoolkit run directories in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("ostoolkit-"))
