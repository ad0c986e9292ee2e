"""Signal harness (issue 10): nothing destroyed, nothing left behind, no traceback.

Each trial runs one command through the installed entry point in a new session (stdin
/dev/null, stdout and stderr captured, a unique OSTOOLKIT_TEST_MARKER and a private TMPDIR)
and sends it one signal at one moment:

* signals: SIGINT to the whole process group (Ctrl-C in a terminal), SIGTERM to the main pid,
  SIGKILL to the main pid;
* moments: ``start-up`` (a random 0-0.3 s after the interpreter finished its own start-up,
  its site import, which a test sitecustomize reports on a pipe: ostoolkit is importing;
  before that point no Python program can handle a signal), ``mid-work`` (as soon as the
  first marked child exists; for a command that never forks, half its typical duration),
  ``late`` (70-95 % of its typical duration).

Then: exit 130 / 143 / -9 (0 is allowed when it had finished before the signal, or for a
``late`` signal that met the end of the run); no traceback or other error dump on stderr; after
SIGINT / SIGTERM the last stderr line is the tool's one interrupted / terminated line; no
marked process 1 s after the exit (a zombie counts while a live process of the run holds it
unreaped; one already handed to PID 1 has died, see tests/harness/leftovers.py); no new
/dev/shm entry that looks like ours and that a process of the run was seen mapping (an entry
nobody of the run mapped is only warned about: other test processes on the host make them
too); the private TMPDIR empty (after SIGKILL: empty once ``ostoolkit host``
ran with it, the next run sweeping what the killed one could not).

The default set is 3 trials per command (the three moments, the signal rotating so that every
command gets each signal once). ``OSTOOLKIT_SIGNAL_TRIALS=N`` (or ``--signal-trials N``) runs N
random trials per command instead; ``OSTOOLKIT_SIGNAL_SEED=S`` (or ``--signal-seed S``) replays
the delays of a run whose seed a failure printed.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import sitehook
from harness import signal_trials
from harness.leftovers import MarkerWatch, listing, new_shm, remove_shm, shm_ours
from harness.paths import ENTRY, REPO
from harness.runs import ERROR_DUMP, marked_env, read_back, run_marked, tail
from harness.waiting import POLL_S

from ostoolkit.measure.forktree import DEFAULT_MAX_PROCS

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
MOMENTS = ("start-up", "mid-work", "late")
EXPECTED_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}
LAST_LINE = {
    signal.SIGINT: re.compile(r"\binterrupted\b", re.IGNORECASE),
    signal.SIGTERM: re.compile(r"\bterminated\b", re.IGNORECASE),
}
EXIT_DEADLINE_S = 30.0  # from the signal to the exit of the ostoolkit process
SETTLE_S = 1.0  # marked processes may take this long to go after the exit
STARTUP_WINDOW_S = (0.0, 0.3)  # after the interpreter's own start-up: ostoolkit importing


@dataclass(frozen=True)
class Command:
    """A command under test and how long an uninterrupted run takes on the 2-CPU dev VM."""

    name: str
    args: tuple[str, ...]
    typical_s: float
    forks: bool = True


FORK_TREE = ("fork-tree", "--depth", "4", "--breadth", "3")
FORK_TREE_PROCS = sum(3**level for level in range(1, 5))  # 120
COMMANDS = (
    Command("host", ("host",), 0.23, forks=False),
    Command("switch", ("measure-switch", "--quick"), 1.5),
    Command("switch-cross-check", ("measure-switch", "--quick", "--cross-check"), 3.2),
    Command("switch-rings", ("measure-switch", "--tasks", "2,16", "--quick"), 1.5),
    Command("switch-python", ("measure-switch", "--layer", "python", "--quick"), 1.5),
    Command("switch-rate", ("switch-rate", "--duration", "0.5"), 1.8),
    Command("fork-tree", FORK_TREE, 0.7),
    Command("spawn", ("measure-spawn", "--quick"), 1.9),
    Command("states", ("states", "--duration", "0.5"), 0.9),
    Command("memory", ("measure-memory", "--quick"), 1.9),
    Command(
        "memory-mp-spawn",
        ("measure-memory", "--quick", "--model", "mp_spawn", "--workers", "20"),
        2.0,
    ),
    Command("connections", ("connections", "--quick", "--queries", "5"), 1.4),
    Command("clone", ("clone",), 0.38),
    Command("report-switch-states", ("report", "--only", "switch,states"), 3.0),
    Command("report-forktree-connections", ("report", "--only", "forktree,connections"), 2.3),
    Command("compare", ("compare", "examples/reports/"), 0.25, forks=False),
)


@dataclass(frozen=True)
class Trial:
    """One signal at one moment; ``None`` fields are drawn from the seeded generator."""

    command: Command
    moment: str | None
    sig: signal.Signals | None
    index: int = 0

    @property
    def id(self) -> str:
        if self.moment is None or self.sig is None:
            return f"{self.command.name}-random{self.index}"
        return f"{self.command.name}-{self.moment}-{self.sig.name}"


def default_trials() -> list[Trial]:
    """Three moments per command; the signal rotates so each command sees each signal."""
    return [
        Trial(command, moment, SIGNALS[(i + j) % len(SIGNALS)])
        for i, command in enumerate(COMMANDS)
        for j, moment in enumerate(MOMENTS)
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "trial" not in metafunc.fixturenames:
        return
    count = signal_trials.trials(metafunc.config)
    if count:
        plan = [Trial(c, None, None, k) for c in COMMANDS for k in range(count)]
    else:
        plan = default_trials()
    metafunc.parametrize("trial", plan, ids=[t.id for t in plan])


def watch_until(popen: subprocess.Popen[bytes], watch: MarkerWatch, when: float) -> None:
    """Poll the run (and its marked processes) until ``when`` or until it exits."""
    while popen.poll() is None and time.monotonic() < when:
        watch.poll()
        time.sleep(POLL_S)


def wait_readable(
    popen: subprocess.Popen[bytes], watch: MarkerWatch, fd: int, deadline: float
) -> float:
    """Poll until ``fd`` is readable (or the run exits, or ``deadline``); return when."""
    while popen.poll() is None and time.monotonic() < deadline:
        if select.select([fd], [], [], POLL_S)[0]:
            break
        watch.poll()
    return time.monotonic()


def wait_for_moment(
    popen: subprocess.Popen[bytes],
    watch: MarkerWatch,
    command: Command,
    moment: str,
    rng: random.Random,
    start: float,
    site_done: int,
) -> str:
    """Wait for the trial's moment; return how it was chosen, for the failure message.

    Never before the interpreter's own start-up is done (see sitehook.SITE_HOOK).
    """
    booted = wait_readable(popen, watch, site_done, start + 30)
    if moment == "start-up":
        delay = rng.uniform(*STARTUP_WINDOW_S)
        watch_until(popen, watch, booted + delay)
        return f"{delay:.3f} s after the interpreter's start-up (done at {booted - start:.3f} s)"
    if moment == "late":
        delay = command.typical_s * rng.uniform(0.7, 0.95)
        watch_until(popen, watch, max(start + delay, booted))
        return f"after {delay:.3f} s (typical run {command.typical_s} s)"
    if not command.forks:
        delay = command.typical_s / 2
        watch_until(popen, watch, max(start + delay, booted))
        return f"after {delay:.3f} s (half its typical run: it forks nothing)"
    deadline = start + 3 * command.typical_s + 10
    while popen.poll() is None and time.monotonic() < deadline:
        kids = [p for p in watch.poll().values() if p.pid != popen.pid]
        if kids:
            return f"first marked child {kids[0].describe()} seen"
        time.sleep(POLL_S)
    if popen.poll() is None:
        return "NO marked child seen before the deadline; signalled anyway"
    return "it exited before any marked child was seen"


def send(pid: int, sig: signal.Signals) -> None:
    """SIGINT to the process group as a terminal's Ctrl-C does; the others to the pid."""
    if sig == signal.SIGINT:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)


