"""A --real run as results (``conn.<server>.<N>.<figure>``, ``conn.<server>.max_connections``,
``conn.pgbench.<N>.tps``: docs/results.md), a table per client count, charts and findings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ostoolkit.connections.clients import window_figures
from ostoolkit.connections.group import PAGE_BYTES, figure_maker, table_row
from ostoolkit.connections.real.run import (
    LIMIT_MARGIN,
    Ceiling,
    Cell,
    RealConfig,
    RealRun,
    measure_real_load,
)
from ostoolkit.connections.real.servers import LABELS
from ostoolkit.connections.real.transactions import WINDOW_S
from ostoolkit.payloads import Chart, SummaryTable
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.stats import percentile, slope
from ostoolkit.units import format_size, format_us

# pgbench's TPS our client should reach on this host (the 30 %).
CLIENT_TARGET = 0.7
# The tables' columns: name, unit, and the figure (its id's last part) whose median the column
# shows; server and tx/s: the cell's own.
TABLE = (
    ("server", "text", ""),
    ("memory/conn", "bytes", "mem_per_conn"),
    ("tx/s", "per_s", ""),
    ("p50", "us", "p50"),
    ("p99", "us", "p99"),
    ("connect", "us", "connect"),
    ("procs", "count", "procs"),
    ("threads", "count", "threads"),
    ("CPU/tx", "us", "cpu_per_tx"),
    ("switches/tx", "number", "switches_per_tx"),
    ("refused", "count", "refused"),
)


def server_id(kind: str) -> str:
    """A server kind as it appears in ids: mariadb-pool becomes mariadb_pool."""
    return kind.replace("-", "_")


def _per_tx(total: float, cell: Cell) -> float:
    return total / cell.transactions if cell.transactions else 0.0


def pss_slope(run: RealRun, server: str) -> float:
    """PSS per connection as the least-squares slope over every client count of a server:
    each count gives its idle server at 0 connections and its loaded one at C."""
    points = [
        (n, float(pss))
        for c in run.cells
        if c.server == server
        for n, pss in ((0, c.idle.pss), (c.clients, c.loaded.pss))
    ]
    return slope(points) if points else 0.0


def _mem_per_conn(cell: Cell) -> float:
    """PSS the connections added to the server, per connection."""
    return (cell.loaded.pss - cell.idle.pss) / cell.clients


def cell_results(cell: Cell, run: RealRun) -> list[Result]:
    """The ten figures of one server at one client count (no switches with a connection per
    transaction): tps, p50 and p99 a sample per window; CPU and switches one value, as reading a
    thousand backends' /proc every window would take the CPU being timed."""
    sid = server_id(cell.server)
    key, label = f"conn.{sid}.{cell.clients}", f"{LABELS[cell.server]}, {cell.clients} clients"
    mode = "a connection per transaction" if run.config.connect_per_tx else "persistent"
    params: dict[str, Any] = {
        "model": sid,
        "server": sid,
        "clients": cell.clients,
        "mode": mode,
        "duration_s": cell.duration_s,
        "version": run.versions.get(cell.server),
    }
    figure = figure_maker(key, label, interference=cell.interference, extra=params)
    ceiling = run.ceilings.get(cell.server)
    client = {
        "client_cpu_share": round(cell.client_cpu_s / cell.duration_s, 3),
        "client_cpu_per_tx_us": round(_per_tx(cell.client_cpu_s, cell) * 1e6, 2),
        "client_limited": cell.client_cpu_s > cell.server_cpu_s,
        "errors": cell.errors,
        "first_error": cell.first_error,
    }
    windows = window_figures(cell.windows, WINDOW_S)
    tasks: dict[str, Any] = {"extra": {**params, "backends": cell.backends}, "exact": True}
    cpu_us = _per_tx(cell.server_cpu_s, cell) * 1e6
    switches = []
    if not run.config.connect_per_tx:  # exited tasks' switches are lost: see findings
        per_tx = [_per_tx(cell.server_switches, cell)]
        what = "server context switches per transaction"
        switches.append(figure("switches_per_tx", what, "number", per_tx))
    return [
        figure(
            "tps",
            "transactions per second",
            "per_s",
            windows.rate,
            extra={**params, **client, "transactions": cell.transactions},
        ),
        figure("p50", "latency p50", "us", windows.p50),
        figure("p99", "latency p99", "us", windows.p99),
        figure("connect", "connection set-up", "us", cell.connect_us or [0.0], population=True),
        figure(
            "mem_per_conn",
            "PSS per connection",
            "bytes",
            [_mem_per_conn(cell)],
            extra={
                **params,
                "pss_idle": cell.idle.pss,
                "pss_loaded": cell.loaded.pss,
                "uss_loaded": cell.loaded.uss,
                "pss_slope_bytes": round(pss_slope(run, cell.server)),
            },
            resolution=PAGE_BYTES,
        ),
        figure("procs", "server processes", "count", [cell.loaded.processes], **tasks),
        figure("threads", "server threads", "count", [cell.loaded.threads], **tasks),
        figure("cpu_per_tx", "server CPU per transaction", "us", [cpu_us]),
        *switches,
        figure(
            "refused",
            "refused at the default limit",
            "count",
            [ceiling.refused(cell.clients) if ceiling else 0],
            interference=None,
            extra={**params, "refusal": ceiling.refusal if ceiling else None},
            exact=True,
        ),
    ]


