"""Running the installed entry point as a real process and finding what it left behind.

Every run gets a unique marker in its environment (``OSTOOLKIT_TEST_MARKER=<uuid4>``), which
every process it forks or execs inherits, so the processes of one run can be found by reading
``/proc/PID/environ`` of every process, whoever their parent is now (an orphan is reparented to
PID 1, so ``psutil.children`` would miss it). A zombie's environ reads empty, so a process once
seen with the marker is remembered by (pid, start time). A zombie counts as left behind while
its parent is a live process of the run (that parent failed to reap it); a zombie already
handed to PID 1 has died and waits for init, which on the Firecracker VM this was written on
reaps orphans only every 1-2 s, so it is not counted.

The tests' one helpers module: the entry point's path (ENTRY), the bounded polls every test
waits with (poll_until, wait_until; never a sleep for a guessed time), marked runs (signal,
bad-input, memory, spawn, clone tests) and docs/results.md's rows. It never kills anything but
processes carrying the marker of a run it started.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

ENTRY = Path(sys.executable).with_name("ostoolkit")
REPO = Path(__file__).resolve().parent.parent
MARKER_VAR = "OSTOOLKIT_TEST_MARKER"
POLL_S = 0.01  # a /proc scan takes about 1 ms; this keeps the poller near 10 % of a CPU
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
# What an error dump looks like on stderr, wherever it is.
ERROR_DUMP = re.compile(
    r"Traceback|Aborted!|Exception ignored|"
    r'^\s*File ".*", line \d+|KeyboardInterrupt|BrokenPipeError|Fatal Python error|'
    r"Segmentation fault|core dumped|resource_tracker|leaked (semaphore|shared_memory)|"
    r"UserWarning|RuntimeWarning",
    re.MULTILINE,
)
# click's usage block around an "Error:" line; only the "Error:" line counts as the message.
CLICK_USAGE_LINE = re.compile(r"^Usage: |^Try '.*(-h|--help)' for help\.?$")


T = TypeVar("T")


def poll_until(ready: Callable[[], T], timeout: float, poll_s: float = POLL_S) -> T:
    """Call ``ready`` every ``poll_s`` until it returns something true or ``timeout`` passes.

    Returns its last value (false if the deadline passed): the one bounded poll of the tests.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll_s)


def wait_until(
    ready: Callable[[], T], timeout: float, failure: str | Callable[[], str], poll_s: float = POLL_S
) -> T:
    """poll_until, failing the test with ``failure`` (or what it returns) if ``ready`` never was."""
    value = poll_until(ready, timeout, poll_s)
    assert value, failure if isinstance(failure, str) else failure()
    return value


def marked_env(**extra: str) -> tuple[str, dict[str, str]]:
    """A fresh marker and the environment that carries it (plus ``extra`` variables)."""
    marker = str(uuid.uuid4())
    return marker, {**os.environ, MARKER_VAR: marker, **extra}


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


@dataclass
class Run:
    """What one run of the entry point did."""

    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool
    children: list[Proc]
    leftovers: list[Proc]
    shm_seen: set[str]

    def describe(self) -> str:
        kids = ", ".join(p.describe() for p in self.children[:5]) or "none seen"
        left = "; ".join(p.describe() for p in self.leftovers) or "none"
        return (
            f"argv={self.argv!r}\nexit={self.returncode} after {self.elapsed:.2f} s"
            f"{' (TIMED OUT, killed)' if self.timed_out else ''}\n"
            f"children seen: {kids}\nleft behind: {left}\n"
            f"stderr ({len(self.stderr)} chars):\n{tail(self.stderr)}"
        )


def tail(text: str, lines: int = 15, width: int = 300) -> str:
    """The last lines of ``text``, each cut to ``width`` characters, for a failure message."""
    kept = text.splitlines()[-lines:]
    return "\n".join(f"  | {line[:width]}{'…' if len(line) > width else ''}" for line in kept)


