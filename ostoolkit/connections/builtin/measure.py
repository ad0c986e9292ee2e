"""Process- vs thread-per-connection and the pooler's funnel, measured on built-in servers:
read idle, connected in steps (PSS per connection) and queried (q/s and latency per window of
the steady state), one interference meter per run. The method: docs/method.md, "connections"."""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import psutil

from ostoolkit.budget import (
    BYTES_PER_FORKED_PROCESS,
    check_open_files,
    check_task_budget,
    check_thread_room,
    enough_open_files,
)
from ostoolkit.claims import CLAIMS, POOLED_NON_BACKENDS
from ostoolkit.connections.builtin.servers import (
    Serve,
    Server,
    serve_pooled,
    serve_process,
    serve_thread,
)
from ostoolkit.connections.clients import (
    MAX_CLIENT_PROCESSES,
    LoadResult,
    LoadRun,
    builtin_client,
    query_windows,
)
from ostoolkit.connections.group import (
    PAGE_BYTES,
    ServerState,
    figure_maker,
    read_group,
    table_row,
)
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.limits import LEAST_COUNT, farthest_outside
from ostoolkit.payloads import SummaryTable
from ostoolkit.report import Measurement, Progress, Result

MODELS = ("process", "thread", "pooled")
DEFAULT_POOL_SIZE = 20
# The most client connections one run opens, built-in or real server alike (the DSN path reads it).
MAX_CLIENTS = 10000
LABELS = {
    "process": "process-per-connection",
    "thread": "thread-per-connection",
    "pooled": "pooled",
}
# A run makes at least this many queries, however few its clients, so that each window holds
# MIN_WINDOW_QUERIES even when the steady state is a fifth of the query phase (docs/method.md).
MIN_RUN_QUERIES = 2000
# Connections open in this many steps, the server's PSS read after each (never during the
# queries, which it would slow): the samples of the memory per connection (docs/method.md).
MEM_STEPS = 5


@dataclass(frozen=True)
class ConnectionsConfig:
    """Models to run, client counts, queries per connection and the pool's size."""

    clients: tuple[int, ...] = (10, 100, 1000)
    models: tuple[str, ...] = MODELS
    queries: int = 20  # per connection, at the least (``queries_per_connection``)
    pool_size: int = DEFAULT_POOL_SIZE

    @classmethod
    def full(cls) -> ConnectionsConfig:
        """The careful settings (the defaults): 10, 100 and 1000 clients of each model."""
        return cls()

    @classmethod
    def quick(cls) -> ConnectionsConfig:
        """10 and 100 clients, for CI logs and the report's quick run."""
        return cls(clients=(10, 100))

    def steps(self) -> int:
        """How many progress steps ``measure_connections`` reports (one per model and count)."""
        return len(self.models) * len(self.clients)


