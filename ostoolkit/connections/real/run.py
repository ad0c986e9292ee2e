"""``connections --real``: each throwaway server at its ``max_connections``, then at each client
count connected (timed) and loaded with pgbench's select-only transaction, its CPU, switches,
tasks and PSS read around; pgbench beside. The method: docs/method.md, "connections --real"."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from ostoolkit.budget import (
    BYTES_PER_FORKED_PROCESS,
    check_open_files,
    check_task_budget,
    enough_open_files,
)
from ostoolkit.children import run_program
from ostoolkit.connections.clients import MAX_CLIENT_PROCESSES, LoadRun
from ostoolkit.connections.group import ServerState, read_group
from ostoolkit.connections.real.servers import (
    KINDS,
    RealServer,
    Servers,
    check_installed,
    installed,
)
from ostoolkit.connections.real.transactions import Spec, client_body, execute, window_latencies
from ostoolkit.connections.real.wire import WireError
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.report import Progress
from ostoolkit.scratch import run_tempdir

MAX_REAL_CLIENTS = 5000
# Connections above the largest client count when the limits are raised (setup, pgbench).
LIMIT_MARGIN = 20
LOAD_USER = "ostoolkit"
DATABASE = {"pg": "postgres", "my": "ostoolkit"}
PG_SETUP = (
    f"CREATE ROLE {LOAD_USER} LOGIN",
    "CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88))",
    "INSERT INTO pgbench_branches VALUES (1, 0, '')",
    "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))",
    "INSERT INTO pgbench_accounts SELECT g, 1, 0, '' FROM generate_series(1, 100000) g",
    "VACUUM ANALYZE",
    f"GRANT SELECT ON pgbench_branches, pgbench_accounts TO {LOAD_USER}",
)
MY_SETUP = (
    "CREATE DATABASE ostoolkit",
    "CREATE TABLE ostoolkit.pgbench_accounts (aid INT PRIMARY KEY, bid INT, abalance INT, "
    "filler CHAR(84)) ENGINE=InnoDB",
    "INSERT INTO ostoolkit.pgbench_accounts SELECT seq, 1, 0, '' FROM seq_1_to_100000",
    f"CREATE USER '{LOAD_USER}'@'%'",
    f"GRANT SELECT ON ostoolkit.* TO '{LOAD_USER}'@'%'",
)
LIMIT_QUERY = {"pg": "SHOW max_connections", "my": "SELECT @@max_connections"}
PGBENCH_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)
# pgbench -P 1 reports each second's TPS on stderr: "progress: 1.0 s, 1234.5 tps, lat ...".
PGBENCH_PROGRESS = re.compile(r"^progress: [0-9.]+ s, ([0-9.]+) tps", re.MULTILINE)
PGBENCH_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RealConfig:
    """Which servers, at which client counts, for how long, pooled by how many backends."""

    servers: tuple[str, ...]
    clients: tuple[int, ...] = (10, 100, 1000)
    duration_s: float = 5.0
    pool_size: int = 20
    connect_per_tx: bool = False

    @classmethod
    def quick_clients(cls) -> tuple[int, ...]:
        """``--quick``'s client counts."""
        return (10, 100)

    def steps(self) -> int:
        """Progress steps: per server its ceiling, then each client count (and pgbench's)."""
        per_server = 1 + len(self.clients)
        pgbench = len(self.clients) if "postgres" in self.servers else 0
        return len(self.servers) * per_server + pgbench


@dataclass(frozen=True)
class Ceiling:
    """One server at its default limit: which attempts it accepted, and its refusal."""

    limit: int | None
    accepted: tuple[bool, ...]
    refusal: str | None
    reserved: int = 0  # PostgreSQL's superuser_reserved_connections

    def refused(self, clients: int) -> int:
        """How many of the first ``clients`` connections the server refused."""
        return self.accepted[:clients].count(False)


@dataclass(frozen=True)
class Cell:
    """One server at one client count: what the clients saw and what the server spent."""

    server: str
    clients: int
    duration_s: float
    idle: ServerState  # the server before the connections opened
    loaded: ServerState  # with them open, after the transactions
    connect_us: list[float]
    latency_us: list[float]
    windows: list[list[float]]  # the latencies (µs) of each transactions.WINDOW_S window
    errors: int
    first_error: str | None
    client_cpu_s: float
    server_cpu_s: float
    server_switches: int
    interference: Interference | None
    backends: int | None = None  # PgBouncer: PostgreSQL backends behind it

    @property
    def transactions(self) -> int:
        """Transactions completed within the duration."""
        return len(self.latency_us)

    @property
    def tps(self) -> float:
        """Transactions per second over the duration."""
        return self.transactions / self.duration_s