def _ceiling_results(run: RealRun) -> list[Result]:
    """Each server's default limit (PgBouncer: the max_client_conn ostoolkit set)."""
    return [
        make_result(
            f"conn.{server_id(kind)}.max_connections",
            f"{LABELS[kind]}: max_connections"
            + (" (max_client_conn, set by ostoolkit)" if kind == "pgbouncer" else " (default)"),
            "count",
            [ceiling.limit or 0],
            exact=True,
            extra={
                "model": server_id(kind),
                "server": server_id(kind),
                "clients": len(ceiling.accepted),
                "accepted": ceiling.accepted.count(True),
                "attempted": len(ceiling.accepted),
                "refusal": ceiling.refusal,
                "superuser_reserved": ceiling.reserved,
            },
        )
        for kind, ceiling in run.ceilings.items()
    ]


def _pgbench_results(run: RealRun) -> list[Result]:
    """pgbench's TPS beside ours, with the ratio: a sample per second (its progress
    reports), its own whole-run TPS in ``extra``."""
    ours = {c.clients: c for c in run.cells if c.server == "postgres"}
    results = []
    for clients, (tps, seconds) in run.pgbench.items():
        cell = ours.get(clients)
        mine = cell.tps if cell else None
        results.append(
            make_result(
                f"conn.pgbench.{clients}.tps",
                f"pgbench -S, {clients} clients: transactions per second",
                "per_s",
                seconds or [tps],
                extra={
                    "model": "pgbench",
                    "clients": clients,
                    "pgbench_tps": tps,
                    "ours_tps": mine,
                    "ours_over_pgbench": round(mine / tps, 3) if mine and tps else None,
                },
            )
        )
    return results


def tables(run: RealRun, results: Sequence[Result]) -> list[SummaryTable]:
    """One table per client count, a row per server."""
    out: list[SummaryTable] = []
    columns = [[name, unit] for name, unit, _ in TABLE]
    for clients in run.config.clients:
        rows = []
        for cell in (c for c in run.cells if c.clients == clients):
            key = f"conn.{server_id(cell.server)}.{clients}."
            row = table_row(TABLE, (r for r in results if r.id.startswith(key)))
            rows.append(row | {"server": LABELS[cell.server], "tx/s": cell.tps})
        if clients in run.pgbench:
            pgbench = {"server": "pgbench -S (PostgreSQL)", "tx/s": run.pgbench[clients][0]}
            rows.append(table_row(TABLE, ()) | pgbench)
        out.append(
            {
                "title": f"{clients} clients",
                "columns": columns,
                "rows": rows,
                "replaces_results": True,
                "note": "",
            }
        )
    mode = (
        "each transaction opens its own connection"
        if run.config.connect_per_tx
        else "connections opened first, then a closed loop"
    )
    out[-1]["note"] = (
        f"pgbench's select-only transaction for {run.config.duration_s:g} s per cell ({mode}); "
        "memory/conn: PSS the connections added; refused: at the server's default limit"
    )
    return out


def charts(run: RealRun) -> list[Chart]:
    """For each server: transactions per second and PSS per connection over the client count."""
    out: list[Chart] = []
    for kind in run.config.servers:
        cells = [c for c in run.cells if c.server == kind]
        if len(cells) < 2:
            continue
        x = [str(c.clients) for c in cells]
        series: list[tuple[str, str, list[float]]] = [
            ("transactions per second", "tx/s", [round(c.tps) for c in cells]),
            ("PSS per connection (KiB)", "KiB", [round(_mem_per_conn(c) / 1024, 1) for c in cells]),
        ]
        for what, unit, values in series:
            title = f"{LABELS[kind]}: {what}"
            out.append(
                {"title": title, "x_label": "clients", "y_label": unit, "x": x, "values": values}
            )
    return out


