"""What fork, threads and vfork-style spawning share with the parent (their clone(2) flags
decide it): each new task changes one thing per flag and the parent looks whether it changed
too; with strace, the flags the C library passed are read as well.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ostoolkit.children import Children, Fds, read_before, run_program
from ostoolkit.errors import LimitExceeded, OstoolkitError, describe_os_error
from ostoolkit.report import Measurement, make_result
from ostoolkit.scratch import run_tempdir

# What a new task may share with its parent; the clone(2) flag that shares it is CLONE_<ASPECT>.
ASPECTS = ("vm", "files", "fs", "sighand", "thread")
# The fd number the new task opens its file at, far above anything the parent holds; below
# the soft RLIMIT_NOFILE when that is lower (dup2(2) fails with EBADF past it).
PROBE_FD = 901
PROBE_SIGNAL = signal.SIGUSR2  # the new task sets its disposition to "ignore"
STEP_TIMEOUT_S = 10.0
STRACE_TIMEOUT_S = 60.0
# The vfork-style child: a fresh program (posix_spawn shares memory only until execve), which
# makes the same changes, says what it did, then waits for the parent to look.
SPAWNED = """
import os, signal, sys
os.dup2(os.open({path!r}, os.O_RDONLY), {fd})
os.chdir({cwd!r})
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
sys.stdout.write("done\\n"); sys.stdout.flush()
sys.stdin.read()
"""


@dataclass(frozen=True)
class Observation:
    """What the parent saw after the new task changed each thing, and who the task is."""

    kind: str
    shares: dict[str, bool]
    identity: dict[str, int]
    namespaces_same: bool


def _status(tid: int) -> dict[str, str]:
    """Fields of /proc/<tid>/status (proc(5)): Pid, Tgid, PPid, SigIgn..."""
    lines = Path(f"/proc/{tid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _namespaces(tid: int) -> dict[str, str]:
    """The namespace links of a task (/proc/<tid>/ns/*)."""
    links = {}
    for entry in sorted(Path(f"/proc/{tid}/ns").iterdir()):
        with contextlib.suppress(OSError):
            links[entry.name] = os.readlink(entry)
    return links


def probe_fd() -> int:
    """A free fd number for the probe: PROBE_FD, or the highest free one the limit allows."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = PROBE_FD if soft == resource.RLIM_INFINITY else min(PROBE_FD, soft - 1)
    for fd in range(top, 2, -1):
        try:
            os.fstat(fd)
        except OSError:
            return fd
    raise LimitExceeded(
        f"no free file descriptor below RLIMIT_NOFILE={soft} for the probe: raise ulimit -n"
    )


class _Probe:
    """The parent's view before and after: a marker in memory, fd table, cwd, signal mask."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.probe_file = str(Path(workdir) / "probe")
        Path(self.probe_file).write_text("probe\n")
        self.marker = bytearray(b"parent")
        self.fd = probe_fd()
        try:
            self.cwd = os.getcwd()
        except FileNotFoundError:
            raise OstoolkitError(
                "the working directory was removed: the clone experiment changes directory "
                "and must come back; run ostoolkit from a directory that exists"
            ) from None

    def look(self) -> dict[str, bool]:
        """What changed here after the new task made its changes."""
        try:
            files = os.path.samestat(os.fstat(self.fd), os.stat(self.probe_file))
        except OSError:
            files = False
        # sighand: whether this process ignores PROBE_SIGNAL now, from /proc's SigIgn mask
        return {
            "vm": bytes(self.marker) == b"child!",
            "files": files,
            "fs": os.path.realpath(os.getcwd()) == os.path.realpath(self.workdir),
            "sighand": bool(int(_status(os.getpid())["SigIgn"], 16) & (1 << (PROBE_SIGNAL - 1))),
        }

    def change(self) -> None:
        """What the new task does once it runs: one change per shared thing."""
        self.marker[:] = b"child!"
        fd = os.open(self.probe_file, os.O_RDONLY)
        os.dup2(fd, self.fd)
        os.close(fd)
        os.chdir(self.workdir)
        # SIG_IGN through libc: Python's signal module works in the main thread only.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.restype = ctypes.c_void_p
        libc.signal(int(PROBE_SIGNAL), ctypes.c_void_p(1))

    def restore(self) -> None:
        """Undo in the parent whatever a sharing task changed."""
        self.marker[:] = b"parent"
        with contextlib.suppress(OSError):
            os.close(self.fd)
        os.chdir(self.cwd)
        signal.signal(PROBE_SIGNAL, signal.SIG_DFL)


def _await(fd: int, what: str) -> None:
    """Wait (bounded) for one byte on a pipe from the new task; its end is end-of-file."""
    done = read_before(fd, time.monotonic() + STEP_TIMEOUT_S)
    if done is None:
        raise OstoolkitError(f"the {what} did not report its changes in time")
    if not done:
        raise OstoolkitError(f"the {what} ended before it reported its changes")


def _observed(kind: str, probe: _Probe, tid: int) -> Observation:
    """What the parent sees now that task ``tid`` made its changes, and who that task is."""
    shares = probe.look()
    fields = _status(tid)  # the task id is /proc's "Pid"
    identity = {"tid": int(fields["Pid"]), "tgid": int(fields["Tgid"]), "ppid": int(fields["PPid"])}
    shares["thread"] = identity["tgid"] == os.getpid()
    return Observation(kind, shares, identity, _namespaces(tid) == _namespaces(os.getpid()))


def observe_fork(probe: _Probe, children: Children) -> Observation:
    """A forked child makes its changes; the parent looks while the child waits."""
    fds = Fds()
    done_r, done_w = fds.pipe()
    hold_r, _ = fds.pipe()  # the child waits on it, holding still, until it is ended
    try:

        def child() -> None:
            probe.change()
            os.write(done_w, b"d")
            os.read(hold_r, 1)

        pid = children.fork(child)
        fds.close(done_w)  # the child's copy is the only one left: its death is end-of-file
        _await(done_r, "forked child")
        return _observed("fork", probe, pid)
    finally:
        fds.close_all()
        probe.restore()


def observe_thread(probe: _Probe, children: Children) -> Observation:
    """A thread makes its changes; the parent (another thread) looks while it waits. It is
    joined before its pipes close: about to read a closed fd, it could read a file reusing it."""
    fds = Fds()
    done_r, done_w = fds.pipe()
    hold_r, hold_w = fds.pipe()
    tid: list[int] = []
    failed: list[str] = []

    def thread() -> None:
        tid.append(threading.get_native_id())
        try:
            probe.change()
        except OSError as err:
            failed.append(str(describe_os_error(err, "the thread's changes")))
        finally:
            os.write(done_w, b"d")
            os.read(hold_r, 1)

    worker = children.start_thread(thread, lambda: None, name="ostoolkit-clone")
    try:
        _await(done_r, "thread")
        if failed:
            raise OstoolkitError(failed[0])
        return _observed("thread", probe, tid[0])
    finally:
        os.write(hold_w, b"x")
        worker.join(STEP_TIMEOUT_S)
        fds.close_all()
        probe.restore()


def observe_vfork(probe: _Probe, children: Children) -> Observation:
    """A posix_spawn'ed program makes the same changes; it shares memory only until execve."""
    code = SPAWNED.format(path=probe.probe_file, fd=probe.fd, cwd=probe.workdir)
    pipe = subprocess.PIPE
    proc = children.popen([sys.executable, "-c", code], stdin=pipe, stdout=pipe, stderr=pipe)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], STEP_TIMEOUT_S)
        line = proc.stdout.readline() if ready else b""
        if line == b"done\n":
            return _observed("vfork", probe, proc.pid)
    finally:
        children.end(proc.pid)
        _, err = proc.communicate()
        probe.restore()
    last = (err.decode(errors="replace").strip().splitlines() or ["no error output"])[-1]
    raise OstoolkitError(f"the spawned program did not report its changes ({line!r}): {last}")


TRACED = """
import os, subprocess, threading
os.write(2, b"@fork\\n")
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
os.write(2, b"@thread\\n")
t = threading.Thread(target=lambda: None); t.start(); t.join()
os.write(2, b"@vfork\\n")
subprocess.run([{true!r}])
"""
CLONE_LINE = re.compile(r"^(\d+)\s+(clone3?|vfork|fork)\((.*)$")
MARKER = re.compile(r'^(\d+)\s+write\(2, "@(\w+)\\n"')


def parse_strace(text: str) -> dict[str, str]:
    """Map each marked creation (fork, thread, vfork) to the flags of the call that followed."""
    flags: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if marker := MARKER.match(line):
            current = marker.group(2)
            continue
        call = CLONE_LINE.match(line)
        if call and current and current not in flags:
            name, args = call.group(2), call.group(3)
            found = re.search(r"flags=([A-Z_|0-9]+)", args)
            flags[current] = found.group(1) if found else f"{name}()"
            if name == "vfork":
                flags[current] = "vfork() (CLONE_VM|CLONE_VFORK)"
    return flags


def trace_flags() -> tuple[dict[str, str], str | None]:
    """Run the three creations under strace; return their flags, or why that was skipped. The
    trace is in the run's scratch directory, which the next run sweeps if this one is killed."""
    strace, true = shutil.which("strace"), shutil.which("true")
    if strace is None or true is None:
        return {}, "strace is not installed: showing the experiments alone (Debian: strace)"
    with run_tempdir() as scratch, tempfile.TemporaryDirectory(dir=scratch) as folder:
        out = Path(folder) / "trace"
        traced = [sys.executable, "-c", TRACED.format(true=true)]
        calls = "trace=clone,clone3,vfork,fork,write"
        argv = [strace, "-f", "-qq", "-o", str(out), "-e", calls, *traced]
        try:
            done = run_program(argv, STRACE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {}, "strace timed out: showing the experiments alone"
        if done.returncode != 0 or not out.exists():
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {}, f"strace failed ({reason}): showing the experiments alone"
        return parse_strace(out.read_text()), None


def measure_clone(progress: Callable[[int], None] | None = None) -> Measurement:
    """Create a forked child, a thread and a spawned program; show what each shares. Their
    workdir and probe file are in the run's scratch directory (``run_tempdir``)."""
    observations = []
    with run_tempdir() as scratch:
        with tempfile.TemporaryDirectory(dir=scratch) as workdir, Children() as children:
            probe = _Probe(workdir)
            for observe in (observe_fork, observe_thread, observe_vfork):
                observations.append(observe(probe, children))
                if progress:
                    progress(1)
        flags, skipped = trace_flags()
    return _to_measurement(observations, flags, skipped)


def _to_measurement(
    observations: list[Observation], flags: dict[str, str], skipped: str | None
) -> Measurement:
    """Results (one bool per kind and aspect), the side-by-side table, and findings."""
    results = [
        make_result(
            f"clone.{obs.kind}.shares.{aspect}",
            f"{obs.kind}: shares {aspect}",
            "bool",
            [1.0 if obs.shares[aspect] else 0.0],
            extra={
                **({"flags": flags[obs.kind]} if flags.get(obs.kind) else {}),
                **obs.identity,
                "namespaces_same": obs.namespaces_same,
            },
            exact=True,  # what the kernel did, seen once: yes or no, no spread
        )
        for obs in observations
        for aspect in ASPECTS
    ]
    rows: list[dict[str, Any]] = []
    for aspect in ASPECTS:
        flag = f"CLONE_{aspect.upper()}"
        row: dict[str, Any] = {"shared with the parent?": f"{aspect} ({flag})"}
        for obs in observations:
            flag_seen = flag in flags.get(obs.kind, "")
            mark = "shared" if obs.shares[aspect] else "copied"
            row[obs.kind] = f"{mark}{' · flag set' if flag_seen else ''}"
        rows.append(row)
    ids = {o.kind: "{tid} / {tgid} / {ppid}".format(**o.identity) for o in observations}
    rows.append({"shared with the parent?": "pid / tgid / ppid", **ids})
    same = {o.kind: "same" if o.namespaces_same else "different" for o in observations}
    rows.append({"shared with the parent?": "namespaces (/proc/*/ns)", **same})
    columns = [["shared with the parent?", "text"], *([o.kind, "text"] for o in observations)]
    note = (
        "vfork: a posix_spawn/subprocess child shares memory only until execve (the parent "
        "waits), so the new program made the changes"
    )
    table = {"columns": columns, "rows": rows, "replaces_results": True, "note": note}
    findings = [f"{kind}: clone flags {value}" for kind, value in flags.items()]
    warnings = [skipped] if skipped else []
    return Measurement(
        tuple(results), tuple(findings), tuple(warnings), {"table": table, "flags": flags}
    )