def read_back(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", errors="replace")


def run_marked(
    args: list[str],
    *,
    env: Mapping[str, str],
    marker: str,
    timeout: float = 20.0,
    stdout: int | IO[Any] | None = None,
    cwd: Path | str | None = None,
    preexec_fn: Callable[[], None] | None = None,
    settle: float = 1.0,
) -> Run:
    """Run ``args`` in a new session with stdin /dev/null, polling its marked processes.

    stdout and stderr go to anonymous files unless ``stdout`` is given (a pipe end, /dev/full,
    ...). On timeout the whole session and every marked process are killed. After the exit,
    marked processes are polled for up to ``settle`` seconds; those left are reported in
    ``Run.leftovers`` and then killed, so one failing case cannot spoil the next.
    """
    watch = MarkerWatch(marker)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out if stdout is None else stdout,
            stderr=err,
            env=dict(env),
            cwd=cwd if cwd is not None else REPO,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        timed_out = False
        try:
            deadline = start + timeout
            while popen.poll() is None:
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                watch.poll()
                time.sleep(POLL_S)
        finally:
            elapsed = time.monotonic() - start
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
            leftovers = watch.wait_gone(settle)
            watch.kill_all()
        return Run(
            argv=[str(a) for a in args],
            returncode=popen.returncode,
            stdout=read_back(out) if stdout is None else "",
            stderr=read_back(err),
            elapsed=elapsed,
            timed_out=timed_out,
            children=watch.children_seen(popen.pid),
            leftovers=leftovers,
            shm_seen=watch.shm_seen,
        )


def message_lines(stderr: str) -> list[str]:
    """The non-empty stderr lines that are the message: click's usage block left out.

    For a click usage error (``Usage: ...`` / ``Try 'ostoolkit ... --help' for help`` /
    ``Error: ...``) only the ``Error:`` line counts; everything else counts as written.
    """
    lines = [line for line in stderr.splitlines() if line.strip()]
    return [line for line in lines if not CLICK_USAGE_LINE.search(line)]


# -- docs/results.md, the contract of result ids and units ------------------------------------

RESULTS_ROW = re.compile(r"^\| `([^`]+)` \| (\w+) \|", re.MULTILINE)


def documented_ids() -> list[tuple[re.Pattern[str], str]]:
    """(regex, unit) for every row of docs/results.md (``<N>`` a number, ``{a,b}`` either)."""
    rows = []
    for pattern, unit in RESULTS_ROW.findall((REPO / "docs/results.md").read_text()):
        regex = re.escape(pattern)
        regex = regex.replace("<N>", r"\d+")
        regex = re.sub(
            r"\\\{([^}]*)\\\}", lambda m: "(" + m.group(1).replace(",", "|") + ")", regex
        )
        rows.append((re.compile(regex + "$"), unit))
    return rows


# The signal harness's seed and trial count: set by tests/os/conftest.py from its options,
# else from the environment, else (seed) drawn once per pytest process and printed.
_SEED: list[int] = []


def set_seed(value: int) -> None:
    _SEED[:] = [value]


def seed() -> int:
    if not _SEED:
        given = os.environ.get("OSTOOLKIT_SIGNAL_SEED", "").strip()
        _SEED.append(int(given) if given else int.from_bytes(os.urandom(4), "big"))
    return _SEED[0]


def trials(config: Any) -> int | None:
    """Random trials per command (--signal-trials or OSTOOLKIT_SIGNAL_TRIALS), else None."""
    value = None
    with contextlib.suppress(ValueError, AttributeError):
        value = config.getoption("signal_trials", default=None)
    if value is None:
        given = os.environ.get("OSTOOLKIT_SIGNAL_TRIALS", "").strip()
        value = int(given) if given else None
    return value if value and value > 0 else None


# -- one marked run, signalled at a moment a test chooses (memory, spawn, clone tests) ----------

GONE_WITHIN_S = 1.0  # after SIGKILL of ostoolkit, every process of the run is gone by then
# Anything but silence on stderr after SIGKILL, or besides the exit line after SIGINT/SIGTERM.
RUN_DUMP = re.compile(ERROR_DUMP.pattern + r"|Error:|Warning:", re.MULTILINE)
EXIT_CODE = {signal.SIGINT: 130, signal.SIGTERM: 143}
MP_WORKER = "--multiprocessing-fork"  # in a 'spawn' worker's argv from the launcher on


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


class MarkedRun:
    """The installed entry point run in a new session with a marker and a private TMPDIR.

    pytest's tmp_path is deep: multiprocessing's sockets may not fit in a path in it (unix(7):
    107 bytes), when ostoolkit puts its temp dir in a second run directory in /tmp.
    """

    def __init__(self, args: list[str], tmpdir: Path, out: IO[bytes], err: IO[bytes]) -> None:
        self.marker = str(uuid.uuid4())
        self.tmpdir = tmpdir
        self.tmpdir.mkdir()
        self.env = {**os.environ, MARKER_VAR: self.marker, "TMPDIR": str(self.tmpdir)}
        self.out, self.err = out, err
        self.shm_before = shm_ours()
        self.popen = subprocess.Popen(
            [str(ENTRY), *args], stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err,
            env=self.env, start_new_session=True,
        )  # fmt: skip

    def procs(self) -> list[Proc]:
        """The run's live processes, ostoolkit itself included."""
        return list(marked_processes(self.marker).values())

    def wait_for(self, ready: Callable[[MarkedRun], bool], timeout: float = 60) -> None:
        """Poll under a deadline until ``ready`` says the moment came, while the run lasts."""

        def came() -> bool:
            if ready(self):
                return True
            assert self.popen.poll() is None, f"ended before the moment: {self.stderr()}"
            return False

        wait_until(came, timeout, "the moment never came")

    def alive(self) -> list[Proc]:
        """The run's processes still alive, ostoolkit itself left out (its zombie is ours)."""
        return [p for p in marked_processes(self.marker).values() if p.pid != self.popen.pid]

    def wait_gone(self, timeout: float) -> list[Proc]:
        """Poll until none of the run's processes is alive, or ``timeout``; return those left."""
        return wait_gone(self.marker, timeout, self.popen.pid)

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def close(self) -> None:
        """Kill whatever of the run is left (after a failed check) and reap ostoolkit."""
        kill_marked(self.marker)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


@contextlib.contextmanager
def marked_run(args: list[str], tmp_path: Path) -> Iterator[MarkedRun]:
    """Run the entry point (see MarkedRun); whatever happens, end all of it after the block."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        run = MarkedRun(args, tmp_path / "tmp", out, err)
        try:
            yield run
        finally:
            run.close()


def run_dirs(folder: Path) -> list[str]:
    """The ostoolkit run directories in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("ostoolkit-"))