def limit_change(default: int, used: int) -> str:
    """A limit run at ``used`` instead of ``default``, in words: raised, lowered or set to it."""
    return f"{'raised' if used > default else 'lowered' if used < default else 'set'} to {used}"


def _ceiling_finding(kind: str, ceiling: Ceiling, used: int) -> str:
    """What the server did at its default limit, in its own words."""
    attempted, accepted = len(ceiling.accepted), ceiling.accepted.count(True)
    label = LABELS[kind]
    if kind == "pgbouncer":
        return (
            f"PgBouncer (max_client_conn {ceiling.limit}) accepted {accepted} of {attempted} "
            "clients: a pooler takes far more clients than its server has connections"
        )
    reserved = f", {ceiling.reserved} kept for superusers" if ceiling.reserved else ""
    ran = f"the curves ran with it {limit_change(ceiling.limit or 0, used)}"
    if accepted == attempted:
        return (
            f"{label} accepted all {attempted} clients under its default max_connections "
            f"{ceiling.limit}{reserved}; {ran}"
        )
    return (
        f"{label}, default max_connections {ceiling.limit}{reserved}: accepted {accepted} "
        f'direct clients and refused the other {attempted - accepted}: "{ceiling.refusal}"; {ran}'
    )


def _at_top(cell: Cell, run: RealRun) -> str:
    """A server at its largest client count, as the article would put it."""
    added = f"{format_size(cell.loaded.pss - cell.idle.pss)} PSS"
    if len(run.config.clients) > 1:
        added += f", {format_size(pss_slope(run, cell.server))} per connection by the slope"
    if cell.server == "postgres":
        backends = cell.loaded.processes - cell.idle.processes
        return f"PostgreSQL ran {backends} backend processes ({added})"
    if cell.server == "pgbouncer":
        return f"PgBouncer held {cell.clients} clients on {cell.backends} PostgreSQL backends"
    return (
        f"{LABELS[cell.server]} {cell.loaded.threads} threads in "
        f"{cell.loaded.processes} process ({added})"
    )


# Why --connect-per-tx gives no switches per transaction (the kernel's counts are per task).
PER_TX_SWITCHES = (
    "switches per transaction are not given with --connect-per-tx: each transaction's "
    "backend or thread exits before it can be read, and the kernel keeps an exited task's "
    "switches for its parent's getrusage alone, so the live tasks' count would undercount them"
)


# How to see the servers' shape with fork-tree (the throwaway servers are gone after the run).
FORK_TREE_HINTS = {
    "postgres": "one backend per connection: ostoolkit fork-tree --pid <postmaster pid> "
    "(head -1 $PGDATA/postmaster.pid) while clients are connected",
    "mariadb": "one thread per connection: ostoolkit fork-tree --pid $(pidof mariadbd) --threads",
}


def findings(run: RealRun) -> list[str]:
    """The article's pay-off in words, from this run's figures."""
    out = []
    top = max(run.config.clients)
    for kind, ceiling in run.ceilings.items():  # the limits the curves ran with (real.run)
        used = top + LIMIT_MARGIN + (run.config.pool_size if kind == "postgres" else 0)
        out.append(_ceiling_finding(kind, ceiling, used))
    tops = [c for c in run.cells if c.clients == top]
    if tops:
        out.append(f"at {top} clients: " + "; ".join(_at_top(c, run) for c in tops))
    for kind in run.config.servers:
        cells = [c for c in run.cells if c.server == kind]
        if len(cells) > 1:
            trend = " → ".join(f"{c.tps:,.0f}" for c in cells)
            p99 = " → ".join(format_us(percentile(c.latency_us, 99)) for c in cells)
            cpu = " → ".join(format_us(_per_tx(c.server_cpu_s, c) * 1e6) for c in cells)
            counts = "/".join(str(c.clients) for c in cells)
            out.append(
                f"{LABELS[kind]}: {trend} tx/s at {counts} clients (p99 {p99}; the "
                f"server's CPU per transaction {cpu})"
            )
    for cell in run.cells:
        if cell.client_cpu_s > cell.server_cpu_s:
            out.append(
                f"{LABELS[cell.server]} at {cell.clients} clients: the client limited "
                f"the run (its processes used {cell.client_cpu_s:.1f} CPU-s against the "
                f"server's {cell.server_cpu_s:.1f})"
            )
    out.extend(_against(run, top))
    out.extend(_pgbench_findings(run))
    if run.config.connect_per_tx:
        out.append(PER_TX_SWITCHES)
    out += _connect_finding(run)
    return out + [
        f"to see {h}" for kind, h in FORK_TREE_HINTS.items() if kind in run.config.servers
    ]