def check_stderr(stderr: str, sig: signal.Signals, interrupted: bool) -> list[str]:
    """What is wrong with stderr: an error dump, or not ending with the one exit line."""
    problems = []
    dump = ERROR_DUMP.search(stderr)
    if dump:
        line = next(x for x in stderr.splitlines() if dump.group(0) in x)
        problems.append(f"error dump on stderr: {line.strip()[:200]!r}")
    if interrupted and sig in LAST_LINE:
        lines = [line for line in stderr.splitlines() if line.strip()]
        pattern = LAST_LINE[sig]
        if not lines or not pattern.search(lines[-1]):
            last = lines[-1][:200] if lines else "(stderr empty)"
            problems.append(f"last stderr line is not the {sig.name} exit line: {last!r}")
        if sum(1 for line in lines if pattern.search(line)) > 1:
            problems.append(f"more than one {pattern.pattern} line on stderr")
    return problems


def sweep_with_host(private: Path) -> list[str]:
    """After a SIGKILL, a following ``ostoolkit host`` must leave the same TMPDIR empty."""
    marker, sweep_env = marked_env(TMPDIR=str(private))
    before = listing(private)
    run = run_marked([str(ENTRY), "host"], env=sweep_env, marker=marker)
    problems = []
    if run.returncode != 0:
        problems.append(f"the sweeping `ostoolkit host` exited {run.returncode}: {run.stderr!r}")
    after = listing(private)
    if after:
        problems.append(
            f"TMPDIR not empty after the next `ostoolkit host` ran with it: {after} "
            f"(left by the killed run: {before})"
        )
    return problems


