"""Throwaway PostgreSQL, MariaDB and PgBouncer servers from this host's binaries (for --real
and the tests' fixtures): each in a fresh scratch folder on a free loopback port, a supervised
child under setpriv, a ``janitor`` cleaning up if ostoolkit is killed (docs/method.md)."""

from __future__ import annotations

import collections
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from ostoolkit.children import Children, ClosedOnExit, die_with_us, run_program, signals_held
from ostoolkit.connections.builtin.servers import read_lines
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.janitor import Janitor
from ostoolkit.scratch import note_sysv_segment, remove_run_dir

KINDS = ("postgres", "mariadb", "mariadb-pool", "pgbouncer")
PACKAGES = {
    "postgres": "postgresql",
    "mariadb": "mariadb-server",
    "mariadb-pool": "mariadb-server",
    "pgbouncer": "pgbouncer",
}
LABELS = {
    "postgres": "PostgreSQL",
    "mariadb": "MariaDB",
    "mariadb-pool": "MariaDB (thread pool)",
    "pgbouncer": "PgBouncer",
}
# The system user each server runs as when ostoolkit is root.
SERVICE_USERS = {"postgres": "postgres", "mariadb": "mysql", "pgbouncer": "postgres"}
# What each server prints on stderr once it accepts connections.
READY = {
    "postgres": b"ready to accept connections",
    "mariadb": b"ready for connections",
    "pgbouncer": b"process up",
}
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# At the end of a run (done, an error, Ctrl-C): a shorter wait for each clean shutdown.
CLOSE_TIMEOUT_S = 3.0
SETUP_TIMEOUT_S = 120.0
LOG_LINES = 20
# How many System V keys from the data directory's inode up PostgreSQL may use.
PG_SHM_KEYS = 4
SBIN = ("/usr/sbin", "/sbin")
DATABASE = "ostoolkit"


@dataclass(frozen=True)
class RealServer:
    """A running throwaway server: how to reach it, its main pid, how long it took to start."""

    kind: str
    protocol: str  # "pg" or "my": which wire protocol its clients speak
    port: int
    pid: int
    user: str  # the database user clients log in as (trust, no password)
    database: str
    directory: Path
    started_in_s: float
    max_connections: int | None = None  # as configured; None: the server's default

    @property
    def label(self) -> str:
        """The server's name in tables and findings."""
        return LABELS[self.kind]

    @property
    def dsn(self) -> str:
        """A URL for the database drivers (the tests' fixtures use them)."""
        scheme = "postgresql" if self.protocol == "pg" else "mysql"
        return f"{scheme}://{self.user}@127.0.0.1:{self.port}/{self.database}"


def free_port() -> int:
    """A loopback TCP port that is free now: bind port 0 and let the kernel choose."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _which(name: str, kind: str) -> str:
    """A server's program on PATH or in sbin, or one line naming the Debian package."""
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    if found is None:
        raise InvalidRequest(
            f"--real {kind}: {name} not found: install Debian's {PACKAGES[kind]} package"
        )
    return found


