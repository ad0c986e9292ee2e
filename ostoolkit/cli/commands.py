"""The commands beside measure-*: host, fork-tree, states, connections, report, clone.

Each parses its options with the types in ``options`` and makes one library call through
``run_command``; connections reads its quick and careful client counts from
``ConnectionsConfig``, states its time slice's duration and windows from ``TimesliceConfig``.
"""

from __future__ import annotations

import functools
import operator
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import click

from ostoolkit.cli.options import (
    AllowedCpu,
    F,
    FiniteFloatRange,
    StrictIntRange,
    counts,
    given,
    listed,
    output_options,
    spoken,
)
from ostoolkit.cli.run import cli_errors, debugging, run_command, with_progress
from ostoolkit.connections.builtin.measure import (
    MAX_CLIENTS,
    MIN_RUN_QUERIES,
    ConnectionsConfig,
    measure_connections,
)
from ostoolkit.connections.builtin.measure import MODELS as CONNECTION_MODELS
from ostoolkit.connections.dsn.measure import measure_real_server, real_server_steps
from ostoolkit.connections.real.results import measure_real
from ostoolkit.connections.real.run import MAX_REAL_CLIENTS, RealConfig, resolve_servers
from ostoolkit.connections.real.servers import KINDS as REAL_SERVERS
from ostoolkit.errors import InvalidRequest
from ostoolkit.files import check_output_path, write_text
from ostoolkit.measure.clone import measure_clone
from ostoolkit.measure.forktree import DEFAULT_MAX_PROCS, TreeConfig, build_tree, read_subtree
from ostoolkit.measure.sched import TimesliceConfig, measure_timeslice
from ostoolkit.measure.states import STATES_STEPS, observe_states
from ostoolkit.render import draw_tree, render
from ostoolkit.report import Measurement, Progress
from ostoolkit.suite import (
    MAX_RUNS,
    RUNS,
    SECTIONS,
    Preset,
    check_suite,
    parse_sections,
    run_suite,
)

CONNECTIONS, QUICK_CONNECTIONS = ConnectionsConfig.full(), ConnectionsConfig.quick()
TIMESLICE, QUICK_TIMESLICE = TimesliceConfig.full(), TimesliceConfig.quick()
MAX_TREE_PROCS = 4096


@click.command(epilog="Examples:\n\n\b\n  ostoolkit host\n  ostoolkit host --json host.json")
@output_options
@click.pass_context
def host(ctx: click.Context, fmt: str, json_path: str | None) -> None:
    """Print the host fingerprint every report carries.

    CPU model, CPUs this process may use, kernel and preemption model, virtualisation,
    CPU-vulnerability mitigations, clock source, cpufreq governor, Python and load average.
    A field that cannot be read says "unknown".
    """
    run_command(ctx, lambda: Measurement(()), fmt, json_path, full_host=True)


FORK_TREE_EPILOG = """Examples:

\b
  ostoolkit fork-tree                       # 3 levels x 2 children: 14 processes
  ostoolkit fork-tree --depth 2 --breadth 4 --exec
  ostoolkit fork-tree --pid 1               # draw what is running, read-only
  ostoolkit fork-tree --format json         # the tree as nested data
"""


