"""What one more client connection costs a real server given by DSN (PostgreSQL, MySQL or
MariaDB, PgBouncer): connections added step by step, the server's processes summed (PSS over C),
memory only for a local server (``discovery``). The method: docs/method.md, "connections"."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psutil

from ostoolkit.budget import enough_open_files
from ostoolkit.connections.builtin.measure import MAX_CLIENTS
from ostoolkit.connections.dsn import discovery
from ostoolkit.connections.dsn.drivers import (
    LABELS,
    Client,
    Target,
    burst,
    driver_errors,
    fetch_one,
    import_driver,
    one_line,
    open_admin,
    open_client,
    parse_target,
    server_version,
)
from ostoolkit.connections.group import ServerState, figure_maker, read_group
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.limits import LEAST_COUNT, farthest_outside
from ostoolkit.report import Measurement, Progress, Result
from ostoolkit.stats import slope
from ostoolkit.units import format_size

SERVERS = ("postgres", "mysql", "pgbouncer")
MEMORY = ("uss", "pss", "rss")


def check_clients(clients: Sequence[int]) -> tuple[int, ...]:
    """Client counts, ascending and distinct, each within 1..MAX_CLIENTS (0 is always added)."""
    counts = tuple(sorted(set(clients)))
    if not counts:
        raise InvalidRequest("give at least one client count")
    if farthest_outside(counts, LEAST_COUNT, MAX_CLIENTS) is not None:
        raise InvalidRequest(
            f"client counts must be within {LEAST_COUNT}..{MAX_CLIENTS}; got {list(counts)}"
        )
    return counts


def real_server_steps(clients: Sequence[int]) -> int:
    """How many progress steps ``measure_real_server`` reports: the idle server, then one per
    distinct client count."""
    return len(set(clients)) + 1


@dataclass
class _Run:
    """What one measurement gathers as the client count grows: the server group by client
    count (0 first), PgBouncer's server connections by client count; ``server_pid`` None once
    the server's memory cannot be read."""

    server_pid: int | None
    connect_ms: list[float] = field(default_factory=list)
    totals: dict[int, ServerState] = field(default_factory=dict)
    backends: dict[int, int] = field(default_factory=dict)
    version: str = "unknown"
    pool_size: int | None = None
    backend_parents_ok: bool = True


def _run_clients(
    target: Target,
    counts: tuple[int, ...],
    server_pid: int | None,
    warnings: list[str],
    progress: Progress | None,
) -> _Run:
    """Open clients up to each count, query, and measure; close every connection at the end."""
    run = _Run(server_pid)
    open_clients: list[Client] = []
    admin = open_admin(target, warnings) if target.kind == "pgbouncer" else None

    def measure(count: int) -> None:
        """Read the server group, or warn once and read it no more when psutil may not."""
        pid = run.server_pid
        if pid is not None:
            try:
                run.totals[count] = read_group([pid])
            except psutil.AccessDenied:
                warnings.append(
                    "memory not measured: psutil may not read the server's memory "
                    f"(pid {pid}, another user's process): run as that user or as root"
                )
                run.server_pid = None
            except psutil.NoSuchProcess:
                warnings.append(f"memory not measured: the server (pid {pid}) exited")
                run.server_pid = None
        if progress:
            progress(1)

    try:
        measure(0)
        if admin:
            run.backends[0] = admin.servers()
            run.pool_size = admin.pool_size()
        for count in counts:
            fresh: list[Client] = []
            while len(open_clients) < count:
                client, ms = open_client(target, len(open_clients) + 1, counts[-1])
                open_clients.append(client)
                fresh.append(client)
                run.connect_ms.append(ms)
            for client in fresh:
                fetch_one(client, "SELECT 1")
            if run.version == "unknown":
                run.version = server_version(target.kind, open_clients[0], admin)
            if target.kind == "postgres" and run.server_pid is not None:
                run.backend_parents_ok = run.backend_parents_ok and discovery.check_backends(
                    fresh, run.server_pid
                )
            if admin:
                burst(open_clients)
                run.backends[count] = admin.servers()
            measure(count)
    except driver_errors(target.kind) as err:
        raise OstoolkitError(
            f"{LABELS[target.kind]} at {target.where} failed with {len(open_clients)} clients "
            f"open: {one_line(err)}"
        ) from err
    finally:
        for client in open_clients:
            with contextlib.suppress(Exception):
                client.close()
        if admin:
            with contextlib.suppress(Exception):
                admin.close()
    if len(run.totals) != len(counts) + 1:  # memory could not be read at every count
        run.totals.clear()
    return run


def _slopes(totals: dict[int, ServerState]) -> dict[str, float]:
    """USS, PSS and RSS per connection: each one's least-squares slope over the client count."""
    return {m: slope([(c, float(getattr(t, m))) for c, t in totals.items()]) for m in MEMORY}


