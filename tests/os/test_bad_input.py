"""Bad input through the installed entry point (issue 10): refused in one line, nothing left.

Every case runs ``ostoolkit`` as a real process (a new session, stdin /dev/null unless the case
closes it, a unique OSTOOLKIT_TEST_MARKER, timeout 20 s) and checks:

* the exit status: 2 for a request refused before any work (usage), 1 for an environment or
  OS failure; a few cases name another set (SIGPIPE, a run that may succeed);
* the message is exactly ONE non-empty stderr line. For click's usage errors the block
  ``Usage: ...`` / ``Try 'ostoolkit ... -h' for help.`` / ``Error: ...`` is accepted and only the
  ``Error:`` line counts (click prints the other two on every usage error; they are not a
  second message). The line names the option (or variable, or file) and, for a range or a set,
  the accepted range or set; and it is at most MAX_LINE characters, so a 100 KB value is not
  echoed back whole;
* no traceback or other error dump; no hang; no marked process left 1 s after the exit;
* exit 2 means before any work: no marked child process was ever seen.

Decisions this table makes (beyond the issue's list):

* a list option with an empty item or a repeated item is a usage error, as for --cpus and
  --workers: ``report --only states,`` and ``report --only switch,switch`` are refused (2);
* ``compare --fail-above inf`` is refused (a gate that can never fail), as are nan, 1 and -5;
  ``compare`` with one report is refused (2: it needs two);
* ``clone`` from a deleted working directory may work (0) or fail in one line (1);
* a message line longer than MAX_LINE fails: a 100,000-digit --cpus must not be echoed back.

The ``--json PATH`` tests at the end check that writing a report never destroys what PATH is.
The /dev/full case writes to a copy of the device (mknod, same major/minor) in tmp_path, so
that a regression that renames over its target cannot replace the host's real /dev/full.
"""

from __future__ import annotations

import json
import os
import re
import resource
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import paths
from harness.leftovers import listing
from harness.runs import ERROR_DUMP, Run, marked_env, message_lines, run_marked

ENTRY = str(paths.ENTRY)
TIMEOUT_S = 20.0
MAX_LINE = 1000
ALLOWED = sorted(os.sched_getaffinity(0))
OUTSIDE = next(cpu for cpu in range(len(ALLOWED) + 1) if cpu not in ALLOWED)
PID_MAX = int(Path("/proc/sys/kernel/pid_max").read_text())  # pids are below it: none is it
GOOD_REPORT = paths.REPO / "examples" / "reports" / "a-vm-2cpus.json"
SECTIONS = ("switch", "spawn", "forktree", "states", "memory", "connections")


def opt(name: str) -> str:
    """A regex for an option's name as written (``--cpus``)."""
    return re.escape(name)


def num(value: float | str) -> str:
    """A regex for a number standing on its own: 1 matches '1<=x' and '1..10' but not '10',
    '0.1' or '1.5'; 10000 matches '1..10000'."""
    return rf"(?<!\d)(?<!\d\.){re.escape(str(value))}(?!\.?\d)"


def one_of(*patterns: str) -> str:
    return "(?:" + "|".join(patterns) + ")"


def cpu_set(cpus: list[int]) -> str:
    """The allowed CPUs written as a list (0,1 / 0, 1) or a range (0-1, 0..1)."""
    forms = [",".join(map(str, cpus)), ", ".join(map(str, cpus))]
    if cpus == list(range(cpus[0], cpus[-1] + 1)):
        forms += [f"{cpus[0]}-{cpus[-1]}", f"{cpus[0]}..{cpus[-1]}", f"{cpus[0]}–{cpus[-1]}"]
    return one_of(*(num(f) if "," not in f else re.escape(f) for f in forms))


NOFILE_WORDS = r"(?i)(?:ulimit|nofile|open.files?|file descriptors?|EMFILE)"
WRITE_WORDS = r"(?i)writ"


# --- files the compare cases read (made in the case's tmp_path) -----------------------------