def test_fork_tree_fits_the_default_max_procs():
    assert FORK_TREE_PROCS <= DEFAULT_MAX_PROCS, "pass a larger --max-procs in FORK_TREE"


def test_default_set_sends_every_signal_to_every_command():
    plan = default_trials()
    for command in COMMANDS:
        sigs = {t.sig for t in plan if t.command == command}
        moments = {t.moment for t in plan if t.command == command}
        assert sigs == set(SIGNALS), command.name
        assert moments == set(MOMENTS), command.name


def test_harness_sees_an_orphan_and_a_leaked_shm_entry():
    """The detectors the trials rely on find leftover processes, a zombie held by a leftover
    and a /dev/shm entry a process of the run mapped."""
    marker, env = marked_env()
    shm_before = shm_ours()
    name = f"sem.mp-ostoolkit-selftest-{uuid.uuid4().hex[:8]}"
    holder = "import os, time; os.fork() or os._exit(0); time.sleep(30)"  # keeps a zombie
    mapper = (
        f"import mmap, os, time; fd = os.open('/dev/shm/{name}', os.O_RDWR | os.O_CREAT); "
        "os.ftruncate(fd, 4096); m = mmap.mmap(fd, 4096); time.sleep(30)"
    )
    script = f'sleep 30 & python3 -c "{holder}" & python3 -c "{mapper}" & sleep 0.5; exit 0'
    run = run_marked(["sh", "-c", script], env=env, marker=marker, settle=0.2)
    try:
        assert run.returncode == 0
        states = sorted((p.state, re.sub(r"^\S*/", "", p.cmdline)) for p in run.leftovers)
        assert states == sorted(
            [
                ("S", f"python3 -c {holder}"),
                ("S", f"python3 -c {mapper}"),
                ("S", "sleep 30"),
                ("Z", "[python3]"),
            ]
        )
        assert name in run.shm_seen
        assert new_shm(shm_before, marker) == [name]
    finally:
        remove_shm([name])
    assert MarkerWatch(marker).alive() == []  # run_marked killed the orphans


def test_site_hook_reports_once_and_is_not_inherited(site_hook: Path) -> None:
    reader, writer = os.pipe()
    env = {**os.environ, **sitehook.site_hook_env(site_hook, writer)}
    code = f"import os; print(os.environ.get({sitehook.SITE_FD_VAR!r}))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            pass_fds=(writer,),
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.close(writer)
    try:
        assert os.read(reader, 10) == b"."
    finally:
        os.close(reader)
    assert done.stdout.strip() == "None", done.stderr


def test_site_hook_sees_the_signals_blocked_for_good_at_the_end(site_hook: Path) -> None:
    reader, writer = os.pipe()
    env = {**os.environ, **sitehook.site_hook_env(site_hook, writer)}
    try:
        done = subprocess.run(
            [str(ENTRY), "host"], env=env, pass_fds=(writer,), capture_output=True, timeout=60
        )
    finally:
        os.close(writer)
    try:
        events = sitehook.drain(reader)
    finally:
        os.close(reader)
    assert done.returncode == 0, done.stderr
    assert events.startswith(b".")
    blocked = sitehook.blocked_since_ns(events)
    assert blocked is not None, events  # ostoolkit.entry's last act: block, then exit
    assert blocked <= time.monotonic_ns()
    assert sitehook.blocked_since_ns(events + b"U\n") is None
    assert sitehook.blocked_since_ns(b".") is None


