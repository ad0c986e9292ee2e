"""The ``ostoolkit`` command line: parse options, call one library function, render once."""

from __future__ import annotations

import functools
import math
import operator
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ostoolkit import __version__
from ostoolkit.children import raising_on_sigterm
from ostoolkit.compare import (
    DEFAULT_THRESHOLD,
    MAX_THRESHOLD,
    compare_reports,
    compared_hosts,
    load_all,
)
from ostoolkit.connections.builtin import (
    DEFAULT_POOL_SIZE,
    MAX_CLIENTS,
    ConnectionsConfig,
    measure_connections,
)
from ostoolkit.connections.builtin import MODELS as CONNECTION_MODELS
from ostoolkit.connections.realdb import measure_real_server
from ostoolkit.errors import InvalidRequest, OstoolkitError, Terminated, describe_os_error
from ostoolkit.files import check_output_path, write_stdout, write_text
from ostoolkit.forktree import DEFAULT_MAX_PROCS, TreeConfig, build_tree, read_subtree
from ostoolkit.host import collect_host
from ostoolkit.measure.clone import measure_clone
from ostoolkit.measure.cow import MAX_COW_MB, measure_cow
from ostoolkit.measure.memory import (
    MAX_PROCESSES,
    MAX_THREADS,
    MemoryConfig,
    measure_memory,
)
from ostoolkit.measure.memory import MODELS as MEMORY_MODELS
from ostoolkit.measure.perfbench import add_perf_findings, cross_check_perf
from ostoolkit.measure.sched import measure_timeslice, timeslice_steps
from ostoolkit.measure.spawn import (
    MAX_PARENT_RSS_MB,
    METHODS,
    SpawnConfig,
    measure_spawn,
    spawn_step_count,
)
from ostoolkit.measure.states import STATES_STEPS, observe_states
from ostoolkit.measure.switch import (
    MAX_ITERATIONS,
    MAX_WORKING_SET_KB,
    MODELS,
    PLACEMENTS,
    SwitchConfig,
    measure_switch,
    step_count,
)
from ostoolkit.render import FORMATS, draw_tree, render
from ostoolkit.report import Measurement, Report, build_report
from ostoolkit.scratch import sweep_stale_tempdirs
from ostoolkit.suite import SECTIONS, check_suite, parse_sections, run_suite

F = TypeVar("F", bound=Callable[..., Any])
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
ASCII_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
ASCII_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
MAX_REPEAT = 1000
# Longer numbers are out of every range here; int() refuses over 4300 digits with a ValueError.
MAX_DIGITS = 32
# perf's loops per run for --cross-check, and runs per model.
PERF_LOOPS = {True: 20_000, False: 100_000}
PERF_RUNS = {True: 3, False: 5}