def pg_bindir() -> Path:
    """The newest PostgreSQL's bin directory (Debian keeps initdb off PATH)."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    if dirs:
        return Path(dirs[-1])
    found = shutil.which("initdb")
    if found is None:
        raise InvalidRequest(
            "--real postgres: PostgreSQL not found: install Debian's postgresql package"
        )
    return Path(found).resolve().parent


def installed() -> tuple[str, ...]:
    """The kinds whose programs this host has."""
    kinds = []
    for kind in KINDS:
        with contextlib.suppress(InvalidRequest):
            check_installed(kind)
            kinds.append(kind)
    return tuple(kinds)


def check_installed(kind: str) -> None:
    """Raise InvalidRequest (one line, the package) when ``kind`` cannot be started here."""
    if kind not in KINDS:
        raise InvalidRequest(f"--real: unknown server {kind!r}; choose from {', '.join(KINDS)}")
    if kind in ("postgres", "pgbouncer"):
        bindir = pg_bindir()
        for name in ("initdb", "postgres"):
            if not (bindir / name).exists():
                missing = f"--real {kind}: {bindir / name} is missing"
                raise InvalidRequest(f"{missing}: install Debian's postgresql package")
    if kind == "pgbouncer":
        _which("pgbouncer", kind)
    if kind.startswith("mariadb"):
        _which("mariadbd", kind)
        _which("mariadb-install-db", kind)
    if shutil.which("setpriv") is None:
        raise InvalidRequest("--real: setpriv not found: install Debian's util-linux package")
    _run_as(kind)


def _run_as(kind: str) -> pwd.struct_passwd | None:
    """The system user a server runs as when ostoolkit is root; None when it is not root."""
    if os.geteuid() != 0:
        return None
    name = SERVICE_USERS[kind.removesuffix("-pool")]
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise InvalidRequest(
            f"--real {kind}: no system user {name!r}: install Debian's {PACKAGES[kind]} package"
        ) from None


def _as_user(user: pwd.struct_passwd | None) -> list[str]:
    """setpriv options that switch to ``user`` with no supplementary groups."""
    if user is None:
        return []
    return [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]


def _make_dir(path: Path, user: pwd.struct_passwd | None) -> Path:
    """A directory the server's user owns."""
    path.mkdir(parents=True, exist_ok=True)
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


