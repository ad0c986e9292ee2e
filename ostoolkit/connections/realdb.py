"""What one more client connection costs a real database server running on this host.

Three connection models, measured the same way: PostgreSQL starts a *backend process* per
connection (postgres(1): the postmaster forks one per client), MariaDB/MySQL runs a *thread*
per connection inside one mysqld, and PgBouncer multiplexes many clients onto a few server
connections (its "pool"). For each client count C (ascending, connections added to those
already open) every client runs ``SELECT 1``; then the server's processes are summed with
psutil's memory_full_info, as ``measure.memory`` sums a worker group: USS and PSS (RSS only
for contrast; summed RSS counts shared_buffers once per backend). The cost of one connection
is the least-squares slope of the group's PSS over C, C = 0 included (measured before any
connection is opened). PgBouncer's clients also all query at once (``pg_sleep``), so that its
pool fills and its admin console (``SHOW SERVERS``) shows how many PostgreSQL backends it needs.

Memory is read only when the server runs on this host: the DSN's host is local and psutil can
read the process that listens on its port. Otherwise only connect times are reported, and a
warning says why.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

import psutil

from ostoolkit.children import enough_open_files
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.memory import slope
from ostoolkit.report import Measurement, Result, make_result

if TYPE_CHECKING:
    import psycopg
    import pymysql.connections

SERVERS = ("postgres", "mysql", "pgbouncer")
LABELS = {"postgres": "PostgreSQL", "mysql": "MySQL", "pgbouncer": "PgBouncer"}
# Process names of each server's main (listening) process, to refuse a proxy in between.
SERVER_NAMES = {
    "postgres": ("postgres", "postmaster"),
    "mysql": ("mysqld", "mariadbd"),
    "pgbouncer": ("pgbouncer",),
}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "pgbouncer": 6432}
MAX_CLIENTS = 10000
CONNECT_TIMEOUT_S = 10
# File descriptors kept free beyond one per connection and those already open.
# How long each PgBouncer client's query lasts, so that all of them are in flight at once.
BURST_QUERY = b"SELECT pg_sleep(0.05)"
INSTALL_HINT = "pip install 'ostoolkit[db]'"

Progress = Callable[[int], None]


class _Client(Protocol):
    """One open client connection, whatever its driver."""

    def select_one(self) -> None:
        """Run ``SELECT 1`` and read its row."""

    def close(self) -> None:
        """Close the connection."""


@dataclass(frozen=True)
class ServerTotal:
    """The server's whole process group at one client count: memory (bytes) and tasks."""

    clients: int
    uss: int
    pss: int
    rss: int
    processes: int
    threads: int


@dataclass(frozen=True)
class Target:
    """Where a DSN points: enough to connect and to tell whether the server is local."""

    kind: str
    dsn: str
    host: str
    port: int
    where: str