def shown(value: str) -> str:
    """A user's value quoted for a one-line message, cut short if it is long."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


def _range_text(low: float | None, high: float | None) -> str:
    """An accepted range as a message says it: 'within 0.1..60', 'at least 1'."""
    if low is not None and high is not None:
        return f"within {low}..{high}"
    return f"at least {low}" if low is not None else f"at most {high}"


class StrictIntRange(click.IntRange):
    """An integer range that takes ASCII digits only: int() would also read '١٠' as 10."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not (
            ASCII_INT.fullmatch(value.strip()) and len(value) <= MAX_DIGITS
        ):
            self.fail(
                f"{shown(value)} is not a whole number {_range_text(self.min, self.max)}",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


class FiniteFloatRange(click.FloatRange):
    """A float range that refuses nan and inf: a comparison with nan is always false."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        accepted = _range_text(self.min, self.max)
        if isinstance(value, str) and not (
            ASCII_FLOAT.fullmatch(value.strip()) and len(value) <= MAX_DIGITS
        ):
            self.fail(f"{shown(value)} is not a finite number {accepted}", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{shown(value)} is not a finite number {accepted}", param, ctx)
        return number


def parse_int_list(value: str, lo: int, hi: int, example: str) -> tuple[int, ...]:
    """Parse "1,10,100" into distinct whole numbers within lo..hi, in the order given.

    The one parser of every comma-separated count option: ASCII digits only, no empty item,
    no repeat, each within range; anything else raises BadParameter naming the range.
    """
    parts = [part.strip() for part in value.split(",")]
    if not value.strip() or not all(ASCII_INT.fullmatch(part) for part in parts):
        raise click.BadParameter(
            f"{shown(value)} is not a comma-separated list of whole numbers {lo}..{hi}, "
            f"e.g. {example}"
        )
    if any(len(part) > MAX_DIGITS for part in parts):
        raise click.BadParameter(f"{shown(value)}: each number must be within {lo}..{hi}")
    numbers = tuple(int(part) for part in parts)
    if len(set(numbers)) != len(numbers):
        raise click.BadParameter(f"{shown(value)} names a number twice")
    if not all(lo <= n <= hi for n in numbers):
        raise click.BadParameter(f"{shown(value)}: each number must be within {lo}..{hi}")
    return numbers


def check_json_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse an unusable --json PATH before any work ('-' is stdout)."""
    if value is None or value == "-":
        return value
    try:
        check_output_path(value, "--json")
    except InvalidRequest as err:
        raise click.BadParameter(str(err).removeprefix("--json ")) from None
    return value


def output_options(func: F) -> F:
    """The --format and --json options every command shares."""
    func = click.option(
        "--json",
        "json_path",
        callback=check_json_path,
        metavar="PATH",
        help="Also write the JSON report (schema ostoolkit/1) to PATH; '-' for stdout.",
    )(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="How to print the result on stdout.",
    )(func)


def emit(report: Report, fmt: str, json_path: str | None, full_host: bool = False) -> None:
    """Print the report; with --json - stdout carries only JSON and the table goes to stderr."""
    if json_path == "-":
        write_stdout(report.to_json())
        if fmt != "json":
            click.echo(render(report, fmt, full_host), err=True, nl=False)
        return
    if json_path:
        write_text(json_path, report.to_json(), "--json")
    write_stdout(render(report, fmt, full_host))


class InputError(click.ClickException):
    """A request refused as asked: one line on stderr, exit status 2 like a usage error."""

    exit_code = 2


@contextmanager
def progress_bar(steps: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr when it is a terminal; yields its update function or None."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=steps, label=label, file=sys.stderr) as bar:
        yield bar.update


def now_utc() -> str:
    """The current time as ISO 8601 UTC with a Z, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@contextmanager
def cli_errors(debug: bool) -> Iterator[None]:
    """Turn interrupts, the project's errors and OS errors into exit codes and one line.

    The one boundary: a command's children are already ended and reaped when an exception
    gets here (they are closed by context managers on the way up).
    """
    try:
        with raising_on_sigterm():
            yield
    except KeyboardInterrupt:
        click.echo("interrupted: every child was ended and reaped", err=True)
        raise click.exceptions.Exit(EXIT_SIGINT) from None
    except Terminated:
        click.echo("terminated: every child was ended and reaped", err=True)
        raise click.exceptions.Exit(EXIT_SIGTERM) from None
    except OSError as err:
        if debug:
            raise
        fail(describe_os_error(err, "ostoolkit"))
    except OstoolkitError as err:
        if debug:
            raise
        fail(err)


def fail(err: OstoolkitError) -> NoReturn:
    """Raise the click exception for one of the project's errors: exit 2 for a refused request."""
    if isinstance(err, InvalidRequest):
        raise InputError(str(err)) from None
    raise click.ClickException(str(err)) from None


def run_command(
    ctx: click.Context,
    measure: Callable[[], Measurement],
    fmt: str,
    json_path: str | None,
    full_host: bool = False,
    host_from: Callable[[Measurement], dict[str, Any]] | None = None,
) -> Report:
    """The common trip: host fingerprint, one measurement, one report, one render.

    ``host_from`` is for a command that measures nothing on this machine (compare): the
    report's host block is made from its result instead, and this host is not fingerprinted.
    """
    debug = bool(ctx.find_root().params.get("debug"))
    with cli_errors(debug):
        started_at, start = now_utc(), time.monotonic()
        host = collect_host() if host_from is None else {}
        measurement = measure()
        if host_from is not None:
            host = host_from(measurement)
        report = build_report(
            ctx.info_name or "ostoolkit",
            sys.argv[1:],
            measurement,
            host,
            started_at,
            time.monotonic() - start,
        )
        emit(report, fmt, json_path, full_host)
    return report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ostoolkit")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """See what processes and threads really cost on this Linux host."""
    if not sys.platform.startswith("linux"):
        click.echo(f"ostoolkit: needs Linux (this is {sys.platform})", err=True)
        raise click.exceptions.Exit(2)
    sweep_stale_tempdirs()  # what killed runs left in $TMPDIR (scratch.run_tempdir)


@cli.command(epilog="Examples:\n\n\b\n  ostoolkit host\n  ostoolkit host --json host.json")
@output_options
@click.pass_context
def host(ctx: click.Context, fmt: str, json_path: str | None) -> None:
    """Print the host fingerprint every report carries.

    CPU model, CPUs this process may use, kernel and preemption model, virtualisation,
    CPU-vulnerability mitigations, clock source, cpufreq governor, Python and load average.
    A field that cannot be read says "unknown".
    """
    run_command(ctx, lambda: Measurement(()), fmt, json_path, full_host=True)


def parse_cpus(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    """Parse --cpus "0,1" into CPUs this process may use (sched_getaffinity(2))."""
    if value is None:
        return ()
    allowed = sorted(os.sched_getaffinity(0))
    cpus = parse_int_list(value, 0, max(allowed), "0,1")
    refused = [cpu for cpu in cpus if cpu not in allowed]
    if refused:
        raise click.BadParameter(
            f"CPU {refused[0]} is not available to this process; choose from "
            + ",".join(map(str, allowed))
        )
    return cpus


SWITCH_EPILOG = """Examples:

\b
  ostoolkit measure-switch                  # careful run, about 10 s
  ostoolkit measure-switch --quick --json -  # CI: the JSON report on stdout
  ostoolkit measure-switch --working-set 256 --model process
  ostoolkit measure-switch --cross-check     # beside perf bench sched pipe
"""


@cli.command("measure-switch", epilog=SWITCH_EPILOG)
@click.option(
    "--model",
    "models",
    type=click.Choice(MODELS),
    multiple=True,
    help="process (os.fork) or thread (threading); repeat for both.  [default: both]",
)
@click.option(
    "--placement",
    "placements",
    type=click.Choice([p.replace("_", "-") for p in PLACEMENTS]),
    multiple=True,
    help="same-core (a real switch per hop) or cross-core (wake-up latency across CPUs).  "
    "[default: both]",
)
@click.option(
    "--iterations",
    type=StrictIntRange(1, MAX_ITERATIONS),
    help="Round trips per sample.  [default: calibrated to about 50 ms, 20 ms with --quick]",
)
@click.option(
    "--repeat",
    type=StrictIntRange(1, MAX_REPEAT),
    help="Samples per figure, taken in up to 5 blocks spread over the run, each with a fresh "
    "partner and a warm-up.  [default: 30, 15 with --quick]",
)
@click.option(
    "--working-set",
    "working_set_kb",
    type=StrictIntRange(0, MAX_WORKING_SET_KB),
    default=0,
    show_default=True,
    metavar="KB",
    help="Each task reads its own buffer of this size before every hop (lmbench lat_ctx size).",
)
@click.option("--cpus", callback=parse_cpus,
              help="One CPU (same-core) or two (cross-core) of those this process may use, "
              "e.g. 2,3.  [default: the first allowed]")  # fmt: skip
@click.option("--quick", is_flag=True, help="Finish in about a second (for CI logs).")
@click.option(
    "--cross-check", is_flag=True, help="Also run perf bench sched pipe (and -T) on the same CPU."
)
@output_options
@click.pass_context
def measure_switch_command(
    ctx: click.Context,
    models: tuple[str, ...],
    placements: tuple[str, ...],
    iterations: int | None,
    repeat: int | None,
    working_set_kb: int,
    cpus: tuple[int, ...],
    quick: bool,
    cross_check: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Measure the cost of a context switch between two processes and between two threads.

    Two tasks bounce a one-byte token over two pipes (the lmbench / perf bench sched pipe
    method), pinned to one CPU (same-core: every hop is a real switch) or to two CPUs
    (cross-core: wake-up latency). Each figure is given gross (round trip / 2) and net (minus
    the same write+read done without a switch, measured in the same run), beside the
    article's claims, checked against the kernel's own switch counters.
    """
    config = SwitchConfig(
        models=models or MODELS,
        placements=tuple(p.replace("-", "_") for p in placements) or PLACEMENTS,
        repeat=repeat or (15 if quick else 30),
        iterations=iterations,
        target_sample_s=0.02 if quick else 0.05,
        working_set_kb=working_set_kb,
        cpus=cpus or None,
    )

    def measure() -> Measurement:
        steps = step_count(config, len(os.sched_getaffinity(0)))
        with progress_bar(steps, "measuring switches") as progress:
            measurement = measure_switch(config, progress)
        if cross_check:
            cpu = next(
                (r.extra["cpus"][0] for r in measurement.results if r.id.endswith("same_core")),
                min(os.sched_getaffinity(0)),
            )
            measurement = add_perf_findings(
                measurement + cross_check_perf(cpu, PERF_LOOPS[quick], PERF_RUNS[quick])
            )
        return measurement

    run_command(ctx, measure, fmt, json_path)


FORK_TREE_EPILOG = """Examples:

\b
  ostoolkit fork-tree                       # 3 levels x 2 children: 14 processes
  ostoolkit fork-tree --depth 2 --breadth 4 --exec
  ostoolkit fork-tree --pid 1               # draw what is running, read-only
  ostoolkit fork-tree --format json         # the tree as nested data
"""
MAX_TREE_PROCS = 4096


@cli.command("fork-tree", epilog=FORK_TREE_EPILOG)
@click.option("--depth", type=StrictIntRange(1, 16), default=3, show_default=True,
              help="Levels of processes below ostoolkit.")  # fmt: skip
@click.option("--breadth", type=StrictIntRange(1, 64), default=2, show_default=True,
              help="Children each process forks.")  # fmt: skip
@click.option("--exec", "exec_leaves", is_flag=True,
              help="Each leaf also forks and execve()s a small program (cat).")  # fmt: skip
@click.option("--max-procs", type=StrictIntRange(1, MAX_TREE_PROCS), default=DEFAULT_MAX_PROCS,
              show_default=True, help="Refuse a tree that would start more processes.")  # fmt: skip
@click.option("--pid", type=StrictIntRange(1), help="Draw this existing process's subtree instead.")
@click.option("--hold", is_flag=True,
              help="Keep the tree standing (drawn on stderr) until Enter, Ctrl-D or Ctrl-C, "
              "to look at it with ps or pstree.")  # fmt: skip
@output_options
@click.pass_context
def fork_tree_command(
    ctx: click.Context,
    depth: int,
    breadth: int,
    exec_leaves: bool,
    max_procs: int,
    pid: int | None,
    hold: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Fork a real process tree and draw it, with its ancestry up to PID 1.

    Each process of the tree forks its children (timed), then blocks until the tree has been
    read; the drawing shows pid, command, state, RSS, USS and fork (and fork+exec) times, like
    pstree -p. Then every process exits and is reaped. With --pid, an existing subtree is
    drawn read-only instead.
    """
    if pid is not None and exec_leaves:
        raise click.UsageError("--exec builds a tree; it cannot be used with --pid")
    if pid is not None and hold:
        raise click.UsageError("--hold keeps a tree ostoolkit built; it cannot be used with --pid")
    if hold and (sys.stdin is None or sys.stdin.closed):
        raise click.UsageError("--hold waits for Enter on stdin, but stdin is closed")
    config = TreeConfig(depth, breadth, exec_leaves, max_procs)

    def hold_tree(measurement: Measurement) -> None:
        click.echo(draw_tree(measurement.data["tree"]), err=True)
        click.echo("holding the tree: press Enter or Ctrl-D to end it", err=True)
        sys.stdin.readline()

    def measure() -> Measurement:
        if pid is not None:
            return read_subtree(pid)
        return build_tree(config, on_ready=hold_tree if hold else None)

    run_command(ctx, measure, fmt, json_path)


def parse_sizes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    """Parse --parent-rss "0,256,1024" into distinct MiB sizes within range."""
    if value is None:
        return ()
    return parse_int_list(value, 0, MAX_PARENT_RSS_MB, "256,1024")


SPAWN_EPILOG = """Examples:

\b
  ostoolkit measure-spawn                          # about 5 s
  ostoolkit measure-spawn --quick --json spawn.json
  ostoolkit measure-spawn --method fork --method thread --parent-rss 0,256,1024
"""


@cli.command("measure-spawn", epilog=SPAWN_EPILOG)
@click.option("--method", "methods", type=click.Choice(METHODS), multiple=True,
              help="Creation method to time; repeat for several.  [default: all]")  # fmt: skip
@click.option("--repeat", type=StrictIntRange(1, MAX_REPEAT),
              help="Timed operations per method.  [default: 30, 10 with --quick]")  # fmt: skip
@click.option("--mp-repeat", type=StrictIntRange(1, MAX_REPEAT),
              help="Starts per multiprocessing method.  [default: 10, 3 with --quick]")  # fmt: skip
@click.option("--parent-rss", "parent_rss_mb", callback=parse_sizes, metavar="MB,...",
              help="Also time fork with the parent holding this much more memory.")  # fmt: skip
@click.option("--quick", is_flag=True, help="Fewer repetitions (for CI logs).")
@output_options
@click.pass_context
def measure_spawn_command(
    ctx: click.Context,
    methods: tuple[str, ...],
    repeat: int | None,
    mp_repeat: int | None,
    parent_rss_mb: tuple[int, ...],
    quick: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Measure what creating a process or a thread costs, one creation at a time.

    fork+exit+waitpid, fork+execve of /bin/true, os.posix_spawn, subprocess.run, a thread's
    start+join, and one worker with each multiprocessing start method (fork, forkserver,
    spawn); each as a ratio to a thread start. --parent-rss shows fork growing with the
    page tables it copies.
    """
    config = SpawnConfig(
        repeat=repeat or (10 if quick else 30),
        mp_repeat=mp_repeat or (3 if quick else 10),
        methods=methods or METHODS,
        parent_rss_mb=parent_rss_mb,
    )

    def measure() -> Measurement:
        with progress_bar(spawn_step_count(config), "timing creations") as progress:
            return measure_spawn(config, progress)

    run_command(ctx, measure, fmt, json_path)


def count_list(most: int) -> Callable[[click.Context, click.Parameter, str], tuple[int, ...]]:
    """A callback parsing --workers/--clients "1,10,100" into distinct counts 1..most, sorted."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
        return tuple(sorted(parse_int_list(value, 1, most, "1,10,100")))

    return parse


MEMORY_EPILOG = """Examples:

\b
  ostoolkit measure-memory                         # 1, 10 and 100 workers of each model
  ostoolkit measure-memory --model thread --workers 100,1000,10000
  ostoolkit measure-memory --cow --size 256        # copy-on-write, step by step
"""


@cli.command("measure-memory", epilog=MEMORY_EPILOG)
@click.option("--workers", callback=count_list(MAX_THREADS), default="1,10,100",
              show_default=True,
              help=f"Worker counts to measure (processes up to {MAX_PROCESSES}, threads up to "
              f"{MAX_THREADS}).")  # fmt: skip
@click.option("--model", "models", type=click.Choice(MEMORY_MODELS), multiple=True,
              help="Worker model; repeat for several.  [default: all]")  # fmt: skip
@click.option("--cow", is_flag=True, help="Show copy-on-write after fork instead.")
@click.option("--size", type=StrictIntRange(1, MAX_COW_MB), default=64, show_default=True,
              metavar="MB", help="With --cow: the parent's memory the child writes.")  # fmt: skip
@click.option("--repeat", type=StrictIntRange(1, 100), default=3, show_default=True,
              help="With --cow: children forked, one after the other.")  # fmt: skip
@click.option("--quick", is_flag=True, help="1 and 10 workers, or one --cow child.")
@output_options
@click.pass_context
def measure_memory_command(
    ctx: click.Context,
    workers: tuple[int, ...],
    models: tuple[str, ...],
    cow: bool,
    size: int,
    repeat: int,
    quick: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Measure the memory one more process costs, and one more thread, honestly counted.

    N idle workers (forked processes, threads, fork+execve'd interpreters, multiprocessing
    'spawn' workers) each write the same small state and block; the whole group is measured
    by USS, PSS and RSS against the same group with no worker, and the cost per worker is
    the slope. --cow instead forks a child over the parent's memory and shows its unique
    memory growing only with what it writes.
    """
    if quick and ctx.get_parameter_source("workers") == click.core.ParameterSource.DEFAULT:
        workers = (1, 10)

    def measure() -> Measurement:
        if cow:
            runs = 1 if quick else repeat
            with progress_bar(runs, "copy-on-write") as progress:
                return measure_cow(size, runs, progress)
        config = MemoryConfig(workers=workers, models=models or MEMORY_MODELS)
        with progress_bar(len(config.models) * (len(workers) + 1), "measuring memory") as progress:
            return measure_memory(config, progress)

    run_command(ctx, measure, fmt, json_path)


CONNECTIONS_EPILOG = """Examples:

\b
  ostoolkit connections                            # 3 models x 10, 100, 1000 clients
  ostoolkit connections --quick --json conn.json   # 10 and 100 clients
  ostoolkit connections --model pooled --pool-size 5 --clients 2000
"""


@cli.command("connections", epilog=CONNECTIONS_EPILOG)
@click.option("--clients", callback=count_list(MAX_CLIENTS), default="10,100,1000",
              show_default=True,
              help=f"Concurrent connections, opened first (up to {MAX_CLIENTS}).")  # fmt: skip
@click.option("--model", "models", type=click.Choice(CONNECTION_MODELS), multiple=True,
              help="Built-in server model; repeat for several.  [default: all]")  # fmt: skip
@click.option("--queries", type=StrictIntRange(1, 10000), default=20, show_default=True,
              help="Queries each connection runs, one in flight at a time.")  # fmt: skip
@click.option("--pool-size", type=StrictIntRange(1, 1000), default=DEFAULT_POOL_SIZE,
              show_default=True, help="Server connections the pooler funnels into.")  # fmt: skip
@click.option("--postgres", metavar="DSN",
              help="Measure this PostgreSQL instead: postgresql://user@host:port/db")  # fmt: skip
@click.option("--mysql", metavar="DSN",
              help="Measure this MySQL/MariaDB instead: mysql://user@host:port/db")  # fmt: skip
@click.option("--pgbouncer", metavar="DSN",
              help="Measure this PgBouncer instead: postgresql://user@host:port/db")  # fmt: skip
@click.option("--quick", is_flag=True, help="10 and 100 clients (for CI logs).")
@output_options
@click.pass_context
def connections_command(
    ctx: click.Context,
    clients: tuple[int, ...],
    models: tuple[str, ...],
    queries: int,
    pool_size: int,
    postgres: str | None,
    mysql: str | None,
    pgbouncer: str | None,
    quick: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Process- vs thread-per-connection and a pooler's funnel, on built-in servers.

    A postmaster-like server forks a backend per connection; a mysqld-like one starts a
    thread per connection; a PgBouncer-like funnel passes every query over a fixed pool of
    server connections. For each, C clients (from separate processes) connect first, then
    run their queries: server processes, threads, memory per connection (PSS), throughput,
    latency and connection set-up time, all on 127.0.0.1.
    """
    if quick and ctx.get_parameter_source("clients") == click.core.ParameterSource.DEFAULT:
        clients = (10, 100)
    given = (("postgres", postgres), ("mysql", mysql), ("pgbouncer", pgbouncer))
    for kind, dsn in given:
        if dsn is not None and not dsn.strip():
            raise click.BadParameter("is empty: give a DSN, e.g. ...://user@127.0.0.1:PORT/db",
                                     param_hint=f"--{kind}")  # fmt: skip
    real = {k: v for k, v in given if v}
    if real and models:
        raise click.UsageError("--model runs the built-in servers; measure real ones without it")
    config = ConnectionsConfig(clients, models or CONNECTION_MODELS, queries, pool_size)

    def measure() -> Measurement:
        if real:
            with progress_bar(len(real) * (len(clients) + 1), "loading servers") as progress:
                measurements = [
                    measure_real_server(k, v, clients, progress) for k, v in real.items()
                ]
            return functools.reduce(operator.add, measurements)
        steps = len(config.models) * len(config.clients)
        with progress_bar(steps, "loading servers") as progress:
            return measure_connections(config, progress)

    run_command(ctx, measure, fmt, json_path)


STATES_EPILOG = """Examples:

\b
  ostoolkit states                  # the states, then two busy processes sharing a CPU for 1 s
  ostoolkit states --cpu 1 --duration 3 --windows 30
"""


@cli.command("states", epilog=STATES_EPILOG)
@click.option(
    "--cpu", type=StrictIntRange(0), help="CPU the children share.  [default: the last allowed]"
)
@click.option("--duration", type=FiniteFloatRange(0.1, 60), default=1.0, show_default=True,
              help="Seconds two busy processes share one CPU for the slice figures.")  # fmt: skip
@click.option("--windows", type=StrictIntRange(1, 1000), default=10, show_default=True,
              help="Windows the duration is split into: the samples of each figure.")  # fmt: skip
@output_options
@click.pass_context
def states_command(
    ctx: click.Context,
    cpu: int | None,
    duration: float,
    windows: int,
    fmt: str,
    json_path: str | None,
) -> None:
    """Walk real processes through the article's states, then measure the time slice.

    Running, ready (two busy processes on one CPU), waiting (blocked on a pipe), stopped
    (SIGSTOP), zombie (exited, not reaped), killed and reaped: each with what psutil and
    /proc/PID/stat report, timestamped. Then two CPU-bound processes share one CPU: the
    average slice (schedstat run time / slices), the run-queue wait per slice and the
    involuntary switches per second, beside the article's "milliseconds".
    """
    if cpu is not None and cpu not in os.sched_getaffinity(0):
        allowed = ",".join(map(str, sorted(os.sched_getaffinity(0))))
        raise click.BadParameter(
            f"CPU {cpu} is not available to this process; choose from {allowed}", param_hint="--cpu"
        )

    def measure() -> Measurement:
        steps = STATES_STEPS + timeslice_steps(windows)
        with progress_bar(steps, "walking states") as progress:
            states = observe_states(cpu, progress)
            return states + measure_timeslice(duration, windows, cpu, progress)

    run_command(ctx, measure, fmt, json_path)


COMPARE_EPILOG = """Examples:

\b
  ostoolkit compare examples/reports/           # every report in a folder
  ostoolkit compare a.json b.json --label laptop --label ci-runner
  ostoolkit compare base.json new.json --fail-above 1.2 --changed
  ostoolkit compare base.json new.json --threshold 10 --json compare.json
"""


@cli.command("compare", epilog=COMPARE_EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--label", "labels", multiple=True,
              help="A column's name, once per report, each different.  "
              "[default: host, CPU, kernel]")  # fmt: skip
@click.option(
    "--baseline", metavar="LABEL", help="The column others are compared with.  [default: the first]"
)
@click.option("--threshold", type=FiniteFloatRange(0, MAX_THRESHOLD * 100, min_open=True),
              default=DEFAULT_THRESHOLD * 100, show_default=True, metavar="PCT",
              help="The band of no practical difference: a figure whose whole 95 % interval "
              "lies within ±PCT % of the baseline is the same.")  # fmt: skip
@click.option("--fail-above", type=FiniteFloatRange(1.0, min_open=True), metavar="RATIO",
              help="Exit 1 when a figure is worse than the baseline (slower, more, or lower "
              "per second) and even its interval's end nearest 1 is beyond RATIO.")  # fmt: skip
@click.option("--changed", is_flag=True, help="Show only the figures whose verdict is not same.")
@output_options
@click.pass_context
def compare_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    labels: tuple[str, ...],
    baseline: str | None,
    threshold: float,
    fail_above: float | None,
    changed: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Compare saved reports (files, or folders of them) across hosts, from their samples.

    For each figure: the ratio of its median to the baseline's, a 95 % bootstrap interval of
    that ratio and a Mann-Whitney U test. The interval against a band of ±PCT % gives one
    word: slower/faster (times), more/less (memory, counts), higher/lower (other units), same
    (inside the band), unclear (straddling it, or too few samples), missing. Noise status and
    the interference a measurement saw are shown beside, never as the verdict. Nothing is
    measured: the report's host block names the compared hosts. With GITHUB_STEP_SUMMARY set,
    the markdown is appended there too.
    """
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary is not None:
        with cli_errors(bool(ctx.find_root().params.get("debug"))):
            check_output_path(summary, "GITHUB_STEP_SUMMARY")

    def measure() -> Measurement:
        reports = load_all(paths)
        return compare_reports(
            reports, labels, baseline, fail_above, threshold / 100, changed_only=changed
        )

    report = run_command(ctx, measure, fmt, json_path, host_from=compared_hosts)
    if summary:
        with cli_errors(False):
            write_text(summary, render(report, "markdown"), "GITHUB_STEP_SUMMARY", append=True)
    if report.data["fail_above"] is not None and report.data["regressions"]:
        raise click.exceptions.Exit(1)


REPORT_EPILOG = """Examples:

\b
  ostoolkit report --json report.json           # everything, quick settings
  ostoolkit report --only switch,states --format markdown
  ostoolkit report --full --json careful.json
"""


@cli.command("report", epilog=REPORT_EPILOG)
@click.option("--full", is_flag=True, help="Careful settings instead of quick ones (minutes).")
@click.option("--only", metavar="SECTIONS",
              help=f"Comma-separated sections.  [default: {','.join(SECTIONS)}]")  # fmt: skip
@output_options
@click.pass_context
def report_command(
    ctx: click.Context, full: bool, only: str | None, fmt: str, json_path: str | None
) -> None:
    """Run every measurement and set each of the article's claims beside this host.

    One report with every figure (switch, spawn, fork tree, states and time slice, memory,
    connections) and "the article vs this host": context switch ~5 µs, thread switch ~1 µs,
    ~5× faster, time slices of milliseconds, pools of 5–50, processes heavier than threads.
    When GITHUB_STEP_SUMMARY is set, the markdown summary is appended there too.
    """
    try:
        sections = parse_sections(only)
    except InvalidRequest as err:
        raise click.BadParameter(str(err).removeprefix("--only "), param_hint="--only") from None
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    with cli_errors(bool(ctx.find_root().params.get("debug"))):
        if summary is not None:
            check_output_path(summary, "GITHUB_STEP_SUMMARY")
        check_suite(sections, full)

    def measure() -> Measurement:
        with progress_bar(len(sections), "measuring") as progress:
            return run_suite(sections, full, progress)

    report = run_command(ctx, measure, fmt, json_path)
    if summary:
        with cli_errors(False):
            write_text(summary, render(report, "markdown"), "GITHUB_STEP_SUMMARY", append=True)


@cli.command("clone", epilog="Examples:\n\n\b\n  ostoolkit clone\n  ostoolkit clone --json -")
@output_options
@click.pass_context
def clone_command(ctx: click.Context, fmt: str, json_path: str | None) -> None:
    """Show what a forked child, a thread and a spawned program share with their parent.

    Each new task changes one thing after it starts (a variable, its fd table, its working
    directory, a signal's handler) and the parent looks whether it changed too; with strace
    installed, the clone(2) flags the C library really passed are shown beside.
    """
    run_command(ctx, measure_clone, fmt, json_path)


def run_cli(argv: list[str]) -> int:
    """Run the CLI on ``argv`` and return its exit status; click's errors shown in one place.

    Called by ``ostoolkit.entry.main``, which owns interrupts that land outside a command.
    """
    try:
        code = cli.main(args=argv, prog_name="ostoolkit", standalone_mode=False)
    except click.exceptions.Abort:
        raise KeyboardInterrupt from None
    except click.ClickException as err:
        err.show()
        return err.exit_code
    return code if isinstance(code, int) else 0
