"""psycopg 3 and PyMySQL for a server given by DSN: parse it, connect (timed), query, read
the version and PgBouncer's admin console. The only module importing the ``db`` extra's drivers,
always lazily, so that ostoolkit runs without them (``import_driver`` says how to install)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ostoolkit.errors import InvalidRequest, OstoolkitError

LABELS = {"postgres": "PostgreSQL", "mysql": "MySQL", "pgbouncer": "PgBouncer"}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "pgbouncer": 6432}
CONNECT_TIMEOUT_S = 10
# How long each PgBouncer client's query lasts, so that all of them are in flight at once.
BURST_QUERY = b"SELECT pg_sleep(0.05)"
INSTALL_HINT = "pip install 'ostoolkit[db]'"


# An open client connection: psycopg 3's or PyMySQL's, in autocommit (no client sits idle in a
# transaction); both speak the DB-API (``fetch_one``).
Client = Any


@dataclass(frozen=True)
class Target:
    """Where a DSN points: enough to connect and to tell whether the server is local."""

    kind: str
    dsn: str
    host: str
    port: int
    where: str


def fetch_one(client: Client, sql: str) -> Any:
    """Run ``sql`` on a connection of either driver and read its first row."""
    with client.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


def one_line(err: BaseException) -> str:
    """A driver's message on one line (libpq's span several)."""
    return " ".join(str(err).split()) or type(err).__name__


def import_driver(kind: str) -> None:
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
        raise InvalidRequest(f"bad {LABELS[kind]} DSN: {one_line(err)}") from err
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


def _open_mysql(target: Target) -> tuple[Client, float]:
    """Connect with PyMySQL over TCP, as the URL says; time the handshake alone, without the
    fresh TLS context PyMySQL builds per connection (client work: docs/method.md)."""
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
    return conn, (time.perf_counter() - start) * 1000


def _open_pg(target: Target) -> tuple[Client, float]:
    """Connect with psycopg 3; no prepared statements, which PgBouncer's transaction mode breaks."""
    import psycopg

    start = time.perf_counter()
    conn = psycopg.connect(
        target.dsn, autocommit=True, prepare_threshold=None, connect_timeout=CONNECT_TIMEOUT_S
    )
    return conn, (time.perf_counter() - start) * 1000


def driver_errors(kind: str) -> tuple[type[Exception], ...]:
    """The base exception of the driver a server kind uses."""
    if kind == "mysql":
        import pymysql

        return (pymysql.MySQLError,)
    import psycopg

    return (psycopg.Error,)


def open_client(target: Target, number: int, total: int) -> tuple[Client, float]:
    """Open one connection; return it and how long connecting took (ms)."""
    try:
        if target.kind == "mysql":
            return _open_mysql(target)
        return _open_pg(target)
    except driver_errors(target.kind) as err:
        raise OstoolkitError(
            f"connection {number} of {total} to {LABELS[target.kind]} at {target.where} "
            f"failed: {one_line(err)}"
        ) from err


class Admin:
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


def open_admin(target: Target, warnings: list[str]) -> Admin | None:
    """Open PgBouncer's admin console, or warn that backends cannot be counted."""
    import psycopg

    try:
        return Admin(target)
    except psycopg.Error as err:
        warnings.append(
            f"PgBouncer's admin console refused us ({one_line(err)}): server connections "
            "not counted; add the DSN's user to admin_users or stats_users"
        )
        return None


def server_version(kind: str, client: Client, admin: Admin | None) -> str:
    """The server's version string, read over the first connection."""
    if kind == "mysql":
        row = fetch_one(client, "SELECT VERSION()")
        return str(row[0]) if row else "unknown"
    backend = client.info.parameter_status("server_version") or "unknown"
    if kind == "pgbouncer":
        return f"{admin.version() if admin else 'PgBouncer'} in front of PostgreSQL {backend}"
    return f"PostgreSQL {backend}"


def burst(clients: Sequence[Client]) -> None:
    """Make every PgBouncer client query at once, so that the pool fills as far as it needs."""
    pg = [c.pgconn for c in clients]  # psycopg's
    for conn in pg:
        conn.send_query(BURST_QUERY)  # libpq's PQsendQuery: sent, not waited for
    for conn in pg:
        while conn.get_result() is not None:  # PQgetResult until none is left
            pass