def open_files_per_process(model: str, clients: int, pool_size: int) -> tuple[int, str]:
    """The most sockets one process of a ``model`` run holds, and which process that is: each
    holds its own ends only (the pooler every client's and its pool's, the thread server one per
    client, a backend one, a load client its share; ostoolkit pipes only)."""
    share = -(-clients // min(MAX_CLIENT_PROCESSES, clients))
    servers = {
        "process": (1, "the supervisor"),
        "thread": (clients + 1, "the thread server"),
        "pooled": (clients + pool_size + 2, "the pooler"),
    }
    return max(servers[model], (share, "each load client"))


def open_files_needed(config: ConnectionsConfig) -> tuple[int, str]:
    """The open files the busiest process of any run needs at once, and which process it is
    (raising the soft limit to that before forking is enough: every child inherits it)."""
    top = max(config.clients)
    return max(open_files_per_process(m, top, config.pool_size) for m in config.models)


def queries_per_connection(queries: int, clients: int) -> int:
    """The queries each connection runs: ``queries``, or more so that the run makes
    MIN_RUN_QUERIES in all."""
    return max(queries, -(-MIN_RUN_QUERIES // clients))


def check_config(config: ConnectionsConfig) -> None:
    """Refuse, before any server starts, what the host's limits cannot take: tasks, memory,
    open files, and the address space the thread server's stacks reserve (a thread each)."""
    for model in config.models:
        if model not in MODELS:
            raise InvalidRequest(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    top = max(config.clients)
    outside = farthest_outside(config.clients, LEAST_COUNT, MAX_CLIENTS)
    if outside is not None:
        raise InvalidRequest(f"--clients {outside} is outside {LEAST_COUNT}..{MAX_CLIENTS}")
    if "process" in config.models or "pooled" in config.models:
        backends = top if "process" in config.models else config.pool_size
        # A backend per connection costs about a forked Python at the most.
        check_task_budget(backends + 8, BYTES_PER_FORKED_PROCESS, "--clients")
    if "thread" in config.models:
        check_thread_room(top, f"--clients {top} (the thread server)", "--clients")
    fds, holder = open_files_needed(config)
    check_open_files(fds, f"--clients {top} ({holder})", "lower --clients")


def _read(pids: Sequence[int], memory: bool = True, counters: bool = True) -> ServerState:
    """The server group (``read_group``); a built-in server that exited is an error."""
    try:
        return read_group(pids, memory, counters)
    except psutil.NoSuchProcess as err:
        raise OstoolkitError(f"a built-in server (pid {err.pid}) exited during the run") from err


def _start_model(model: str, stack: contextlib.ExitStack, pool_size: int) -> list[Server]:
    """Start one model's server(s), the one clients talk to first, each stop already on
    ``stack``. The pooled model is a funnel before a process server, stopped before it."""

    def start(serve: Serve) -> Server:
        return stack.enter_context(Server(serve)).start()

    if model == "thread":
        return [start(serve_thread)]
    upstream = start(serve_process)
    if model == "process":
        return [upstream]
    pooler = partial(serve_pooled, upstream_port=upstream.port, pool_size=pool_size)
    return [start(pooler), upstream]


@dataclass(frozen=True)
class RunFigures:
    """One model at one client count: the server idle, loaded, ``after`` the queries (memory
    not read), and the load; ``steps``: each connect step's connections and the PSS after it."""

    model: str
    clients: int
    idle: ServerState
    loaded: ServerState
    after: ServerState
    load: LoadResult
    steps: tuple[tuple[int, int], ...]
    interference: Interference | None = None

    @property
    def switches_per_query(self) -> float:
        """The server's context switches per query over the query phase."""
        return (self.after.switches - self.loaded.switches) / max(self.load.queries, 1)


def run_model(model: str, clients: int, queries: int, pool_size: int) -> RunFigures:
    """Start the model's server, connect ``clients``, run the queries, stop everything: the
    clients first, then their server, then its upstream, so that no process sees a peer vanish."""
    with contextlib.ExitStack() as stack:
        servers = _start_model(model, stack, pool_size)
        pids = [s.pid for s in servers]
        client = builtin_client(servers[0].port, queries)
        load = stack.enter_context(LoadRun(clients, client, steps=MEM_STEPS))
        load.start()
        idle = _read(pids)
        connect_us: list[float] = []
        steps: list[tuple[int, int]] = []
        for step in range(load.steps):
            opened = [t for report in load.phase() for t in report["connect_us"]]
            connect_us += opened
            if step < load.steps - 1:  # the last step's PSS is read with the rest, below
                steps.append((len(opened), _read(pids, counters=False).pss))
        loaded = _read(pids)
        steps.append((len(opened), loaded.pss))
        result = load.run(connect_us)
        after = _read(pids, memory=False)  # for its switches
        load.finish()
    return RunFigures(model, clients, idle, loaded, after, result, tuple(steps))


def mem_samples(run: RunFigures) -> list[float]:
    """PSS per connection, a sample per connect step: the PSS it added over the connections it
    opened. Why: docs/method.md, "connections"."""
    pss = [run.idle.pss, *(after for _, after in run.steps)]
    return [(pss[i + 1] - pss[i]) / opened for i, (opened, _) in enumerate(run.steps)]


def figures_to_results(run: RunFigures) -> list[Result]:
    """The six documented results of one run, plus connect time and switches per query."""
    server = {
        "processes": run.loaded.processes,
        "threads": run.loaded.threads,
        "open_files": run.loaded.fds,
        "uss_per_conn": round((run.loaded.uss - run.idle.uss) / run.clients),
        "pss_idle": run.idle.pss,
        "pss_loaded": run.loaded.pss,
        "switches_per_query": round(run.switches_per_query, 2),
    }
    windows = query_windows(run.load)
    # The run's parameters, so readers need not parse them back out of the id.
    params: dict[str, Any] = {
        "model": run.model,
        "clients": run.clients,
        "queries": run.load.queries // run.clients,
    }
    label = f"{LABELS[run.model]}, {run.clients} clients"
    figure = figure_maker(
        f"conn.{run.model}.{run.clients}", label, interference=run.interference, extra=params
    )
    return [
        # Each step's connections met a server already holding the earlier steps' (the
        # process model's shared pages are split among more backends each step): the
        # samples differ by their conditions, not by noise alone.
        figure(
            "mem_per_conn",
            "PSS per connection",
            "bytes",
            mem_samples(run),
            extra={**params, **server},
            population=True,
            resolution=PAGE_BYTES,
        ),
        figure("qps", "queries per second", "per_s", windows.rate, notes=windows.notes),
        figure("p50", "latency p50", "us", windows.p50, notes=windows.notes),
        figure("p99", "latency p99", "us", windows.p99, notes=windows.notes),
        figure("procs", "server processes", "count", [run.loaded.processes], exact=True),
        figure("threads", "server threads", "count", [run.loaded.threads], exact=True),
        figure("connect", "connection set-up", "us", run.load.connect_us, population=True),
    ]


# The summary table's columns: name, unit, and the figure (its id's last part) whose median
# the column shows; model, clients and switches/query come from the run itself.
COLUMNS = (
    ("model", "text", ""),
    ("clients", "count", ""),
    ("server procs", "count", "procs"),
    ("threads", "count", "threads"),
    ("memory per connection", "bytes", "mem_per_conn"),
    ("q/s", "per_s", "qps"),
    ("p50", "us", "p50"),
    ("p99", "us", "p99"),
    ("connect p50", "us", "connect"),
    ("switches/query", "number", ""),
)


def summary_table(runs: Sequence[RunFigures], pool_size: int) -> SummaryTable:
    """The table users read: one row per model and client count."""
    rows = [
        table_row(COLUMNS, figures_to_results(run))
        | {
            "model": run.model,
            "clients": run.clients,
            "switches/query": round(run.switches_per_query, 2),
        }
        for run in runs
    ]
    return {
        "columns": [[name, unit] for name, unit, _ in COLUMNS],
        "rows": rows,
        "replaces_results": True,
        "resolutions": {"memory per connection": PAGE_BYTES},
        "note": (
            f"pooled: a funnel into {pool_size} server connections; its memory per connection is "
            "the pooler's cost per client, its backends were already running before the clients; "
            f"memory per connection: the median over {MEM_STEPS} connect steps of the PSS each "
            "added per connection"
        ),
    }


def connection_findings(runs: Sequence[RunFigures], pool_size: int) -> list[str]:
    """Say what the article claims and what this host shows."""
    findings = []
    by = {(r.model, r.clients): r for r in runs}
    top = max(r.clients for r in runs)
    process, thread, pooled = (by.get((model, top)) for model in MODELS)
    if process and thread:
        p_mem = statistics.median(mem_samples(process))  # the figures' own medians
        t_mem = statistics.median(mem_samples(thread))
        ratio = f"{p_mem / t_mem:.0f}×" if t_mem > 0 else "far more than"
        findings.append(
            f"at {top} clients a connection costs {p_mem / 2**20:.2f} MiB as a process and "
            f"{t_mem / 2**10:.0f} KiB as a thread ({ratio}): processes are heavier, as the "
            "article says"
        )
    if thread and thread.switches_per_query > 2:
        findings.append(
            f"the thread server made {thread.switches_per_query:.1f} context switches per query "
            f"at {top} clients: its threads hand CPython's global interpreter lock to each "
            "other, a cost of this Python server, not of threads (mysqld's threads share no "
            "such lock: ostoolkit connections --real mariadb measures a server without one)"
        )
    tails = {
        r.model: statistics.median(query_windows(r.load).p99)
        for r in (process, thread, pooled)
        if r
    }
    if pooled and len(tails) > 1:
        others = ", ".join(f"{ms / 1e3:,.0f} ms {m}" for m, ms in tails.items() if m != "pooled")
        findings.append(
            f"p99 latency at {top} clients: {tails['pooled'] / 1e3:,.0f} ms pooled vs {others}: "
            "the funnel queues queries instead of making the CPUs juggle a task per connection"
        )
    if pooled:
        backends = pooled.loaded.processes - POOLED_NON_BACKENDS
        # Against the process model's own count when it ran; without it there is nothing to
        # set beside (a "?" told the reader nothing).
        against = f", against {process.loaded.processes} without it" if process else ""
        findings.append(
            f"the pooler served {top} clients with {backends} backend processes "
            f"(pool {pool_size}; the article: {CLAIMS['pool_size'].span}): "
            f"{pooled.loaded.processes} server processes in all{against}"
        )
    return findings


def measure_connections(config: ConnectionsConfig, progress: Progress | None = None) -> Measurement:
    """Run every model at every client count; results, summary table and findings."""
    check_config(config)
    runs: list[RunFigures] = []
    with enough_open_files(open_files_needed(config)[0]):  # raised before the forks
        for model in config.models:
            for clients in config.clients:
                queries = queries_per_connection(config.queries, clients)
                with Meter() as meter:
                    run = run_model(model, clients, queries, config.pool_size)
                runs.append(replace(run, interference=meter.result))
                if progress:
                    progress(1)
    results = [r for run in runs for r in figures_to_results(run)]
    return Measurement(
        tuple(results),
        tuple(connection_findings(runs, config.pool_size)),
        data={"table": summary_table(runs, config.pool_size)},
    )
