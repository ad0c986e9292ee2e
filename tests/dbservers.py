"""Throwaway PostgreSQL, MariaDB and PgBouncer servers on loopback, for the real-server tests.

Each server lives in its own private temporary directory on a free loopback port (found by
binding port 0) and touches no system-wide configuration (see docs/db-servers.md). Servers
are started *detached*: the daemon is re-parented away from pytest, so the backends and
threads it starts are never children of the test process (the autouse ``no_leftovers``
fixture watches those). Readiness is polled under a deadline; a server is stopped by its
PID (a first signal, a bounded wait, then SIGKILL) and its directory removed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from harness import poll_until

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.02
COMMAND_TIMEOUT_S = 60.0
# Generous, so that tests may open a few hundred clients.
MAX_CONNECTIONS = 300
# PgBouncer's funnel: clients beyond this share the same server connections.
PGBOUNCER_POOL_SIZE = 10
SBIN = ("/usr/sbin", "/sbin")


class ServerUnavailable(Exception):
    """The binaries (or the system user) a throwaway server needs are not on this host."""


@dataclass(frozen=True)
class Server:
    """A running throwaway server: how to reach it, its main PID and its private directory."""

    kind: str
    dsn: str
    port: int
    pid: int
    directory: Path
    stop_signal: int
    started_in_s: float
    create_time: float


def in_ci() -> bool:
    """True under CI (``CI`` set, as GitHub Actions and most others do): never skip there."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip a test whose server or driver is missing; fail instead under CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def require_module(name: str) -> Any:
    """Import a driver module, or skip (fail under CI) naming the extra that installs it."""
    try:
        return __import__(name)
    except ImportError:
        skip_or_fail(f"{name} is not installed: pip install 'ostoolkit[db]'")
        raise


def free_port() -> int:
    """A loopback TCP port that is free now: bind port 0 and let the kernel choose."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _which(name: str) -> str:
    """Find a program on PATH or in the sbin directories, or say that it is missing."""
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    if found is None:
        raise ServerUnavailable(f"{name} not found: run `make dbservers` (Debian's packages)")
    return found


def pg_bindir() -> Path:
    """The newest PostgreSQL's bin directory (initdb and pg_ctl are not on PATH on Debian)."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    if not dirs:
        raise ServerUnavailable("PostgreSQL not found in /usr/lib/postgresql/*/bin: make dbservers")
    return Path(dirs[-1])


def _service_user(name: str) -> str | None:
    """The system user to run a server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError as err:
        raise ServerUnavailable(f"no system user {name!r}: install the server's package") from err
    return name


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess options that run a command as ``user`` (with no extra groups), if any."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    env = {**os.environ, "HOME": entry.pw_dir, "USER": user, "LOGNAME": user}
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": env}


def _make_dirs(root: Path, user: str | None, *names: str) -> None:
    """Create directories under ``root`` owned by ``user`` (when we are root)."""
    for name in names:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        if user is not None:
            shutil.chown(path, user, user)


def _run(argv: list[str], user: str | None, what: str) -> None:
    """Run a set-up command to completion; on failure, raise with its output's last lines."""
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
        **_as_user(user),
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{what} failed ({done.returncode}): {' / '.join(tail)}")


def _spawn_detached(argv: list[str]) -> None:
    """Start a daemon through a shell that backgrounds it and exits: PID 1 adopts it."""
    subprocess.run(
        ["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 &', "sh", *argv],
        start_new_session=True,
        timeout=COMMAND_TIMEOUT_S,
        check=True,
    )


def _poll(ready: Callable[[], bool], what: str, log: Path | None) -> None:
    """Poll ``ready`` until it is true or the deadline passes (then show the log's tail)."""
    if not poll_until(ready, START_TIMEOUT_S, POLL_S):
        tail = ""
        if log is not None and log.exists():
            tail = ": " + " / ".join(log.read_text(errors="replace").splitlines()[-5:])
        raise RuntimeError(f"{what} not ready after {START_TIMEOUT_S:.0f} s{tail}")


def _succeeds(argv: list[str]) -> bool:
    """True when a readiness probe exits 0."""
    probe = subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT_S, check=False)
    return probe.returncode == 0


def _pid_from(path: Path) -> int:
    """The PID on the first line of a server's pid file."""
    return int(path.read_text().split()[0])


def _server(kind: str, dsn: str, port: int, pid: int, root: Path, sig: int, t0: float) -> Server:
    """Record a started server, with its create time so that a reused PID is never signalled."""
    return Server(
        kind, dsn, port, pid, root, sig, time.monotonic() - t0, psutil.Process(pid).create_time()
    )


def _new_root(kind: str) -> Path:
    """A private directory for one server, traversable by the service users."""
    root = Path(tempfile.mkdtemp(prefix=f"ostk-{kind}."))
    root.chmod(0o755)
    return root