@pytest.fixture(scope="session")
def site_hook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sitehook.write_site_hook(tmp_path_factory.mktemp("site-hook"))


@pytest.mark.timeout(120)
def test_signal_leaves_nothing_behind(trial: Trial, tmp_path: Path, site_hook: Path) -> None:
    seed = signal_trials.seed()
    rng = random.Random(f"{seed}/{trial.id}")
    moment = trial.moment or rng.choice(MOMENTS)
    sig = trial.sig or rng.choice(SIGNALS)
    command = trial.command
    private = tmp_path / "tmpdir"
    private.mkdir()
    marker, env = marked_env(TMPDIR=str(private))
    shm_before = shm_ours()
    watch = MarkerWatch(marker)
    argv = [str(ENTRY), *command.args]
    problems: list[str] = []
    leaked_shm: list[str] = []
    site_done, site_fd = os.pipe()
    env.update(sitehook.site_hook_env(site_hook, site_fd))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=REPO,
                start_new_session=True,
                pass_fds=(site_fd,),
            )
        finally:
            os.close(site_fd)
        try:
            how = wait_for_moment(popen, watch, command, moment, rng, start, site_done)
            finished = popen.poll() is not None
            sent_ns = time.monotonic_ns()
            sent_at = sent_ns / 1e9 - start
            if not finished:
                send(popen.pid, sig)
            watch_until(popen, watch, time.monotonic() + EXIT_DEADLINE_S)
            if popen.poll() is None:
                problems.append(f"still running {EXIT_DEADLINE_S} s after {sig.name}; killed")
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
            exited_at = time.monotonic() - start
            leftovers = watch.wait_gone(SETTLE_S)
            stderr = read_back(err)
            leaked_shm = new_shm(shm_before, marker)
            in_tmp = listing(private)
            blocked_ns = sitehook.blocked_since_ns(sitehook.drain(site_done))
        finally:
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
            watch.kill_all()
            remove_shm(n for n in leaked_shm if n in watch.shm_seen)  # ours only
            os.close(site_done)

    code = popen.returncode
    replay_trials = f" OSTOOLKIT_SIGNAL_TRIALS={trial.index + 1}" if trial.moment is None else ""
    expected = EXPECTED_EXIT[sig]
    # Exit 0 is right when the run was done: exited, or its status decided and the signals
    # blocked for good before this one was sent (sitehook); "late" may land there too.
    done = finished or (blocked_ns is not None and blocked_ns <= sent_ns)
    if code != expected and not (code == 0 and (done or moment == "late")):
        problems.append(f"exit status {code}, expected {expected} (or 0 had it finished)")
    interrupted = not finished and code == expected
    problems += check_stderr(stderr, sig, interrupted)
    if leftovers:
        problems.append(
            f"{len(leftovers)} marked process(es) alive {SETTLE_S} s after the exit: "
            + "; ".join(p.describe() for p in leftovers[:8])
        )
    ours = [name for name in leaked_shm if name in watch.shm_seen]
    if ours:
        problems.append(f"new /dev/shm entries a process of this run had mapped: {ours}")
    if len(ours) < len(leaked_shm):
        others = sorted(set(leaked_shm) - set(ours))
        warnings.warn(
            f"{trial.id}: new /dev/shm entries {others} that no process of this run was seen "
            "mapping (another test process running at the same time?)",
            stacklevel=1,
        )
    if sig != signal.SIGKILL or finished or code == 0:
        if in_tmp:
            problems.append(f"private TMPDIR not empty: {in_tmp[:10]}")
    else:
        problems += sweep_with_host(private)

    assert not problems, (
        f"seed {seed}: ostoolkit {' '.join(command.args)}: {sig.name} at {moment} ({how}), "
        f"sent at {sent_at:.3f} s{' (it had already finished)' if finished else ''}, "
        f"exit {code} at {exited_at:.3f} s\n"
        + "\n".join(f"  - {p}" for p in problems)
        + f"\nstderr:\n{tail(stderr)}\n"
        f"replay: OSTOOLKIT_SIGNAL_SEED={seed}{replay_trials} .venv/bin/pytest "
        f"tests/os/test_signals.py -k '{trial.id}'"
    )