@click.command("fork-tree", epilog=FORK_TREE_EPILOG)
@click.option(
    "--depth",
    type=StrictIntRange(1, 16),
    default=3,
    show_default=True,
    help="Levels of processes below ostoolkit.",
)
@click.option(
    "--breadth",
    type=StrictIntRange(1, 64),
    default=2,
    show_default=True,
    help="Children each process forks.",
)
@click.option(
    "--exec",
    "exec_leaves",
    is_flag=True,
    help="Each leaf also forks and execve()s a small program (cat).",
)
@click.option(
    "--max-procs",
    type=StrictIntRange(1, MAX_TREE_PROCS),
    default=DEFAULT_MAX_PROCS,
    show_default=True,
    help="Refuse a tree that would start more processes.",
)
@click.option("--pid", type=StrictIntRange(1), help="Draw this existing process's subtree instead.")
@click.option(
    "--threads",
    "show_threads",
    is_flag=True,
    help="With --pid: draw each process's threads too, like pstree ({name}(tid) state).",
)
@click.option(
    "--hold",
    is_flag=True,
    help="Keep the tree standing (drawn on stderr) until Enter, Ctrl-D or Ctrl-C, "
    "to look at it with ps or pstree.",
)
@output_options
@click.pass_context
def fork_tree_command(
    ctx: click.Context,
    depth: int,
    breadth: int,
    exec_leaves: bool,
    max_procs: int,
    pid: int | None,
    show_threads: bool,
    hold: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Fork a real process tree and draw it, with its ancestry up to PID 1.

    The tree grows below a small Python process (ostoolkit-tree), so each fork copies a small
    process. Each process of the tree forks its children (timed), then blocks until the tree
    has been read; the drawing shows pid, command, state, RSS, USS and fork (and fork+exec)
    times, like pstree -p. Then every process exits and is reaped. Under the tree: each
    phase's wall time (fork, /proc snapshot, teardown) and the floor, fork cost x processes /
    CPUs. With --pid, an existing subtree is drawn read-only instead.
    """
    if pid is not None and exec_leaves:
        raise click.UsageError("--exec builds a tree; it cannot be used with --pid")
    if show_threads and pid is None:
        raise click.UsageError("--threads draws an existing process's threads: give --pid")
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
            return read_subtree(pid, threads=show_threads)
        return build_tree(config, on_ready=hold_tree if hold else None)

    run_command(ctx, measure, fmt, json_path)


EVERY_CONNECTION = f"{len(CONNECTION_MODELS)} models x {', '.join(map(str, CONNECTIONS.clients))}"
CONNECTIONS_EPILOG = f"""Examples:

\b
  ostoolkit connections                            # {EVERY_CONNECTION} clients
  ostoolkit connections --quick --json conn.json   # {spoken(QUICK_CONNECTIONS.clients)} clients
  ostoolkit connections --model pooled --pool-size 5 --clients 2000
  ostoolkit connections --real --quick              # throwaway PostgreSQL, MariaDB, PgBouncer
  ostoolkit connections --real postgres,pgbouncer --clients 10,100,1000 --connect-per-tx
"""
REAL_DEFAULT = RealConfig(servers=())
EMPTY_DSN = "is empty: give a DSN, e.g. ...://user@127.0.0.1:PORT/db"


def dsn_option(kind: str, server: str, scheme: str) -> Callable[[F], F]:
    """--postgres, --mysql or --pgbouncer: measure a running server, named by its DSN."""
    return click.option(
        f"--{kind}",
        metavar="DSN",
        help=f"Measure this {server} instead: {scheme}://user@host:port/db",
    )


@click.command("connections", epilog=CONNECTIONS_EPILOG)
@click.option(
    "--clients",
    type=counts(MAX_CLIENTS),
    default=listed(CONNECTIONS.clients),
    show_default=True,
    help=f"Concurrent connections, opened first (up to {MAX_CLIENTS}).",
)
@click.option(
    "--model",
    "models",
    type=click.Choice(CONNECTION_MODELS),
    multiple=True,
    help="Built-in server model; repeat for several.  [default: all]",
)
@click.option(
    "--queries",
    type=StrictIntRange(1, 10000),
    default=CONNECTIONS.queries,
    show_default=True,
    help="Queries each connection runs, one in flight at a time (built-in servers: more at "
    f"few clients, {MIN_RUN_QUERIES} in all at the least).",
)
@click.option(
    "--pool-size",
    type=StrictIntRange(1, 1000),
    default=CONNECTIONS.pool_size,
    show_default=True,
    help="Server connections the pooler funnels into.",
)
@dsn_option("postgres", "PostgreSQL", "postgresql")
@dsn_option("mysql", "MySQL/MariaDB", "mysql")
@dsn_option("pgbouncer", "PgBouncer", "postgresql")
@click.option(
    "--real",
    metavar="SERVERS",
    is_flag=False,
    flag_value="all",
    help=f"Start throwaway real servers and load them: all installed, or some of "
    f"{','.join(REAL_SERVERS)}.",
)
@click.option(
    "--duration",
    type=FiniteFloatRange(0.5, 60),
    default=REAL_DEFAULT.duration_s,
    show_default=True,
    help="With --real: seconds of transactions per server and client count.",
)
@click.option(
    "--connect-per-tx",
    is_flag=True,
    help="With --real: a new connection per transaction (pgbench -C).",
)
@click.option(
    "--quick", is_flag=True, help=f"{spoken(QUICK_CONNECTIONS.clients)} clients (for CI logs)."
)
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
    real: str | None,
    duration: float,
    connect_per_tx: bool,
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

    With --real, the same on PostgreSQL, MariaDB (a thread per connection, or its thread
    pool) and PgBouncer started from this host's packages in a temporary directory,
    loaded pgbench-style, with each server's connection limit and pgbench beside.
    """
    if real is not None:
        asked = RealConfig((), clients, duration, pool_size, connect_per_tx)
        real_config = _real_config(ctx, real, asked, quick, (models, postgres, mysql, pgbouncer))
        run_real = partial(measure_real, real_config)
        run_command(
            ctx,
            with_progress(real_config.steps(), "loading real servers", run_real),
            fmt,
            json_path,
        )
        return
    if given(ctx, "duration", "connect_per_tx"):
        raise click.UsageError("--duration and --connect-per-tx need --real")
    preset = QUICK_CONNECTIONS if quick else CONNECTIONS
    if not given(ctx, "clients"):
        clients = preset.clients
    named = (("postgres", postgres), ("mysql", mysql), ("pgbouncer", pgbouncer))
    for kind, dsn in named:
        if dsn is not None and not dsn.strip():
            raise click.BadParameter(EMPTY_DSN, param_hint=f"--{kind}")
    dsns = {k: v for k, v in named if v}
    if dsns and models:
        raise click.UsageError("--model runs the built-in servers; measure real ones without it")
    config = replace(
        preset,
        clients=clients,
        models=models or preset.models,
        queries=queries,
        pool_size=pool_size,
    )

    def measure_dsns(progress: Progress | None) -> Measurement:
        measured = [measure_real_server(k, v, clients, progress) for k, v in dsns.items()]
        return functools.reduce(operator.add, measured)

    if dsns:
        steps, measure = len(dsns) * real_server_steps(clients), measure_dsns
    else:
        steps, measure = config.steps(), partial(measure_connections, config)
    run_command(ctx, with_progress(steps, "loading servers", measure), fmt, json_path)


def _real_config(
    ctx: click.Context, real: str, asked: RealConfig, quick: bool, builtin_only: tuple[object, ...]
) -> RealConfig:
    """connections --real: check the options that do not go with it, then name the servers.

    ``asked`` holds the command line's clients, duration, pool size and connect-per-tx (the
    servers are read from ``real``); ``builtin_only`` the options of the built-in servers.
    """
    if any(builtin_only):
        raise click.UsageError(
            "--real starts its own servers: leave out --model, --postgres, --mysql and --pgbouncer"
        )
    if given(ctx, "queries"):
        raise click.UsageError("--real runs for --duration seconds: leave out --queries")
    clients, duration = asked.clients, asked.duration_s
    if not given(ctx, "clients"):
        clients = RealConfig.quick_clients() if quick else REAL_DEFAULT.clients
    if max(clients) > MAX_REAL_CLIENTS:
        too_many = f"{max(clients)} is above {MAX_REAL_CLIENTS}, the most --real opens"
        raise click.BadParameter(too_many, param_hint="--clients")
    if quick and not given(ctx, "duration"):
        duration = 2.0
    names = [name.strip() for name in real.split(",") if name.strip()]
    with cli_errors(debugging(ctx)):
        servers = resolve_servers(names)
    return replace(asked, servers=servers, clients=clients, duration_s=duration)


SHARED_CPU = f"two busy processes sharing a CPU for {TIMESLICE.duration_s:g} s"
QUICK_SLICE = f"{QUICK_TIMESLICE.duration_s:g} s, {QUICK_TIMESLICE.windows} windows"
STATES_EPILOG = f"""Examples:

\b
  ostoolkit states                  # the states, then {SHARED_CPU}
  ostoolkit states --quick          # the time slice over {QUICK_SLICE} (for CI logs)
  ostoolkit states --cpu 1 --duration 10 --windows 100
"""


@click.command("states", epilog=STATES_EPILOG)
@click.option(
    "--cpu", type=AllowedCpu(), help="CPU the children share.  [default: the last allowed]"
)
@click.option(
    "--duration",
    type=FiniteFloatRange(0.1, 60),
    default=TIMESLICE.duration_s,
    show_default=True,
    help="Seconds two busy processes share one CPU for the slice figures "
    f"({QUICK_TIMESLICE.duration_s:g} with --quick).",
)
@click.option(
    "--windows",
    type=StrictIntRange(1, 1000),
    default=TIMESLICE.windows,
    show_default=True,
    help="Windows the duration is split into: the samples of each figure "
    f"({QUICK_TIMESLICE.windows} with --quick).",
)
@click.option("--quick", is_flag=True, help=f"Time the slice over {QUICK_SLICE} (for CI logs).")
@output_options
@click.pass_context
def states_command(
    ctx: click.Context,
    cpu: int | None,
    duration: float,
    windows: int,
    quick: bool,
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
    preset = QUICK_TIMESLICE if quick else TIMESLICE
    config = replace(
        preset,
        duration_s=duration if given(ctx, "duration") else preset.duration_s,
        windows=windows if given(ctx, "windows") else preset.windows,
        cpu=cpu,
    )

    def measure(progress: Progress | None) -> Measurement:
        states = observe_states(cpu, progress)
        return states + measure_timeslice(config.duration_s, config.windows, config.cpu, progress)

    steps = STATES_STEPS + config.steps()
    run_command(ctx, with_progress(steps, "walking states", measure), fmt, json_path)


REPORT_EPILOG = """Examples:

\b
  ostoolkit report --quick --json report.json   # everything in 3 runs, under 30 s
  ostoolkit report --json report.json           # 5 runs, under 90 s
  ostoolkit report --only switch,states --format markdown
  ostoolkit report --full --json careful.json   # careful settings, real servers (minutes)
"""


@click.command("report", epilog=REPORT_EPILOG)
@click.option(
    "--quick", is_flag=True, help=f"{RUNS['quick']} short runs of every section (under 30 s)."
)
@click.option(
    "--full",
    is_flag=True,
    help=f"Careful settings, {RUNS['full']} runs, and the real servers where installed (minutes).",
)
@click.option(
    "--runs",
    type=StrictIntRange(1, MAX_RUNS),
    help=f"Independent runs of every section, interleaved.  [default: {RUNS['quick']} with "
    f"--quick, {RUNS['default']}, {RUNS['full']} with --full]",
)
@click.option(
    "--only", metavar="SECTIONS", help=f"Comma-separated sections.  [default: {','.join(SECTIONS)}]"
)
@output_options
@click.pass_context
def report_command(
    ctx: click.Context,
    quick: bool,
    full: bool,
    runs: int | None,
    only: str | None,
    fmt: str,
    json_path: str | None,
) -> None:
    """Run every measurement several times and set each of the article's claims beside this host.

    One report with every figure (switch, spawn, fork tree, states and time slice, memory,
    connections) and "the article vs this host": context switch ~5 µs, thread switch ~1 µs,
    ~5× faster, time slices of milliseconds, pools of 5–50, processes heavier than threads.
    Every section runs several times, interleaved: each figure holds its runs, which is what
    compare needs to tell a real difference from the variation between runs.
    When GITHUB_STEP_SUMMARY is set, the markdown summary is appended there too.
    """
    if quick and full:
        raise click.UsageError("--quick and --full are two presets: choose one")
    try:
        sections = parse_sections(only)
    except InvalidRequest as err:
        raise click.BadParameter(str(err).removeprefix("--only "), param_hint="--only") from None
    preset = Preset.named("full" if full else "quick" if quick else "default", runs)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    with cli_errors(debugging(ctx)):
        if summary is not None:
            check_output_path(summary, "GITHUB_STEP_SUMMARY")
        check_suite(sections, preset)

    steps = len(sections) * preset.runs
    measure = with_progress(steps, "measuring", partial(run_suite, sections, preset))
    report = run_command(ctx, measure, fmt, json_path)
    if summary:
        with cli_errors(False):
            write_text(summary, render(report, "markdown"), "GITHUB_STEP_SUMMARY", append=True)


@click.command("clone", epilog="Examples:\n\n\b\n  ostoolkit clone\n  ostoolkit clone --json -")
@output_options
@click.pass_context
def clone_command(ctx: click.Context, fmt: str, json_path: str | None) -> None:
    """Show what a forked child, a thread and a spawned program share with their parent.

    Each new task changes one thing after it starts (a variable, its fd table, its working
    directory, a signal's handler) and the parent looks whether it changed too; with strace
    installed, the clone(2) flags the C library really passed are shown beside.
    """
    run_command(ctx, measure_clone, fmt, json_path)


COMMANDS = (
    host,
    fork_tree_command,
    connections_command,
    states_command,
    report_command,
    clone_command,
)