def start_postgres() -> Server:
    """initdb a cluster (trust auth) and start it on a free loopback port as ``postgres``."""
    bindir = pg_bindir()
    user = _service_user("postgres")
    root = _new_root("pg")
    t0 = time.monotonic()
    try:
        _make_dirs(root, user, "pg", "pg/sock")
        data, log, port = root / "pg/data", root / "pg/log", free_port()
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        _run([*initdb, "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], user, "initdb")
        options = (
            f"-p {port} -k {root}/pg/sock -c listen_addresses=127.0.0.1 "
            f"-c max_connections={MAX_CONNECTIONS}"
        )
        # pg_ctl starts the postmaster in its own session and exits: PID 1 adopts it.
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60"]
        _run([*pg_ctl, "-o", options, "start"], user, "pg_ctl start")
        isready = [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
        _poll(lambda: _succeeds([*isready, "-U", "postgres"]), "PostgreSQL", log)
        pid = _pid_from(data / "postmaster.pid")
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM (smart) would wait for every client.
        return _server("postgres", dsn, port, pid, root, signal.SIGINT, t0)
    except BaseException:
        _kill_pidfile(root / "pg/data/postmaster.pid")
        shutil.rmtree(root, ignore_errors=True)
        raise


def start_mariadb() -> Server:
    """Create a datadir and start mariadbd (``--no-defaults``) on a free loopback port."""
    mariadbd, install_db = _which("mariadbd"), _which("mariadb-install-db")
    admin = _which("mariadb-admin")
    user = _service_user("mysql")
    root = _new_root("my")
    t0 = time.monotonic()
    datadir, log = f"--datadir={root}/my/data", root / "my/log"
    pidfile, sock = root / "my/run/mysqld.pid", root / "my/run/mysqld.sock"
    try:
        _make_dirs(root, user, "my", "my/run")
        as_user = [f"--user={user}"] if user else []
        setup = ["--auth-root-authentication-method=normal", "--skip-test-db", *as_user]
        _run([install_db, "--no-defaults", datadir, *setup], None, "mariadb-install-db")
        port = free_port()
        options = [
            f"--socket={sock}",
            f"--pid-file={pidfile}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--log-error={log}",
            f"--max-connections={MAX_CONNECTIONS}",
            "--skip-name-resolve",
        ]
        _spawn_detached([mariadbd, "--no-defaults", datadir, *options, *as_user])
        ping = [admin, "--no-defaults", f"--socket={sock}", "-uroot", "ping"]
        _poll(lambda: pidfile.exists() and _succeeds(ping), "MariaDB", log)
        dsn = f"mysql://root@127.0.0.1:{port}/mysql"
        # SIGTERM is a clean shutdown; SIGKILL follows if it takes too long.
        return _server("mysql", dsn, port, _pid_from(pidfile), root, signal.SIGTERM, t0)
    except BaseException:
        _kill_pidfile(pidfile)
        shutil.rmtree(root, ignore_errors=True)
        raise


PGBOUNCER_INI = """\
[databases]
postgres = host=127.0.0.1 port={pg_port} dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool}
max_client_conn = 2000
pidfile = {root}/pgbouncer.pid
logfile = {root}/pgbouncer.log
"""


def start_pgbouncer(pg_port: int) -> Server:
    """Start PgBouncer (transaction pooling, pool of 10) in front of PostgreSQL at ``pg_port``."""
    pgbouncer = _which("pgbouncer")
    isready = str(pg_bindir() / "pg_isready")
    user = _service_user("postgres")
    root = _new_root("pgb")
    t0 = time.monotonic()
    home = root / "pgb"
    try:
        _make_dirs(root, user, "pgb")
        port = free_port()
        ini = home / "pgbouncer.ini"
        ini.write_text(
            PGBOUNCER_INI.format(pg_port=pg_port, port=port, root=home, pool=PGBOUNCER_POOL_SIZE)
        )
        (home / "userlist.txt").write_text('"postgres" ""\n')
        if user is not None:
            for path in home.iterdir():
                shutil.chown(path, user, user)
        # -d: PgBouncer daemonises itself (PID 1 adopts it); it refuses root without -u.
        as_user = ["-u", user] if user else []
        _run([pgbouncer, "-d", *as_user, str(ini)], None, "pgbouncer -d")
        probe = [isready, "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
        pidfile = home / "pgbouncer.pid"
        _poll(lambda: pidfile.exists() and _succeeds(probe), "PgBouncer", home / "pgbouncer.log")
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        return _server("pgbouncer", dsn, port, _pid_from(pidfile), root, signal.SIGTERM, t0)
    except BaseException:
        _kill_pidfile(home / "pgbouncer.pid")
        shutil.rmtree(root, ignore_errors=True)
        raise


def _gone(proc: psutil.Process) -> bool:
    """True once a process has exited; a zombie counts (a PID 1 that never reaps keeps it)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stop(proc: psutil.Process, first: int) -> None:
    """Send ``first``, wait up to STOP_TIMEOUT_S, then SIGKILL and wait again."""
    for sig in (first, signal.SIGKILL):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)  # psutil checks the PID still names the same process
        if poll_until(lambda: _gone(proc), STOP_TIMEOUT_S, POLL_S):
            return
    raise RuntimeError(f"pid {proc.pid} survived SIGKILL")


def _kill_pidfile(path: Path) -> None:
    """After a failed start, kill whatever PID its pid file names (if any)."""
    with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
        _stop(psutil.Process(_pid_from(path)), signal.SIGKILL)


def stop_server(server: Server) -> None:
    """Stop a server by its PID (never by name) and remove its directory."""
    try:
        proc = psutil.Process(server.pid)
        if proc.create_time() == server.create_time:
            _stop(proc, server.stop_signal)
    except psutil.NoSuchProcess:
        pass
    finally:
        shutil.rmtree(server.directory, ignore_errors=True)


def start_or_skip(start: Callable[[], Server]) -> Server:
    """Start a server, or skip (fail under CI) when its binaries are missing here."""
    try:
        return start()
    except ServerUnavailable as err:
        skip_or_fail(str(err))
        raise
