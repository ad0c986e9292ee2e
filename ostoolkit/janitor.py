"""A watcher, in its own session with no parent-death signal, that cleans up after ostoolkit if
it is killed: the server groups it was told of first, then the run directory (docs/guarantees.md).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from pathlib import Path

import psutil

from ostoolkit.children import Children, ClosedOnExit, Fds
from ostoolkit.scratch import remove_run_dir

DONE = b"done"
# How long the janitor waits for killed processes to exit, and ostoolkit for the janitor.
GONE_TIMEOUT_S = 5.0
_IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE)


def _group_members(groups: set[int]) -> list[int]:
    """Live (not zombie) processes in any of ``groups``."""
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) in groups and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
    return members


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Wait (pidfd_open(2), no polling) until each process has exited, or the timeout."""
    fds = []
    for pid in pids:
        with contextlib.suppress(OSError):
            fds.append(os.pidfd_open(pid))
    deadline = time.monotonic() + timeout
    try:
        waiting = set(fds)
        while waiting:
            left = deadline - time.monotonic()
            ready, _, _ = select.select(list(waiting), [], [], max(left, 0))
            if not ready:
                return
            waiting.difference_update(ready)
    finally:
        for fd in fds:
            os.close(fd)


def _watch(read_fd: int, run_dirs: tuple[Path, ...]) -> None:
    """The janitor's life: collect groups until ``done`` (exit) or end-of-file: then kill every
    process of those groups, wait for them and remove the run directories."""
    for sig in _IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    os.setsid()
    os.closerange(0, read_fd)
    os.closerange(read_fd + 1, os.sysconf("SC_OPEN_MAX"))
    data = b""
    while chunk := os.read(read_fd, 4096):
        data += chunk
    words = data.split()
    if DONE in words:
        return
    groups = {int(word) for word in words if word.isdigit()}
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    _wait_gone(_group_members(groups), GONE_TIMEOUT_S)
    for run_dir in run_dirs:
        remove_run_dir(run_dir)


class Janitor(ClosedOnExit):
    """``start`` it before any server, ``watch`` each server's group, ``close`` it at the end."""

    def __init__(self, *run_dirs: Path) -> None:
        self.run_dirs = run_dirs
        self.children = Children()
        self.fds = Fds()
        self.pid: int | None = None
        self.write_fd = -1

    def start(self) -> Janitor:
        """Fork the janitor; it holds only the read end of its pipe."""
        read_fd, self.write_fd = self.fds.pipe()
        # bare: no own group and no parent-death signal; it makes its own session at once.
        self.pid = self.children.fork(lambda: _watch(read_fd, self.run_dirs), bare=True)
        self.fds.close(read_fd)
        return self

    def watch(self, pgid: int) -> None:
        """Tell the janitor about a process group to kill if ostoolkit dies."""
        os.write(self.write_fd, f"{pgid}\n".encode())

    def close(self) -> None:
        """Tell the janitor all is well, let it exit and reap it (kill it if it hangs)."""
        try:
            if self.pid is not None and self.write_fd >= 0:
                with contextlib.suppress(OSError):
                    os.write(self.write_fd, DONE + b"\n")
                self.fds.close_all()  # the janitor reads end-of-file after done, and exits
                self.children.reap(self.pid, GONE_TIMEOUT_S)
        finally:
            self.fds.close_all()
            self.write_fd = -1
            self.children.close()