def _against(run: RealRun, top: int) -> list[str]:
    """The article's two comparisons at the largest count: the pooler against direct
    connections, MariaDB's thread pool against a thread per connection."""
    at = {c.server: c for c in run.cells if c.clients == top}
    out = []
    direct, pooled = at.get("postgres"), at.get("pgbouncer")
    if direct and pooled and direct.tps > 0:
        out.append(
            f"at {top} clients PgBouncer's {pooled.backends} backends gave {pooled.tps:,.0f} "
            f"tx/s (p99 {format_us(percentile(pooled.latency_us, 99))}) against "
            f"{direct.tps:,.0f} tx/s (p99 {format_us(percentile(direct.latency_us, 99))}) "
            f"from {direct.loaded.processes - direct.idle.processes} direct backends: "
            f"{pooled.tps / direct.tps:.2f}×"
        )
    threads, pool = at.get("mariadb"), at.get("mariadb-pool")
    if threads and pool and threads.tps > 0:
        switches = (
            ""  # live tasks only: exited threads took theirs with them (PER_TX_SWITCHES)
            if run.config.connect_per_tx
            else f"{_per_tx(pool.server_switches, pool):.2f} against "
            f"{_per_tx(threads.server_switches, threads):.2f} context switches per transaction, "
        )
        out.append(
            f"at {top} clients MariaDB's thread pool ran {pool.loaded.threads} threads against "
            f"{threads.loaded.threads} with a thread per connection, {switches}"
            f"{pool.tps:,.0f} against {threads.tps:,.0f} tx/s"
        )
    return out


def _pgbench_findings(run: RealRun) -> list[str]:
    """Our client against pgbench: the ratio, and where ours loses when it does."""
    out = []
    ours = {c.clients: c for c in run.cells if c.server == "postgres"}
    for clients, (tps, _) in run.pgbench.items():
        cell = ours.get(clients)
        if cell is None or tps <= 0:
            continue
        ratio = cell.tps / tps
        line = (
            f"at {clients} clients ostoolkit's client reached {ratio:.2f}× "
            f"pgbench's {tps:,.0f} tx/s"
        )
        if ratio < CLIENT_TARGET:
            client_us = _per_tx(cell.client_cpu_s, cell) * 1e6
            server_us = _per_tx(cell.server_cpu_s, cell) * 1e6
            line += (
                f": its Python processes spent {client_us:.0f} µs of CPU per transaction "
                f"beside the server's {server_us:.0f} µs, CPU the server needed on this host"
            )
        out.append(line)
    return out


def _connect_finding(run: RealRun) -> list[str]:
    """What opening one connection cost each server, at the largest count (median)."""
    top = max(run.config.clients)
    how = {
        "postgres": "a backend process forked",
        "mariadb": "a thread",
        "mariadb-pool": "a slot in the thread pool",
        "pgbouncer": "a client slot; its backends reused",
    }
    parts = [
        f"{LABELS[c.server]} {format_us(percentile(c.connect_us, 50))} ({how[c.server]})"
        for c in run.cells
        if c.clients == top and c.connect_us
    ]
    return [f"opening a connection at {top} clients: " + ", ".join(parts)] if parts else []


def real_measurement(run: RealRun) -> Measurement:
    """Results, tables, charts and findings of one --real run."""
    results: list[Result] = []
    for cell in run.cells:
        results.extend(cell_results(cell, run))
    results.extend(_ceiling_results(run))
    results.extend(_pgbench_results(run))
    data = {
        "tables": tables(run, results),
        "charts": charts(run),
        "servers": {
            k: {"version": run.versions.get(k), "started_in_s": round(s, 3)}
            for k, s in run.started_s.items()
        },
    }
    return Measurement(tuple(results), tuple(findings(run)), tuple(run.warnings), data)


def measure_real(config: RealConfig, progress: Progress | None = None) -> Measurement:
    """``connections --real``: run the servers under load, then say what it showed."""
    return real_measurement(measure_real_load(config, progress))