class Servers(ClosedOnExit):
    """The throwaway servers of one run: started on demand, always stopped and removed."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.own_dir = False
        traversable = all(os.stat(up).st_mode & stat.S_IXOTH for up in run_dir.parents)
        if os.geteuid() == 0 and not traversable:
            # A private $TMPDIR: the servers' users could not pass through to their folders.
            self.run_dir = Path(tempfile.mkdtemp(prefix=f"ostoolkit-{os.getpid()}-", dir="/tmp"))
            self.own_dir = True
        self.children = Children()
        self.janitor = Janitor(*dict.fromkeys([run_dir, self.run_dir]))
        self.logs: dict[int, collections.deque[str]] = {}
        self.readers: dict[int, threading.Thread] = {}
        self.stop_signals: dict[int, int] = {}
        self.count = 0
        if os.geteuid() == 0:
            self.run_dir.chmod(0o711)  # the servers' users may pass through, not list it

    def _setup(
        self, argv: list[str], user: pwd.struct_passwd | None, home: Path, what: str
    ) -> None:
        """Run a set-up program (initdb, ...) as the server's user, under a deadline, its
        temporary files in ``home`` (TMPDIR): the user may not reach ours."""
        env = ["env", f"TMPDIR={home}"]
        done = run_program([*env, *argv], SETUP_TIMEOUT_S, as_user=_as_user(user))
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise OstoolkitError(f"{what} failed ({done.returncode}): {' / '.join(tail)}")

    def _launch(
        self, kind: str, argv: list[str], user: pwd.struct_passwd | None, home: Path, stop: int
    ) -> int:
        """Start a server in the foreground (TMPDIR ``home``); its pid once it says it is ready,
        from when ``stop`` is its clean shutdown signal."""
        guarded = die_with_us(["env", f"TMPDIR={home}", *argv], as_user=_as_user(user))
        proc = self.children.popen(
            guarded, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.janitor.watch(proc.pid)
        assert proc.stderr is not None
        lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self.logs[proc.pid] = lines
        ready = READY[kind.removesuffix("-pool")]
        for line in read_lines(proc.stderr.fileno(), START_TIMEOUT_S):
            lines.append(line.decode(errors="replace").strip())
            if ready in line:
                break
        else:  # its stderr ended, or the time ran out
            self.children.end(proc.pid)
            tail = " / ".join(list(lines)[-3:]) or "no output"
            raise OstoolkitError(f"{LABELS[kind]} did not start: {tail}")
        reader = threading.Thread(
            target=self._drain, args=(proc.stderr, lines), name=f"{kind}-stderr", daemon=True
        )
        reader.start()
        self.readers[proc.pid] = reader
        self.stop_signals[proc.pid] = stop
        return proc.pid

    @staticmethod
    def _drain(stream: IO[bytes], lines: collections.deque[str]) -> None:
        """Keep reading a server's stderr (so it never blocks on a full pipe) until it ends."""
        with contextlib.suppress(OSError, ValueError), stream:
            lines.extend(line.decode(errors="replace").strip() for line in stream)

    def _begin(self, kind: str) -> tuple[Path, pwd.struct_passwd | None, float]:
        """Check the programs, start the janitor with the first server; a fresh directory, its
        user, and when the start began."""
        started = time.monotonic()
        check_installed(kind)
        if self.janitor.pid is None:
            self.janitor.start()
        self.count += 1
        user = _run_as(kind)
        return _make_dir(self.run_dir / f"{kind}-{self.count}", user), user, started

    def postgres(self, max_connections: int | None = None) -> RealServer:
        """initdb a cluster (trust auth) and run postgres on a free loopback port."""
        directory, user, started = self._begin("postgres")
        bindir = pg_bindir()
        data = _make_dir(directory / "data", user)
        data.chmod(0o700)
        # PostgreSQL keys its System V segment by the data directory's inode (sysv_shmem.c),
        # the next keys on a clash: listed now, so that even an initdb killed mid-bootstrap
        # leaves none behind.
        for key in range(data.stat().st_ino, data.stat().st_ino + PG_SHM_KEYS):
            note_sysv_segment(self.run_dir, key)
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        initdb += ["--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]
        self._setup(initdb, user, directory, "initdb")
        server = RealServer("postgres", "pg", 0, 0, "postgres", "postgres", directory, 0.0)
        return self._start_postgres(server, max_connections, started)

    def _start_postgres(
        self, server: RealServer, max_connections: int | None, started: float
    ) -> RealServer:
        """Run postgres on an initialised data directory (again, after a stop)."""
        port = free_port()
        options = [
            "listen_addresses=127.0.0.1",
            "dynamic_shared_memory_type=mmap",
            f"unix_socket_directories={server.directory}",
            "fsync=off",
        ]
        if max_connections is not None:
            options.append(f"max_connections={max_connections}")
        argv = [str(pg_bindir() / "postgres"), "-D", str(server.directory / "data")]
        argv += ["-p", str(port), *(arg for opt in options for arg in ("-c", opt))]
        # SIGINT: a fast shutdown, which ends the clients and removes its IPC.
        pid = self._launch("postgres", argv, _run_as("postgres"), server.directory, signal.SIGINT)
        # List its System V segment (line 7 of postmaster.pid) in the run directory.
        pidfile = server.directory / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            key, shmid = (int(word) for word in pidfile.read_text().splitlines()[6].split())
            note_sysv_segment(self.run_dir, key, shmid)
        return replace(
            server,
            port=port,
            pid=pid,
            started_in_s=time.monotonic() - started,
            max_connections=max_connections,
        )

    def restart(self, server: RealServer, max_connections: int | None) -> RealServer:
        """Stop a throwaway PostgreSQL and start it again with another max_connections."""
        started = time.monotonic()
        self.stop(server, remove=False)
        return self._start_postgres(server, max_connections, started)

    def mariadb(self, pool: bool = False) -> RealServer:
        """Install a data directory and run mariadbd (``--no-defaults``) on a free port."""
        kind = "mariadb-pool" if pool else "mariadb"
        directory, user, started = self._begin(kind)
        data = f"--datadir={directory / 'data'}"
        install = [_which("mariadb-install-db", kind), "--no-defaults", data]
        install += ["--auth-root-authentication-method=normal", "--skip-test-db"]
        self._setup(install, user, directory, "mariadb-install-db")
        port = free_port()
        handling = "pool-of-threads" if pool else "one-thread-per-connection"
        argv = [
            _which("mariadbd", kind),
            "--no-defaults",
            data,
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={directory / 'mysqld.sock'}",
            f"--pid-file={directory / 'mysqld.pid'}",
            "--skip-name-resolve",
            f"--thread-handling={handling}",
            "--innodb-buffer-pool-size=64M",
            "--skip-log-bin",
        ]
        pid = self._launch(kind, argv, user, directory, signal.SIGTERM)
        return RealServer(
            kind, "my", port, pid, "root", "mysql", directory, time.monotonic() - started
        )

    def pgbouncer(
        self,
        upstream: RealServer,
        pool_size: int,
        max_clients: int,
        users: Sequence[str] = (),
    ) -> RealServer:
        """Run PgBouncer in transaction mode in front of a throwaway PostgreSQL; trust still
        needs each user in its auth file: the upstream's superuser (the admin's) and ``users``."""
        directory, user, started = self._begin("pgbouncer")
        port = free_port()
        ini = directory / "pgbouncer.ini"
        ini.write_text(
            f"[databases]\n{upstream.database} = host=127.0.0.1 port={upstream.port} "
            f"dbname={upstream.database}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
            f"listen_port = {port}\nunix_socket_dir =\nauth_type = trust\n"
            f"auth_file = {directory / 'userlist.txt'}\nadmin_users = {upstream.user}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            f"max_client_conn = {max_clients}\n"
        )
        listed = dict.fromkeys([upstream.user, *users])
        (directory / "userlist.txt").write_text("".join(f'"{name}" ""\n' for name in listed))
        if user is not None:
            for path in directory.iterdir():
                os.chown(path, user.pw_uid, user.pw_gid)
        argv = [_which("pgbouncer", "pgbouncer"), str(ini)]
        pid = self._launch("pgbouncer", argv, user, directory, signal.SIGINT)
        return replace(  # PostgreSQL's protocol, the upstream's user and database
            upstream,
            kind="pgbouncer",
            port=port,
            pid=pid,
            directory=directory,
            started_in_s=time.monotonic() - started,
            max_connections=max_clients,
        )

    def version(self, server: RealServer) -> str:
        """PgBouncer's version, as its start-up line says ("process up: PgBouncer 1.18.0, ...")."""
        for line in self.logs.get(server.pid, ()):
            if "process up:" in line:
                return line.split("process up:", 1)[1].split(",")[0].strip()
        return "?"

    def stop(self, server: RealServer, remove: bool = True) -> None:
        """Shut a server down cleanly (SIGKILL after STOP_TIMEOUT_S); remove its directory."""
        self._stop_pid(server.pid, STOP_TIMEOUT_S)
        if remove:
            shutil.rmtree(server.directory, ignore_errors=True)

    def _stop_pid(self, pid: int, timeout: float) -> None:
        """Send a server its clean shutdown signal, wait, then SIGKILL its group and reap it (after
        a SIGKILL, PostgreSQL's System V segment is released from its listing in the run folder)."""
        with signals_held():
            if pid in self.children.pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, self.stop_signals.get(pid, signal.SIGTERM))
                self.children.reap(pid, timeout)
                self.children.end(pid)  # its group: what is left, or all of it after a timeout
        reader = self.readers.pop(pid, None)
        if reader is not None:
            reader.join(timeout)

    def close(self) -> None:
        """Stop every server still running, newest first (PgBouncer before its PostgreSQL),
        then let the janitor go."""
        try:
            for pid in reversed(list(self.stop_signals)):
                self._stop_pid(pid, CLOSE_TIMEOUT_S)
            self.children.close()  # one still starting (no stop signal yet): SIGKILL
        finally:
            self.janitor.close()
            if self.own_dir:
                remove_run_dir(self.run_dir)