@dataclass
class RealRun:
    """Everything a --real run measured, for ``real.results`` to turn into results."""

    config: RealConfig
    cells: list[Cell] = field(default_factory=list)
    ceilings: dict[str, Ceiling] = field(default_factory=dict)
    # pgbench's TPS by client count, and each second's (its progress reports)
    pgbench: dict[int, tuple[float, list[float]]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    started_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def check_real(config: RealConfig) -> None:
    """Refuse before any work: unknown or missing servers, counts or limits out of range."""
    if not config.servers:
        raise InvalidRequest(
            "--real: none of postgres, mariadb, pgbouncer is installed here: "
            "install Debian's postgresql, mariadb-server or pgbouncer"
        )
    for kind in config.servers:
        check_installed(kind)
    if not config.clients or min(config.clients) < 1 or max(config.clients) > MAX_REAL_CLIENTS:
        raise InvalidRequest(
            f"--clients with --real must be within 1..{MAX_REAL_CLIENTS}; "
            f"got {list(config.clients)}"
        )
    top = max(config.clients)
    if "postgres" in config.servers or "pgbouncer" in config.servers:
        # A PostgreSQL backend's private memory is a few MiB at the most.
        check_task_budget(top + LIMIT_MARGIN + 16, BYTES_PER_FORKED_PROCESS, "--clients")
    # mariadbd and PgBouncer hold a socket per client; each client process its share.
    sockets = top + LIMIT_MARGIN + config.pool_size + 64
    check_open_files(sockets, f"--clients {top} (the server)", "lower --clients")


def resolve_servers(names: Sequence[str]) -> tuple[str, ...]:
    """``--real``'s value: 'all' (what is installed) or a list, in a fixed order."""
    if not names or "all" in names:
        return installed()
    unknown = [n for n in names if n not in KINDS]
    if unknown:
        raise InvalidRequest(
            f"--real: unknown server {unknown[0]!r}; choose from all, {', '.join(KINDS)}"
        )
    return tuple(k for k in KINDS if k in names)


def _spec(server: RealServer, duration_s: float = 0.0, per_tx: bool = False) -> Spec:
    """How the load's clients reach a server."""
    database = DATABASE[server.protocol]
    return Spec(server.protocol, server.port, LOAD_USER, database, duration_s, per_tx)


def _run_sql(server: RealServer, statements: Sequence[str]) -> str | None:
    """Run set-up statements as the superuser; the last one's first value."""
    admin = Spec(server.protocol, server.port, server.user, server.database)
    value = None
    for sql in statements:
        try:
            value = execute(admin, sql)
        except (WireError, OSError) as err:
            raise OstoolkitError(f"{server.label}: {sql.split('(')[0]} failed: {err}") from err
    return value


def ceiling(server: RealServer, top: int) -> Ceiling:
    """Open up to ``top`` connections one after another at the server's limit; keep none."""
    limit_text = _run_sql(server, [LIMIT_QUERY[server.protocol]])
    reserved = 0
    if server.kind == "postgres":
        reserved = int(_run_sql(server, ["SHOW superuser_reserved_connections"]) or 0)
    with LoadRun(top, client_body(_spec(server)), processes=1) as load:
        load.start()
        (report,) = load.phase()
        load.phase()
        load.finish()
    accepted = tuple(t is not None for t in report["connect_us"])
    limit = server.max_connections if server.kind == "pgbouncer" else int(limit_text or 0)
    return Ceiling(limit, accepted, report["refusal"], reserved)


def load_cell(server: RealServer, stack: Sequence[int], clients: int, config: RealConfig) -> Cell:
    """Open ``clients`` connections, run the transactions for the duration, read the server."""
    spec = _spec(server, config.duration_s, config.connect_per_tx)
    with LoadRun(clients, client_body(spec), processes=MAX_CLIENT_PROCESSES) as load:
        load.start()
        idle = read_group(stack)
        opened = load.phase()
        refused = [r["refusal"] for r in opened if r["refusal"]]
        if refused:
            raise OstoolkitError(
                f"{server.label} refused connections at {clients} clients after its limit was "
                f"set to fit them: {refused[0]}"
            )
        before = read_group(stack, memory=False, counters=True)
        with Meter(also=tuple(stack)) as meter:
            reports = load.phase()
        after = read_group(stack, memory=False, counters=True)
        loaded = read_group(stack)
        load.finish()
    connecting = reports if config.connect_per_tx else opened  # the phase that connected
    return Cell(
        server=server.kind,
        clients=clients,
        duration_s=config.duration_s,
        idle=idle,
        loaded=loaded,
        connect_us=[t for r in connecting for t in r["connect_us"]],
        latency_us=[t for r in reports for t in r["latency_us"]],
        windows=window_latencies(reports, config.duration_s),
        errors=sum(r["errors"] for r in reports),
        first_error=next((r["first_error"] for r in reports if r["first_error"]), None),
        client_cpu_s=sum(r["cpu_s"] for r in reports),
        server_cpu_s=after.cpu_s - before.cpu_s,
        server_switches=after.switches - before.switches,
        interference=meter.result,
    )


def run_pgbench(server: RealServer, clients: int, config: RealConfig) -> tuple[float, list[float]]:
    """pgbench -S (select-only, simple protocol) at ``clients``: its TPS without connecting,
    and each whole second's (its progress reports, -P 1)."""
    seconds = max(1, round(config.duration_s))
    jobs = min(clients, MAX_CLIENT_PROCESSES)
    argv = ["pgbench", "-n", "-S", "-M", "simple"]
    argv += ["-c", str(clients), "-j", str(jobs), "-T", str(seconds), "-P", "1"]
    argv += ["-h", "127.0.0.1", "-p", str(server.port), "-U", LOAD_USER, DATABASE["pg"]]
    if config.connect_per_tx:
        argv.insert(1, "-C")
    done = run_program(argv, PGBENCH_TIMEOUT_S)  # it dies with ostoolkit too
    match = PGBENCH_TPS.search(done.stdout)
    if done.returncode != 0 or match is None:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
        raise OstoolkitError(f"pgbench at {clients} clients failed ({done.returncode}): {tail}")
    return float(match[1]), [float(tps) for tps in PGBENCH_PROGRESS.findall(done.stderr)]


def _postgres_family(run: RealRun, servers: Servers, step: Callable[[], object]) -> None:
    """PostgreSQL (its ceiling, curves, pgbench) and PgBouncer in front of it."""
    config, top = run.config, max(run.config.clients)
    pg = servers.postgres()
    run.started_s["postgres"] = pg.started_in_s
    _run_sql(pg, PG_SETUP)
    run.versions["postgres"] = _run_sql(pg, ["SHOW server_version"]) or "?"
    if "postgres" in config.servers:
        run.ceilings["postgres"] = ceiling(pg, top)
        step()
    pg = servers.restart(pg, top + LIMIT_MARGIN + config.pool_size)
    if "postgres" in config.servers:
        pgbench = shutil.which("pgbench")
        if pgbench is None:
            run.warnings.append("pgbench not found (Debian's postgresql-client): no cross-check")
        for clients in config.clients:
            run.cells.append(load_cell(pg, [pg.pid], clients, config))
            step()
            if pgbench is not None:
                run.pgbench[clients] = run_pgbench(pg, clients, config)
                step()
    if "pgbouncer" in config.servers:
        bouncer = servers.pgbouncer(pg, config.pool_size, top + LIMIT_MARGIN, (LOAD_USER,))
        run.started_s["pgbouncer"] = bouncer.started_in_s
        run.versions["pgbouncer"] = servers.version(bouncer)
        run.ceilings["pgbouncer"] = ceiling(bouncer, top)
        step()
        idle_pg = read_group([pg.pid]).processes
        for clients in config.clients:
            cell = load_cell(bouncer, [bouncer.pid, pg.pid], clients, config)
            backends = read_group([pg.pid]).processes - idle_pg
            run.cells.append(replace(cell, backends=backends))
            step()
        servers.stop(bouncer)
    servers.stop(pg)


def _mariadb(run: RealRun, servers: Servers, pool: bool, step: Callable[[], object]) -> None:
    """MariaDB with a thread per connection or its thread pool: curves, then its ceiling (last:
    it caches closed connections' threads, which a ceiling run first would leave in every count)."""
    kind, top = ("mariadb-pool" if pool else "mariadb"), max(run.config.clients)
    server = servers.mariadb(pool)
    run.started_s[kind] = server.started_in_s
    _run_sql(server, MY_SETUP)
    run.versions[kind] = _run_sql(server, ["SELECT VERSION()"]) or "?"
    default = _run_sql(server, [LIMIT_QUERY["my"]]) or "151"
    _run_sql(server, [f"SET GLOBAL max_connections = {top + LIMIT_MARGIN}"])
    for clients in run.config.clients:
        run.cells.append(load_cell(server, [server.pid], clients, run.config))
        step()
    _run_sql(server, [f"SET GLOBAL max_connections = {int(default)}"])
    run.ceilings[kind] = ceiling(server, top)
    step()
    servers.stop(server)


def measure_real_load(config: RealConfig, progress: Progress | None = None) -> RealRun:
    """Start each server, find its ceiling, load it at each client count; stop it."""
    check_real(config)
    run = RealRun(config)
    step = partial(progress, 1) if progress else lambda: None
    need = max(config.clients) + LIMIT_MARGIN + config.pool_size + 64
    with run_tempdir() as run_dir, enough_open_files(need), Servers(run_dir) as servers:
        if {"postgres", "pgbouncer"} & set(config.servers):
            _postgres_family(run, servers, step)
        for pool in (False, True):
            if ("mariadb-pool" if pool else "mariadb") in config.servers:
                _mariadb(run, servers, pool, step)
    return run