def _memory_results(
    figure: Callable[..., Result], kind: str, totals: dict[int, ServerState], extra: dict[str, Any]
) -> list[Result]:
    """Memory per connection (PSS marginals, with USS/PSS/RSS slopes), processes and threads."""
    clients = max(totals)
    top = totals[clients]
    marginals = [(t.pss - totals[0].pss) / c for c, t in totals.items() if c]
    slopes = {metric: round(value) for metric, value in _slopes(totals).items()}
    fields = (*MEMORY, "processes", "threads")
    by_clients = {str(c): {f: getattr(t, f) for f in fields} for c, t in totals.items()}
    tasks = {c: {f: v[f] for f in fields[3:]} for c, v in by_clients.items()}
    counted = {"model": kind, "clients": clients, "by_clients": tasks}
    at = f"at {clients} clients"
    return [
        figure(
            "mem_per_conn",
            "memory per connection (PSS)",
            "bytes",
            marginals,
            extra={**extra, "slope_bytes": slopes, "by_clients": by_clients},
        ),
        figure("procs", f"server processes {at}", "count", [top.processes], extra=counted),
        figure("threads", f"server threads {at}", "count", [top.threads], extra=counted),
    ]


def _findings(kind: str, label: str, run: _Run) -> list[str]:
    """Say in words what one connection costs this server, and what the pool did."""
    findings = []
    if run.totals:
        clients = max(run.totals)
        base, top = run.totals[0], run.totals[clients]
        slopes = _slopes(run.totals)
        pss = format_size(slopes["pss"])
        cost = f"costing {pss} (PSS; {format_size(slopes['uss'])} USS)"
        if kind == "postgres":
            findings.append(
                f"{label}: each connection is a backend process ({top.processes - base.processes} "
                f"more processes for {clients} clients) {cost}; summed RSS would say "
                f"{format_size(slopes['rss'])}, counting shared memory once per backend"
            )
        elif kind == "mysql":
            findings.append(
                f"{label}: each connection is a thread in one server process "
                f"({top.threads - base.threads} more threads for {clients} clients) {cost}"
            )
        else:
            findings.append(f"{label}: each client costs the pooler itself {pss} (PSS)")
    if kind == "pgbouncer" and run.backends:
        top_clients = max(run.backends)
        pool = f" (pool_size {run.pool_size})" if run.pool_size is not None else ""
        findings.append(
            f"PgBouncer held {run.backends[top_clients]} server connections for {top_clients} "
            f"clients all querying at once{pool}: the rest waited their turn"
        )
    if run.connect_ms:
        ordered = sorted(run.connect_ms)
        findings.append(
            f"{label}: opening a connection took {ordered[len(ordered) // 2]:.2f} ms "
            f"(median of {len(ordered)})"
        )
    return findings


def _metered_as(
    kind: str, located: int | None, remote: bool, measured: Interference
) -> Interference:
    """The run's interference, kept as context only where the server's work cannot be told
    from other tasks': a local server whose process was not found, or PgBouncer's PostgreSQL."""
    if remote or (located is not None and kind != "pgbouncer"):
        return measured
    whose = "the PostgreSQL behind PgBouncer" if kind == "pgbouncer" else "the server's process"
    return replace(
        measured,
        judged=False,
        note=f"CPU interference is context only here: {whose} works for these clients but "
        "cannot be counted as this measurement's own time",
    )


def measure_real_server(
    kind: str, dsn: str, clients: Sequence[int], progress: Progress | None = None
) -> Measurement:
    """Open ever more connections to a real server and measure what each one costs it; the
    interference meter counts a local server's processes as our own (``_metered_as``)."""
    if kind not in SERVERS:
        raise InvalidRequest(f"unknown server {kind!r}; choose from {', '.join(SERVERS)}")
    counts = check_clients(clients)
    import_driver(kind)
    target = parse_target(kind, dsn)
    warnings: list[str] = []
    server_pid, reason = discovery.locate_server(target)
    if reason:
        warnings.append(f"memory not measured: {reason}")
    located = server_pid
    with enough_open_files(counts[-1] + 1), Meter(also=(located,) if located else ()) as meter:
        run = _run_clients(target, counts, server_pid, warnings, progress)
    interference = _metered_as(
        kind, located, discovery.locality(target.host) is not None, meter.result
    )
    if not run.backend_parents_ok:
        warnings.append(
            f"memory not measured: some backends are not children of pid {run.server_pid}: "
            "the process on the port is not the server that answered"
        )
        run.totals.clear()
    mariadb = kind == "mysql" and "mariadb" in run.version.lower()  # its version says so
    label = "MariaDB" if mariadb else LABELS[kind]
    # The run's parameters ride in every result's extra: the server, and the largest count.
    extra: dict[str, Any] = {
        "server_pid": run.server_pid,
        "version": run.version,
        "model": kind,
        "clients": counts[-1],
    }
    figure = figure_maker(f"conn.{kind}", label, extra=extra, interference=interference)
    results = _memory_results(figure, kind, run.totals, extra) if run.totals else []
    results.append(figure("connect_ms", "time to open a connection", "ms", run.connect_ms))
    if kind == "pgbouncer" and run.backends:
        top = max(run.backends)
        by_clients = {str(c): n for c, n in run.backends.items()}
        results.append(
            figure(
                "backends",
                f"server connections held for {top} clients",
                "count",
                [run.backends[top]],
                extra={"by_clients": by_clients, **extra, "pool_size": run.pool_size},
            )
        )
    return Measurement(tuple(results), tuple(_findings(kind, label, run)), tuple(warnings))