class _PgClient:
    """A psycopg 3 connection in autocommit, so no client sits idle in a transaction."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def select_one(self) -> None:
        """Run ``SELECT 1`` and read its row."""
        self.conn.execute("SELECT 1").fetchone()

    def backend_pid(self) -> int:
        """The PID of the server process serving this connection (pg_backend_pid())."""
        row = self.conn.execute("SELECT pg_backend_pid()").fetchone()
        return int(row[0]) if row else -1

    def send_burst(self) -> None:
        """Send a short sleep without waiting for it (libpq's PQsendQuery)."""
        self.conn.pgconn.send_query(BURST_QUERY)

    def finish_burst(self) -> None:
        """Read the sleep's results until libpq has none left (PQgetResult)."""
        while self.conn.pgconn.get_result() is not None:
            pass

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class _MyClient:
    """A PyMySQL connection in autocommit."""

    def __init__(self, conn: pymysql.connections.Connection[Any]) -> None:
        self.conn = conn

    def select_one(self) -> None:
        """Run ``SELECT 1`` and read its row."""
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def version(self) -> str:
        """The server's version string (``SELECT VERSION()``)."""
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            row = cursor.fetchone()
        return str(row[0]) if row else "unknown"

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _one_line(err: BaseException) -> str:
    """A driver's message on one line (libpq's span several)."""
    return " ".join(str(err).split()) or type(err).__name__


def _import_driver(kind: str) -> None:
    """Import the driver a server kind needs, or say how to install it."""
    name = "pymysql" if kind == "mysql" else "psycopg"
    try:
        __import__(name)
    except ImportError as err:
        raise InvalidRequest(
            f"measuring {LABELS[kind]} needs the {name} driver: {INSTALL_HINT}"
        ) from err


def parse_target(kind: str, dsn: str) -> Target:
    """Read host and port from a DSN (libpq's for postgres and pgbouncer, a URL for mysql)."""
    if kind == "mysql":
        return _parse_mysql(dsn)
    from psycopg import conninfo
    from psycopg import errors as pg_errors

    try:
        params = conninfo.conninfo_to_dict(dsn)
    except pg_errors.Error as err:
        raise InvalidRequest(f"bad {LABELS[kind]} DSN: {_one_line(err)}") from err
    host = str(params.get("host") or "")
    try:
        port = int(str(params.get("port") or DEFAULT_PORTS[kind]))
    except ValueError as err:
        raise InvalidRequest(f"bad {LABELS[kind]} DSN: port {params.get('port')!r}") from err
    where = f"{host or 'local socket'}:{port}/{params.get('dbname') or ''}"
    return Target(kind, dsn, host, port, where)


def _parse_mysql(dsn: str) -> Target:
    """Check a ``mysql://user:pass@host:port/db`` URL; the password never appears in messages."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb"):
        raise InvalidRequest(
            f"bad MySQL DSN: scheme {parts.scheme!r}; expected mysql://user:pass@host:port/db"
        )
    try:
        port = parts.port or DEFAULT_PORTS["mysql"]
    except ValueError as err:
        raise InvalidRequest(f"bad MySQL DSN: {err}") from err
    host = parts.hostname or "localhost"
    return Target("mysql", dsn, host, port, f"{host}:{port}{parts.path}")


def _open_mysql(target: Target) -> tuple[_MyClient, float]:
    """Connect with PyMySQL over TCP, as the URL says; time the handshake alone.

    PyMySQL builds a fresh TLS context for every connection before it connects (its
    "preferred" TLS mode loads the system's CA bundle, ~25 ms here): client-side work that
    says nothing about the server, so it is left out of the time (``defer_connect``).
    """
    import pymysql

    parts = urlsplit(target.dsn)
    conn = pymysql.connect(
        host=target.host,
        port=target.port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else "",
        database=parts.path.lstrip("/") or None,
        connect_timeout=CONNECT_TIMEOUT_S,
        autocommit=True,
        defer_connect=True,
    )
    start = time.perf_counter()
    conn.connect()
    return _MyClient(conn), (time.perf_counter() - start) * 1000


def _open_pg(target: Target) -> tuple[_PgClient, float]:
    """Connect with psycopg 3; no prepared statements, which PgBouncer's transaction mode breaks."""
    import psycopg

    start = time.perf_counter()
    conn = psycopg.connect(
        target.dsn, autocommit=True, prepare_threshold=None, connect_timeout=CONNECT_TIMEOUT_S
    )
    return _PgClient(conn), (time.perf_counter() - start) * 1000


def _driver_errors(kind: str) -> tuple[type[Exception], ...]:
    """The base exception of the driver a server kind uses."""
    if kind == "mysql":
        import pymysql

        return (pymysql.MySQLError,)
    import psycopg

    return (psycopg.Error,)


def _open(target: Target, number: int, total: int) -> tuple[_Client, float]:
    """Open one connection; return it and how long connecting took (ms)."""
    try:
        if target.kind == "mysql":
            return _open_mysql(target)
        return _open_pg(target)
    except _driver_errors(target.kind) as err:
        raise OstoolkitError(
            f"connection {number} of {total} to {LABELS[target.kind]} at {target.where} "
            f"failed: {_one_line(err)}"
        ) from err


def check_clients(clients: Sequence[int]) -> tuple[int, ...]:
    """Client counts, ascending and distinct, each within 1..MAX_CLIENTS (0 is always added)."""
    counts = tuple(sorted(set(clients)))
    if not counts:
        raise InvalidRequest("give at least one client count")
    if counts[0] < 1 or counts[-1] > MAX_CLIENTS:
        raise InvalidRequest(f"client counts must be within 1..{MAX_CLIENTS}; got {list(counts)}")
    return counts


def _local_addresses() -> set[str]:
    """Every address of this host's interfaces."""
    return {
        addr.address.split("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for addr in addrs
        if addr.family in (socket.AF_INET, socket.AF_INET6)
    }


def locality(host: str) -> str | None:
    """None if ``host`` is this machine (socket, loopback, own address), else why it is not."""
    if not host or host.startswith("/") or host == "localhost":
        return None
    if "," in host:
        return f"the DSN names several hosts ({host})"
    try:
        addresses = {str(ipaddress.ip_address(host))}
    except ValueError:
        try:
            addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        except OSError:
            return f"host {host} does not resolve here"
    local = _local_addresses()
    if all(ipaddress.ip_address(a).is_loopback or a in local for a in addresses):
        return None
    return f"host {host} is not this machine"


def _listening_pid(target: Target) -> int | None:
    """The PID listening on the DSN's TCP port (or PostgreSQL's Unix socket), if visible."""
    if target.host.startswith("/"):
        path = f"{target.host}/.s.PGSQL.{target.port}"
        for conn in psutil.net_connections(kind="unix"):
            if conn.pid and str(conn.laddr) == path:  # a Unix socket's laddr is its path
                return conn.pid
        return None
    for conn in psutil.net_connections(kind="tcp"):
        port = getattr(conn.laddr, "port", None)  # an empty tuple when it has no address
        if conn.status == psutil.CONN_LISTEN and conn.pid and port == target.port:
            return conn.pid
    return None


def locate_server(target: Target) -> tuple[int | None, str | None]:
    """The server's main PID on this host, or None and why its memory cannot be read."""
    reason = locality(target.host)
    if reason:
        return None, reason
    pid = _listening_pid(target)
    if pid is None:
        return None, (
            f"no process visible to us listens on port {target.port} "
            "(another user's server needs root, or it runs in a container)"
        )
    try:
        name = psutil.Process(pid).name()
    except psutil.Error as err:
        return None, f"pid {pid} cannot be read: {_one_line(err)}"
    if name not in SERVER_NAMES[target.kind]:
        return None, f"port {target.port} is held by {name} (pid {pid}), not the server itself"
    return pid, None


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


class _Admin:
    """PgBouncer's admin console (database ``pgbouncer``): SHOW commands, simple protocol only."""

    def __init__(self, target: Target) -> None:
        import psycopg
        from psycopg import conninfo

        self.dbname = str(conninfo.conninfo_to_dict(target.dsn).get("dbname") or "")
        self.conn = psycopg.connect(
            conninfo.make_conninfo(target.dsn, dbname="pgbouncer"),
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
            connect_timeout=CONNECT_TIMEOUT_S,
        )

    def show(self, what: str) -> list[dict[str, Any]]:
        """Run ``SHOW <what>`` and return its rows as dicts."""
        cursor = self.conn.execute(f"SHOW {what}")
        names = [column.name for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def servers(self) -> int:
        """Server connections PgBouncer holds for the DSN's database (the funnel's narrow end)."""
        rows = self.show("SERVERS")
        return sum(1 for row in rows if not self.dbname or row.get("database") == self.dbname)

    def pool_size(self) -> int | None:
        """The DSN's database's pool size, from ``SHOW DATABASES``."""
        for row in self.show("DATABASES"):
            if row.get("name") == self.dbname and row.get("pool_size") is not None:
                return int(row["pool_size"])
        return None

    def version(self) -> str:
        """PgBouncer's version string."""
        rows = self.show("VERSION")
        return str(next(iter(rows[0].values()))) if rows else "unknown"

    def close(self) -> None:
        """Close the console connection."""
        self.conn.close()


def _open_admin(target: Target, warnings: list[str]) -> _Admin | None:
    """Open PgBouncer's admin console, or warn that backends cannot be counted."""
    import psycopg

    try:
        return _Admin(target)
    except psycopg.Error as err:
        warnings.append(
            f"PgBouncer's admin console refused us ({_one_line(err)}): server connections "
            "not counted; add the DSN's user to admin_users or stats_users"
        )
        return None


def _version(kind: str, client: _Client, admin: _Admin | None) -> str:
    """The server's version string, read over the first connection."""
    if isinstance(client, _MyClient):
        return client.version()
    if isinstance(client, _PgClient):
        backend = client.conn.info.parameter_status("server_version") or "unknown"
        if kind == "pgbouncer":
            return f"{admin.version() if admin else 'PgBouncer'} in front of PostgreSQL {backend}"
        return f"PostgreSQL {backend}"
    return "unknown"


def _burst(clients: Sequence[_Client]) -> None:
    """Make every PgBouncer client query at once, so that the pool fills as far as it needs."""
    pg = [c for c in clients if isinstance(c, _PgClient)]
    for client in pg:
        client.send_burst()
    for client in pg:
        client.finish_burst()


@dataclass
class _Run:
    """What one measurement gathers as the client count grows."""

    connect_ms: list[float]
    totals: list[ServerTotal]
    backends: dict[int, int]
    version: str = "unknown"
    pool_size: int | None = None
    backend_parents_ok: bool = True


def _check_backends(clients: Sequence[_Client], server_pid: int) -> bool:
    """True if every PostgreSQL backend (pg_backend_pid()) is a child of the server found."""
    for client in clients:
        if isinstance(client, _PgClient):
            try:
                if psutil.Process(client.backend_pid()).ppid() != server_pid:
                    return False
            except psutil.Error:
                return False
    return True


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
    open_clients: list[_Client] = []
    admin = _open_admin(target, warnings) if target.kind == "pgbouncer" else None
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
            fresh: list[_Client] = []
            while len(open_clients) < count:
                client, ms = _open(target, len(open_clients) + 1, counts[-1])
                open_clients.append(client)
                fresh.append(client)
                run.connect_ms.append(ms)
            for client in fresh:
                client.select_one()
            if run.version == "unknown":
                run.version = _version(target.kind, open_clients[0], admin)
            if target.kind == "postgres" and server_pid is not None:
                run.backend_parents_ok = run.backend_parents_ok and _check_backends(
                    fresh, server_pid
                )
            if admin:
                _burst(open_clients)
                run.backends[count] = admin.servers()
            server_pid, total = _measure_once(server_pid, count, warnings)
            if total:
                run.totals.append(total)
            if progress:
                progress(1)
    except _driver_errors(target.kind) as err:
        raise OstoolkitError(
            f"{LABELS[target.kind]} at {target.where} failed with {len(open_clients)} clients "
            f"open: {_one_line(err)}"
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
        "by_clients": {
            str(t.clients): {"processes": t.processes, "threads": t.threads} for t in totals
        }
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


def _mib(size: float) -> str:
    """Bytes as KiB or MiB for a finding."""
    return f"{size / 2**20:.2f} MiB" if abs(size) >= 2**20 else f"{size / 1024:.0f} KiB"


def _findings(kind: str, label: str, run: _Run) -> list[str]:
    """Say in words what one connection costs this server, and what the pool did."""
    findings = []
    if run.totals:
        base, top = run.totals[0], run.totals[-1]
        pss, uss, rss = (
            slope([(t.clients, float(getattr(t, metric))) for t in run.totals])
            for metric in ("pss", "uss", "rss")
        )
        cost = f"costing {_mib(pss)} (PSS; {_mib(uss)} USS)"
        if kind == "postgres":
            findings.append(
                f"{label}: each connection is a backend process ({top.processes - base.processes} "
                f"more processes for {top.clients} clients) {cost}; summed RSS would say "
                f"{_mib(rss)}, counting shared memory once per backend"
            )
        elif kind == "mysql":
            findings.append(
                f"{label}: each connection is a thread in one server process "
                f"({top.threads - base.threads} more threads for {top.clients} clients) {cost}"
            )
        else:
            findings.append(f"{label}: each client costs the pooler itself {_mib(pss)} (PSS)")
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

    An interference meter covers the whole run, on every CPU this process may use, with the
    local server's process tree counted as the measurement's own: its work is done for our
    clients. Where that work cannot be counted (see ``_metered_as``), the shares are recorded
    as context and do not judge the connect times.
    """
    if kind not in SERVERS:
        raise InvalidRequest(f"unknown server {kind!r}; choose from {', '.join(SERVERS)}")
    counts = check_clients(clients)
    _import_driver(kind)
    target = parse_target(kind, dsn)
    warnings: list[str] = []
    server_pid, reason = locate_server(target)
    if reason:
        warnings.append(f"memory not measured: {reason}")
    located = server_pid
    with enough_open_files(counts[-1] + 1), Meter(also=(located,) if located else ()) as meter:
        run, server_pid = _run_clients(target, counts, server_pid, warnings, progress)
    interference = _metered_as(kind, located, locality(target.host) is not None, meter.result)
    if not run.backend_parents_ok:
        warnings.append(
            f"memory not measured: some backends are not children of pid {server_pid}: "
            "the process on the port is not the server that answered"
        )
        run.totals.clear()
    label = _label(kind, run.version)
    extra: dict[str, Any] = {"server_pid": server_pid, "version": run.version}
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
