"""What one more client connection costs a real database server running on this host.

PostgreSQL (a backend process per connection), MariaDB/MySQL (a thread per connection) and
PgBouncer (a pool of server connections), measured alike: connections added step by step,
the server's processes summed (the slope of PSS over C). Memory only for a local server
(``discovery``); drivers in ``drivers``. The method: docs/method.md, "connections".
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    import_driver,
    one_line,
    open_admin,
    open_client,
    parse_target,
    server_version,
)
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.limits import LEAST_COUNT, farthest_outside
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.stats import slope
from ostoolkit.units import format_size

SERVERS = ("postgres", "mysql", "pgbouncer")


@dataclass(frozen=True)
class ServerTotal:
    """The server's whole process group at one client count: memory (bytes) and tasks."""

    clients: int
    uss: int
    pss: int
    rss: int
    processes: int
    threads: int


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


def measure_group(pid: int, clients: int) -> ServerTotal:
    """Sum USS, PSS and RSS, processes and threads over a server and all its children.

    A child that exits meanwhile (an autovacuum worker, say) is left out; psutil.AccessDenied
    propagates: reading another user's smaps needs root (proc(5): ptrace access mode).
    """
    top = psutil.Process(pid)
    uss = pss = rss = processes = threads = 0
    for proc in [top, *top.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            count = proc.num_threads()
        except psutil.NoSuchProcess:
            if proc.pid == pid:
                raise
            continue
        uss, pss, rss = uss + info.uss, pss + info.pss, rss + info.rss
        processes, threads = processes + 1, threads + count
    return ServerTotal(clients, uss, pss, rss, processes, threads)


@dataclass
class _Run:
    """What one measurement gathers as the client count grows."""

    connect_ms: list[float]
    totals: list[ServerTotal]
    backends: dict[int, int]
    version: str = "unknown"
    pool_size: int | None = None
    backend_parents_ok: bool = True


def _measure_once(
    server_pid: int | None, clients: int, warnings: list[str]
) -> tuple[int | None, ServerTotal | None]:
    """Measure the group, or warn once and stop measuring memory when psutil may not."""
    if server_pid is None:
        return None, None
    try:
        return server_pid, measure_group(server_pid, clients)
    except psutil.AccessDenied:
        warnings.append(
            f"memory not measured: psutil may not read the server's memory (pid {server_pid}, "
            "another user's process): run as that user or as root"
        )
    except psutil.NoSuchProcess:
        warnings.append(f"memory not measured: the server (pid {server_pid}) exited")
    return None, None


def _run_clients(
    target: Target,
    counts: tuple[int, ...],
    server_pid: int | None,
    warnings: list[str],
    progress: Progress | None,
) -> tuple[_Run, int | None]:
    """Open clients up to each count, query, and measure; close every connection at the end."""
    run = _Run([], [], {})
    open_clients: list[Client] = []
    admin = open_admin(target, warnings) if target.kind == "pgbouncer" else None
    try:
        server_pid, total = _measure_once(server_pid, 0, warnings)
        if total:
            run.totals.append(total)
        if admin:
            run.backends[0] = admin.servers()
            run.pool_size = admin.pool_size()
        if progress:
            progress(1)
        for count in counts:
            fresh: list[Client] = []
            while len(open_clients) < count:
                client, ms = open_client(target, len(open_clients) + 1, counts[-1])
                open_clients.append(client)
                fresh.append(client)
                run.connect_ms.append(ms)
            for client in fresh:
                client.select_one()
            if run.version == "unknown":
                run.version = server_version(target.kind, open_clients[0], admin)
            if target.kind == "postgres" and server_pid is not None:
                run.backend_parents_ok = run.backend_parents_ok and discovery.check_backends(
                    fresh, server_pid
                )
            if admin:
                burst(open_clients)
                run.backends[count] = admin.servers()
            server_pid, total = _measure_once(server_pid, count, warnings)
            if total:
                run.totals.append(total)
            if progress:
                progress(1)
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
    return run, server_pid


def _label(kind: str, version: str) -> str:
    """The server's name for labels: MariaDB says so in its version string."""
    if kind == "mysql" and "mariadb" in version.lower():
        return "MariaDB"
    return LABELS[kind]


def _memory_results(
    kind: str,
    label: str,
    totals: list[ServerTotal],
    extra: dict[str, Any],
    interference: Interference | None = None,
) -> list[Result]:
    """Memory per connection (PSS marginals, with USS/PSS/RSS slopes), processes and threads."""
    base, top = totals[0], totals[-1]
    marginals = [(t.pss - base.pss) / t.clients for t in totals[1:]]
    slopes = {
        metric: round(slope([(t.clients, float(getattr(t, metric))) for t in totals]))
        for metric in ("uss", "pss", "rss")
    }
    by_clients = {
        str(t.clients): {
            "uss": t.uss,
            "pss": t.pss,
            "rss": t.rss,
            "processes": t.processes,
            "threads": t.threads,
        }
        for t in totals
    }
    tasks = {
        "model": kind,
        "clients": top.clients,
        "by_clients": {
            str(t.clients): {"processes": t.processes, "threads": t.threads} for t in totals
        },
    }
    return [
        make_result(
            f"conn.{kind}.mem_per_conn",
            f"{label}: memory per connection (PSS)",
            "bytes",
            marginals,
            extra={**extra, "slope_bytes": slopes, "by_clients": by_clients},
            interference=interference,
        ),
        make_result(
            f"conn.{kind}.procs",
            f"{label}: server processes at {top.clients} clients",
            "count",
            [top.processes],
            extra=tasks,
            interference=interference,
        ),
        make_result(
            f"conn.{kind}.threads",
            f"{label}: server threads at {top.clients} clients",
            "count",
            [top.threads],
            extra=tasks,
            interference=interference,
        ),
    ]


def _findings(kind: str, label: str, run: _Run) -> list[str]:
    """Say in words what one connection costs this server, and what the pool did."""
    findings = []
    if run.totals:
        base, top = run.totals[0], run.totals[-1]
        pss, uss, rss = (
            slope([(t.clients, float(getattr(t, metric))) for t in run.totals])
            for metric in ("pss", "uss", "rss")
        )
        cost = f"costing {format_size(pss)} (PSS; {format_size(uss)} USS)"
        if kind == "postgres":
            findings.append(
                f"{label}: each connection is a backend process ({top.processes - base.processes} "
                f"more processes for {top.clients} clients) {cost}; summed RSS would say "
                f"{format_size(rss)}, counting shared memory once per backend"
            )
        elif kind == "mysql":
            findings.append(
                f"{label}: each connection is a thread in one server process "
                f"({top.threads - base.threads} more threads for {top.clients} clients) {cost}"
            )
        else:
            findings.append(
                f"{label}: each client costs the pooler itself {format_size(pss)} (PSS)"
            )
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
    """Open ever more connections to a real server and measure what each one costs it.

    The interference meter counts a local server's processes as the measurement's own (their
    work is for our clients); where it cannot, the shares are context only (``_metered_as``).
    """
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
        run, server_pid = _run_clients(target, counts, server_pid, warnings, progress)
    interference = _metered_as(
        kind, located, discovery.locality(target.host) is not None, meter.result
    )
    if not run.backend_parents_ok:
        warnings.append(
            f"memory not measured: some backends are not children of pid {server_pid}: "
            "the process on the port is not the server that answered"
        )
        run.totals.clear()
    label = _label(kind, run.version)
    # The run's parameters ride in every result's extra: the server, and the largest count.
    extra: dict[str, Any] = {
        "server_pid": server_pid,
        "version": run.version,
        "model": kind,
        "clients": counts[-1],
    }
    results: list[Result] = []
    if run.totals:
        results.extend(_memory_results(kind, label, run.totals, extra, interference))
    results.append(
        make_result(
            f"conn.{kind}.connect_ms",
            f"{label}: time to open a connection",
            "ms",
            run.connect_ms,
            extra=extra,
            interference=interference,
        )
    )
    if kind == "pgbouncer" and run.backends:
        top = max(run.backends)
        results.append(
            make_result(
                "conn.pgbouncer.backends",
                f"PgBouncer: server connections held for {top} clients",
                "count",
                [run.backends[top]],
                extra={
                    "by_clients": {str(c): n for c, n in run.backends.items()},
                    **extra,
                    "pool_size": run.pool_size,
                },
                interference=interference,
            )
        )
    return Measurement(tuple(results), tuple(_findings(kind, label, run)), tuple(warnings))