def good() -> dict[str, object]:
    data: dict[str, object] = json.loads(GOOD_REPORT.read_text())
    return data


def write_report(name: str, change: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def prepare(tmp: Path) -> None:
        data = good()
        change(data)
        (tmp / name).write_text(json.dumps(data))

    return prepare


def first_result(**fields: object) -> Callable[[dict[str, object]], None]:
    def change(data: dict[str, object]) -> None:
        results = data["results"]
        assert isinstance(results, list)
        results[0].update(fields)

    return change


def set_field(key: str, value: object) -> Callable[[dict[str, object]], None]:
    def change(data: dict[str, object]) -> None:
        data[key] = value

    return change


def write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    def prepare(tmp: Path) -> None:
        (tmp / name).write_bytes(data)

    return prepare


def write_text(name: str, text: str) -> Callable[[Path], None]:
    def prepare(tmp: Path) -> None:
        (tmp / name).write_text(text)

    return prepare


def make_fifo(name: str) -> Callable[[Path], None]:
    def prepare(tmp: Path) -> None:
        (tmp / name).parent.mkdir(exist_ok=True)
        os.mkfifo(tmp / name)

    return prepare


def make_sparse(name: str, size: int) -> Callable[[Path], None]:
    def prepare(tmp: Path) -> None:
        with open(tmp / name, "wb") as out:
            out.write(b'{"schema": "ostoolkit/1", "results": [')
            out.truncate(size)

    return prepare


def make_symlink(name: str, target: str) -> Callable[[Path], None]:
    def prepare(tmp: Path) -> None:
        (tmp / name).symlink_to(target)

    return prepare


def make_dir(name: str) -> Callable[[Path], None]:
    def prepare(tmp: Path) -> None:
        (tmp / name).mkdir()

    return prepare


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input and what ostoolkit must do with it.

    ``args`` and ``env`` values may hold ``{tmp}``, the case's own tmp_path. ``must`` are
    regexes the one message line must each match. ``stdout``: "capture", "full" (/dev/full),
    "closed" (fd 1 closed) or "broken" (a pipe whose reader is gone).
    """

    id: str
    args: tuple[str, ...]
    codes: tuple[int, ...] = (2,)
    must: tuple[str, ...] = ()
    prepare: Callable[[Path], None] | None = None
    env: tuple[tuple[str, str], ...] = ()
    nofile: int | None = None
    rlimits: tuple[tuple[int, int], ...] = ()  # (resource, soft and hard limit) set before exec
    stdin_closed: bool = False
    deleted_cwd: bool = False
    stdout: str = "capture"
    max_s: float | None = None
    silent: bool = False  # nothing at all on stderr (SIGPIPE)

    @property
    def before_any_work(self) -> bool:
        return self.codes == (2,)


def compare_bad(case_id: str, name: str, prepare: Callable[[Path], None] | None) -> Case:
    """compare GOOD BAD: refused (2) in one line naming the bad file."""
    return Case(
        case_id,
        ("compare", str(GOOD_REPORT), "{tmp}/" + name),
        must=(re.escape(Path(name).name),),
        prepare=prepare,
    )


NESTED = "[" * 100_000 + "]" * 100_000
WITH_NAN = GOOD_REPORT.read_text().replace('"median": ', '"median": NaN, "x": ', 1)
QUICK_CONN = ("connections", "--quick", "--queries", "1")
MEMORY_THREADS = ("measure-memory", "--quick", "--model", "thread", "--workers", "100")
LOW = 300 * 2**20  # room for ostoolkit, not for 100 threads of default-sized stacks

CASES = (
    # measure-switch --cpus: a set of allowed CPUs, distinct, something left to measure
    Case(
        "switch-cpus-99",
        ("measure-switch", "--quick", "--cpus", "99"),
        must=(opt("--cpus"), cpu_set(ALLOWED)),
    ),
    Case(
        "switch-cpus-outside-allowed",
        ("measure-switch", "--quick", "--cpus", ",".join(map(str, [*ALLOWED, OUTSIDE]))),
        must=(opt("--cpus"), cpu_set(ALLOWED)),
    ),
    Case("switch-cpus-empty", ("measure-switch", "--quick", "--cpus", ""), must=(opt("--cpus"),)),
    Case("switch-cpus-comma", ("measure-switch", "--quick", "--cpus", ","), must=(opt("--cpus"),)),
    Case(
        "switch-cpus-double-comma",
        ("measure-switch", "--quick", "--cpus", "0,,1"),
        must=(opt("--cpus"),),
    ),
    Case(
        "switch-cpus-negative", ("measure-switch", "--quick", "--cpus", "-1"), must=(opt("--cpus"),)
    ),
    Case(
        "switch-cpus-twice", ("measure-switch", "--quick", "--cpus", "0,0"), must=(opt("--cpus"),)
    ),
    Case(
        "switch-cross-core-one-cpu",
        ("measure-switch", "--quick", "--placement", "cross-core", "--cpus", str(ALLOWED[0])),
        must=(one_of(opt("--cpus"), opt("--placement"), "cross-core"),),
    ),
    # states --duration: a finite number of seconds within 0.1..60
    *(
        Case(
            f"states-duration-{label}",
            ("states", "--duration", value),
            must=(opt("--duration"), num("0.1"), num(60)),
        )
        for label, value in (
            ("nan", "nan"),
            ("inf", "inf"),
            ("negative", "-1"),
            ("tiny", "0.01"),
            ("1e309", "1e309"),
        )
    ),
    # measure-spawn --parent-rss
    Case(
        "spawn-parent-rss-twice",
        ("measure-spawn", "--quick", "--parent-rss", "0,0"),
        must=(opt("--parent-rss"),),
    ),
    Case(
        "spawn-parent-rss-empty",
        ("measure-spawn", "--quick", "--parent-rss", ""),
        must=(opt("--parent-rss"),),
    ),
    # measure-memory --workers: distinct ASCII counts within range
    Case(
        "memory-workers-twice", ("measure-memory", "--workers", "10,10"), must=(opt("--workers"),)
    ),
    Case(
        "memory-workers-arabic-indic",
        ("measure-memory", "--workers", "١٠"),
        must=(opt("--workers"),),
    ),
    Case(
        "memory-workers-fullwidth", ("measure-memory", "--workers", "２"), must=(opt("--workers"),)
    ),
    Case(
        "memory-workers-zero",
        ("measure-memory", "--workers", "0"),
        must=(opt("--workers"), num(1), one_of(num(1000), num(10000))),
    ),
    Case(
        "memory-workers-huge",
        ("measure-memory", "--workers", "99999999999999999999"),
        must=(opt("--workers"), num(1), one_of(num(1000), num(10000))),
    ),
    # connections: an empty DSN is not "no DSN"
    *(
        Case(
            f"connections-{server}-empty",
            (*QUICK_CONN, f"--{server}", ""),
            must=(opt(f"--{server}"),),
        )
        for server in ("postgres", "mysql", "pgbouncer")
    ),
    # report --only: a non-empty set of known sections
    Case(
        "report-only-empty",
        ("report", "--only", ""),
        must=(opt("--only"), *map(re.escape, SECTIONS)),
    ),
    Case(
        "report-only-nosuch",
        ("report", "--only", "nosuch"),
        must=(opt("--only"), *map(re.escape, SECTIONS)),
    ),
    # compare --fail-above: a finite ratio above 1 (inf is a gate that can never fail)
    *(
        Case(
            f"compare-fail-above-{label}",
            ("compare", "examples/reports/", "--fail-above", value),
            must=(opt("--fail-above"),),
        )
        for label, value in (("nan", "nan"), ("inf", "inf"), ("one", "1"), ("negative", "-5"))
    ),
    # --json '' on any command: refused before any work
    *(
        Case(f"{args[0]}-json-empty", (*args, "--json", ""), must=(opt("--json"),))
        for args in (
            ("host",),
            ("clone",),
            ("states", "--duration", "0.1"),
            ("compare", "examples/reports/"),
            ("fork-tree",),
        )
    ),
    # fork-tree --hold needs a stdin to wait on
    Case(
        "fork-tree-hold-stdin-closed",
        ("fork-tree", "--depth", "4", "--breadth", "3", "--hold"),
        stdin_closed=True,
        must=(opt("--hold"),),
    ),
    # GITHUB_STEP_SUMMARY that can never be appended to: refused before any section runs
    Case(
        "report-step-summary-missing-dir",
        ("report", "--only", "states"),
        env=(("GITHUB_STEP_SUMMARY", "/nonexistent/dir/file"),),
        must=("GITHUB_STEP_SUMMARY",),
        max_s=3.0,
    ),
    Case(
        "report-step-summary-is-a-directory",
        ("report", "--only", "states"),
        env=(("GITHUB_STEP_SUMMARY", "{tmp}"),),
        must=("GITHUB_STEP_SUMMARY",),
        max_s=3.0,
    ),
    # stdout that cannot take the result
    Case(
        "host-stdout-dev-full",
        ("host",),
        codes=(1,),
        stdout="full",
        must=("No space left on device",),
    ),
    Case("host-stdout-closed", ("host",), codes=(1,), stdout="closed", must=(WRITE_WORDS,)),
    Case("host-stdout-broken-pipe", ("host",), codes=(-13, 141), stdout="broken", silent=True),
    # a hostile process environment
    Case("clone-deleted-cwd", ("clone",), codes=(0, 1), deleted_cwd=True),
    # the probe fd goes below the limit: the experiment runs as usual, and quickly
    Case("clone-nofile-32", ("clone",), codes=(0,), nofile=32, max_s=5.0),
    Case("report-nofile-32", ("report",), nofile=32, max_s=3.0, must=(NOFILE_WORDS,)),
    # compare on reports that are not reports
    compare_bad(
        "compare-median-string",
        "median-string.json",
        write_report("median-string.json", first_result(median="fast")),
    ),
    compare_bad(
        "compare-id-list", "id-list.json", write_report("id-list.json", first_result(id=["switch"]))
    ),
    compare_bad(
        "compare-unit-null",
        "unit-null.json",
        write_report("unit-null.json", first_result(unit=None)),
    ),
    compare_bad(
        "compare-results-not-list",
        "results-dict.json",
        write_report("results-dict.json", set_field("results", {"a": 1})),
    ),
    compare_bad("compare-median-nan", "median-nan.json", write_text("median-nan.json", WITH_NAN)),
    compare_bad("compare-deeply-nested", "nested.json", write_text("nested.json", NESTED)),
    compare_bad(
        "compare-not-utf8",
        "latin.json",
        write_bytes("latin.json", b'\xff\xfe{\x00"\x00s\x00' + b"\xe9" * 64),
    ),
    compare_bad("compare-empty-file", "empty.json", write_bytes("empty.json", b"")),
    compare_bad("compare-over-64mib", "huge.json", make_sparse("huge.json", 65 * 2**20)),
    compare_bad("compare-fifo", "pipe.json", make_fifo("pipe.json")),
    compare_bad("compare-folder-with-fifo", "folder/x.json", make_fifo("folder/x.json")),
    Case(
        "compare-symlink-to-dev-zero",
        ("compare", str(GOOD_REPORT), "{tmp}/zero.json"),
        prepare=make_symlink("zero.json", "/dev/zero"),
        must=(one_of("zero\\.json", "/dev/zero"),),
    ),
    Case(
        "compare-dev-zero",
        ("compare", str(GOOD_REPORT), "/dev/zero"),
        must=(re.escape("/dev/zero"),),
    ),
    Case("compare-one-report", ("compare", str(GOOD_REPORT)), must=(one_of("two", num(2)),)),
    Case(
        "compare-nonexistent",
        ("compare", str(GOOD_REPORT), "{tmp}/nosuch.json"),
        must=("nosuch.json",),
    ),
    Case(
        "compare-empty-folder",
        ("compare", str(GOOD_REPORT), "{tmp}/void"),
        prepare=make_dir("void"),
        must=("void",),
    ),
    Case(
        "compare-three-labels-two-reports",
        ("compare", "examples/reports/", "--label", "a", "--label", "b", "--label", "c"),
        must=(opt("--label"),),
    ),
    Case(
        "compare-baseline-nosuch",
        ("compare", "examples/reports/", "--baseline", "nosuch"),
        must=(opt("--baseline"), "nosuch"),
    ),
    # numbers out of range for every numeric option
    Case(
        "switch-repeat-0",
        ("measure-switch", "--repeat", "0"),
        must=(opt("--repeat"), num(1), num(1000)),
    ),
    Case(
        "switch-iterations-0",
        ("measure-switch", "--iterations", "0"),
        must=(opt("--iterations"), num(1), num(1000000)),
    ),
    Case(
        "switch-iterations-huge",
        ("measure-switch", "--iterations", "99999999999999999999"),
        must=(opt("--iterations"),),
    ),
    Case(
        "switch-working-set-negative",
        ("measure-switch", "--working-set=-1"),
        must=(opt("--working-set"), num(0), num(65536)),
    ),
    Case(
        "switch-working-set-over",
        ("measure-switch", "--working-set", "65537"),
        must=(opt("--working-set"), num(0), num(65536)),
    ),
    Case(
        "switch-cpus-100k-digits",
        ("measure-switch", "--quick", "--cpus", "1" * 100_000),
        must=(opt("--cpus"),),
    ),
    Case(
        "switch-cpus-fullwidth",
        ("measure-switch", "--quick", "--cpus", "０"),
        must=(opt("--cpus"),),
    ),
    Case(
        "switch-cpus-arabic-indic",
        ("measure-switch", "--quick", "--cpus", "٠,١"),
        must=(opt("--cpus"),),
    ),
    Case(
        "switch-cpus-zero-width-space",
        ("measure-switch", "--quick", "--cpus", "0\u200b"),
        must=(opt("--cpus"),),
    ),
    Case(
        "switch-model-nosuch",
        ("measure-switch", "--model", "nosuch"),
        must=(opt("--model"), "process", "thread"),
    ),
    Case(
        "fork-tree-depth-0", ("fork-tree", "--depth", "0"), must=(opt("--depth"), num(1), num(16))
    ),
    Case(
        "fork-tree-breadth-1000",
        ("fork-tree", "--breadth", "1000"),
        must=(opt("--breadth"), num(1), num(64)),
    ),
    Case(
        "fork-tree-max-procs-0",
        ("fork-tree", "--max-procs", "0"),
        must=(opt("--max-procs"), num(1), num(4096)),
    ),
    Case(
        "fork-tree-over-max-procs",
        ("fork-tree", "--depth", "16", "--breadth", "64"),
        must=(opt("--max-procs"),),
    ),
    Case("fork-tree-pid-0", ("fork-tree", "--pid", "0"), must=(opt("--pid"),)),
    Case(
        "fork-tree-pid-missing",
        ("fork-tree", "--pid", str(PID_MAX)),
        codes=(1, 2),
        must=(num(PID_MAX),),
    ),
    Case("fork-tree-pid-and-hold", ("fork-tree", "--pid", "1", "--hold"), must=(opt("--hold"),)),
    Case(
        "spawn-repeat-0",
        ("measure-spawn", "--repeat", "0"),
        must=(opt("--repeat"), num(1), num(1000)),
    ),
    Case(
        "spawn-mp-repeat-1001",
        ("measure-spawn", "--mp-repeat", "1001"),
        must=(opt("--mp-repeat"), num(1), num(1000)),
    ),
    Case(
        "spawn-parent-rss-negative",
        ("measure-spawn", "--parent-rss=-1"),
        must=(opt("--parent-rss"),),
    ),
    Case(
        "spawn-parent-rss-huge",
        ("measure-spawn", "--parent-rss", "99999999999999999999"),
        must=(opt("--parent-rss"),),
    ),
    Case(
        "spawn-method-nosuch",
        ("measure-spawn", "--method", "nosuch"),
        must=(opt("--method"), "fork"),
    ),
    Case(
        "states-windows-0", ("states", "--windows", "0"), must=(opt("--windows"), num(1), num(1000))
    ),
    Case("states-cpu-99", ("states", "--cpu", "99"), must=(opt("--cpu"), cpu_set(ALLOWED))),
    Case(
        "memory-cow-size-0",
        ("measure-memory", "--cow", "--size", "0"),
        must=(opt("--size"), num(1), num(4096)),
    ),
    Case(
        "memory-cow-repeat-0",
        ("measure-memory", "--cow", "--repeat", "0"),
        must=(opt("--repeat"), num(1), num(100)),
    ),
    Case(
        "memory-processes-over-1000",
        ("measure-memory", "--model", "process", "--workers", "1001"),
        must=(opt("--workers"), num(1000)),
    ),
    Case(
        "memory-workers-5000-digits",
        ("measure-memory", "--workers", "9" * 5000),
        must=(opt("--workers"),),
    ),
    # threads whose stacks the address-space or data limit cannot hold (issue 21)
    Case(
        "memory-threads-over-ulimit-v",
        MEMORY_THREADS,
        rlimits=((resource.RLIMIT_AS, LOW),),
        must=(re.escape("ulimit -v"), opt("--workers"), num(100), "threads"),
    ),
    Case(
        "memory-threads-over-ulimit-d",
        MEMORY_THREADS,
        rlimits=((resource.RLIMIT_DATA, LOW),),
        must=(re.escape("ulimit -d"), opt("--workers"), num(100), "threads"),
    ),
    Case(
        "connections-threads-over-ulimit-v",
        (*QUICK_CONN, "--model", "thread", "--clients", "300"),
        rlimits=((resource.RLIMIT_AS, LOW),),
        must=(re.escape("ulimit -v"), opt("--clients"), num(300), "threads"),
    ),
    Case(
        "ring-threads-over-ulimit-v",
        ("measure-switch", "--model", "thread", "--tasks", "300", "--quick"),
        rlimits=((resource.RLIMIT_AS, LOW),),
        must=(re.escape("ulimit -v"), opt("--tasks"), num(300), "threads"),
    ),
    Case(
        "connections-queries-0",
        ("connections", "--queries", "0"),
        must=(opt("--queries"), num(1), num(10000)),
    ),
    Case(
        "connections-pool-size-0",
        ("connections", "--pool-size", "0"),
        must=(opt("--pool-size"), num(1), num(1000)),
    ),
    Case("connections-clients-0", ("connections", "--clients", "0"), must=(opt("--clients"),)),
    Case(
        "connections-clients-10001",
        ("connections", "--clients", "10001"),
        must=(opt("--clients"), num(10000)),
    ),
    Case(
        "connections-model-and-postgres",
        ("connections", "--model", "thread", "--postgres", "postgresql://127.0.0.1:1/x"),
        must=(opt("--model"),),
    ),
    Case(
        "connections-postgres-refused",
        ("connections", "--postgres", "postgresql://postgres@127.0.0.1:1/postgres"),
        codes=(1,),
        must=(one_of("127.0.0.1", "postgres"),),
    ),
    Case("report-only-twice", ("report", "--only", "switch,switch"), must=(opt("--only"),)),
    Case("report-only-trailing-comma", ("report", "--only", "states,"), must=(opt("--only"),)),
    Case(
        "host-format-nosuch",
        ("host", "--format", "nosuch"),
        must=(opt("--format"), "table", "json", "markdown"),
    ),
    Case("host-json-directory", ("host", "--json", "{tmp}"), must=(opt("--json"),)),
    Case(
        "host-json-name-too-long",
        ("host", "--json", "{tmp}/" + "a" * 300),
        codes=(1, 2),
        must=(opt("--json"),),
    ),
    Case("unknown-command", ("nosuch",), must=("nosuch",)),
)


def preexec(case: Case, cwd: Path) -> Callable[[], None] | None:
    """What the child does before exec: close stdin or stdout, lower RLIMIT_NOFILE or other
    limits, rmdir cwd."""
    steps: list[Callable[[], None]] = []
    if case.stdin_closed:
        steps.append(lambda: os.close(0))
    if case.stdout == "closed":
        steps.append(lambda: os.close(1))
    if case.nofile is not None:
        limit = case.nofile
        steps.append(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
    for which, value in case.rlimits:
        steps.append(lambda w=which, v=value: resource.setrlimit(w, (v, v)))
    if case.deleted_cwd:
        steps.append(lambda: os.rmdir(cwd))  # subprocess has already chdir'ed into it
    if not steps:
        return None

    def run_steps() -> None:
        for step in steps:
            step()

    return run_steps


def run_case(case: Case, tmp: Path) -> tuple[Run, list[str]]:
    """Run one case; return the run and what is wrong with it."""
    if case.prepare:
        case.prepare(tmp)
    args = [ENTRY, *(a.replace("{tmp}", str(tmp)) for a in case.args)]
    marker, env = marked_env(**{k: v.replace("{tmp}", str(tmp)) for k, v in case.env})
    cwd = tmp / "cwd"
    cwd.mkdir()
    stdout: int | None = None
    if case.stdout == "full":
        stdout = os.open("/dev/full", os.O_WRONLY)
    elif case.stdout == "broken":
        reader, stdout = os.pipe()
        os.close(reader)  # nobody will ever read: the first write gets EPIPE / SIGPIPE
    try:
        run = run_marked(
            args,
            env=env,
            marker=marker,
            timeout=TIMEOUT_S,
            stdout=stdout,
            cwd=cwd if case.deleted_cwd else None,
            preexec_fn=preexec(case, cwd),
        )
    finally:
        if stdout is not None:
            os.close(stdout)
    return run, check(case, run)


def check(case: Case, run: Run) -> list[str]:
    problems = []
    if run.timed_out:
        problems.append(f"hung: still running after {TIMEOUT_S} s")
    if run.returncode not in case.codes:
        problems.append(f"exit status {run.returncode}, expected one of {case.codes}")
    if case.max_s is not None and run.elapsed > case.max_s:
        problems.append(f"took {run.elapsed:.2f} s, more than {case.max_s} s")
    dump = ERROR_DUMP.search(run.stderr)
    if dump:
        problems.append(f"error dump on stderr ({dump.group(0)!r})")
    if run.leftovers:
        problems.append("left behind: " + "; ".join(p.describe() for p in run.leftovers[:5]))
    if case.before_any_work and run.children:
        problems.append(
            f"refused only after forking: {len(run.children)} marked child(ren) seen, e.g. "
            + run.children[0].describe()
        )
    if case.silent:
        if run.stderr:
            problems.append("stderr is not empty")
        return problems
    if run.returncode == 0 and 0 in case.codes:
        return problems
    lines = message_lines(run.stderr)
    if len(lines) != 1:
        problems.append(f"{len(lines)} message lines on stderr, expected exactly one")
    line = lines[-1] if lines else ""
    if len(line) > MAX_LINE:
        problems.append(f"the message line is {len(line)} characters long (at most {MAX_LINE})")
    for pattern in case.must:
        if not re.search(pattern, line):
            problems.append(f"the message does not match {pattern!r}")
    return problems


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    run, problems = run_case(case, tmp_path)
    assert not problems, (
        f"{case.id}:\n" + "\n".join(f"  - {p}" for p in problems) + "\n" + run.describe()
    )


def test_case_ids_are_unique_and_the_table_is_long_enough():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 60


def test_one_line_rule_counts_only_clicks_error_line():
    usage = (
        "Usage: ostoolkit states [OPTIONS]\n"
        "Try 'ostoolkit states -h' for help.\n\n"
        "Error: Invalid value for '--duration': nan is not a number.\n"
    )
    assert message_lines(usage) == ["Error: Invalid value for '--duration': nan is not a number."]
    assert len(message_lines("warning: x\nError: y\n")) == 2


# --- --json PATH never destroys what PATH is -------------------------------------------------


def json_run(tmp: Path, target: Path | str, *args: str) -> Run:
    marker, env = marked_env()
    return run_marked(
        [ENTRY, *(args or ("host",)), "--json", str(target)],
        env=env,
        marker=marker,
        timeout=TIMEOUT_S,
        cwd=tmp,
    )


def assert_clean(run: Run, codes: tuple[int, ...] = (0,)) -> None:
    assert run.returncode in codes, run.describe()
    assert not ERROR_DUMP.search(run.stderr), run.describe()
    assert not run.leftovers, run.describe()


def assert_report(text: str) -> None:
    data = json.loads(text)
    assert data["schema"] == "ostoolkit/1"
    assert data["command"] == "host"


def test_json_into_a_fifo_with_a_reader(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    # Opened for reading without blocking before ostoolkit starts: the reader exists, so
    # ostoolkit's open for writing succeeds; a host report fits the pipe buffer.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        run = json_run(tmp_path, fifo)
        chunks = []
        while True:
            try:
                chunk = os.read(reader, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(reader)
    assert_clean(run)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
    assert chunks, "the reader got nothing through the FIFO\n" + run.describe()
    assert_report(b"".join(chunks).decode())
    assert listing(tmp_path) == ["report.fifo"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_json_into_a_character_device_copy(tmp_path):
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    run = json_run(tmp_path, null)
    assert_clean(run)
    assert stat.S_ISCHR(os.lstat(null).st_mode), "the device node was replaced"
    assert os.lstat(null).st_rdev == os.makedev(1, 3)
    assert listing(tmp_path) == ["null"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_json_into_a_full_device(tmp_path):
    """A copy of /dev/full (same device numbers): a regression cannot replace the real one."""
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    run = json_run(tmp_path, full)
    assert_clean(run, codes=(1,))
    lines = message_lines(run.stderr)
    assert len(lines) == 1, run.describe()
    assert "No space left on device" in lines[0]
    assert stat.S_ISCHR(os.lstat(full).st_mode), "the device node was replaced"
    assert listing(tmp_path) == ["full"], "a temporary file was left beside it"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_json_through_a_symlink(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    run = json_run(tmp_path, link)
    assert_clean(run)
    assert link.is_symlink(), "the symlink was replaced by a file"
    assert os.readlink(link) == target.name
    assert_report(target.read_text())
    assert listing(tmp_path) == ["link.json", "real.json"]


def test_json_in_a_missing_directory(tmp_path):
    path = tmp_path / "missing" / "report.json"
    run = json_run(tmp_path, path)
    assert_clean(run, codes=(1, 2))
    lines = message_lines(run.stderr)
    assert len(lines) == 1, run.describe()
    assert "--json" in lines[0] or str(path) in lines[0], run.describe()
    assert not path.parent.exists()


def test_json_replaces_a_regular_file_atomically(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("x" * 100_000)
    path.chmod(0o640)
    before = os.stat(path)
    run = json_run(tmp_path, path)
    assert_clean(run)
    after = os.stat(path)
    assert_report(path.read_text())
    assert after.st_ino != before.st_ino, "written in place, not replaced by rename"
    assert stat.S_IMODE(after.st_mode) == 0o640, "the file's permissions were lost"
    assert listing(tmp_path) == ["report.json"], "a temporary file was left beside it"


def test_message_patterns_match_what_they_should():
    assert re.search(num(10000), "each number must be within 1..10000")
    assert re.search(num(1), "1<=x<=1000")
    assert not re.search(num(1), "0.1<=x<=60")
    assert not re.search(num(1), "10<=x")
    assert re.search(cpu_set([0, 1]), "choose from 0,1")
    assert re.search(cpu_set([0, 1]), "allowed: 0-1")
    assert not re.search(cpu_set([0, 1]), "allowed: 0")