def check_killed(run: MarkedRun) -> None:
    """SIGKILL ostoolkit now: within 1 s nothing of the run is alive; the next run sweeps."""
    os.kill(run.popen.pid, signal.SIGKILL)
    left = run.wait_gone(GONE_WITHIN_S)
    assert not left, f"alive {GONE_WITHIN_S} s after SIGKILL: {left}"
    assert run.popen.wait(timeout=10) == -signal.SIGKILL
    assert RUN_DUMP.search(run.stderr()) is None, run.stderr()
    stale = run_dirs(run.tmpdir)
    assert len(stale) == 1, stale
    assert stale[0].startswith(f"ostoolkit-{run.popen.pid}-")
    host = subprocess.run([str(ENTRY), "host"], env=run.env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert host.returncode == 0, host.stderr
    assert list(run.tmpdir.iterdir()) == [], "the next run did not sweep the killed one's dir"
    assert not list(Path("/tmp").glob(f"ostoolkit-{run.popen.pid}-*"))  # nor its /tmp one
    assert shm_ours() - run.shm_before == set()


def check_interrupted(run: MarkedRun, sig: signal.Signals) -> None:
    """SIGINT/SIGTERM ostoolkit now: its exit code, no dump, nothing left anywhere."""
    os.kill(run.popen.pid, sig)
    assert run.popen.wait(timeout=30) == EXIT_CODE[sig], run.stderr()
    assert RUN_DUMP.search(run.stderr()) is None, run.stderr()
    left = run.wait_gone(GONE_WITHIN_S)
    assert not left, f"alive after exit: {left}"
    assert shm_ours() - run.shm_before == set()
    assert list(run.tmpdir.iterdir()) == []


def signal_name(value: object) -> str:
    """A readable test id for a signal parameter (SIGKILL rather than 9)."""
    return value.name if isinstance(value, signal.Signals) else str(value)


def workers_starting(count: int) -> Callable[[MarkedRun], bool]:
    """The moment at least ``count`` 'spawn' workers exist (launcher or interpreter alike)."""
    return lambda run: sum(MP_WORKER in p.cmdline for p in run.procs()) >= count
