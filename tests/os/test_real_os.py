"""connections --real on this host: throwaway servers started, loaded and always removed.

The issue's "done when": `connections --real --quick --json -` gives every id for postgres,
mariadb, mariadb_pool and pgbouncer at 10 and 100 clients with pgbench beside PostgreSQL, and
right after it (also after SIGKILL of ostoolkit mid-run, within 2 s) no server process,
System V segment or run directory of the run remains. Servers missing here skip (fail in CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dbservers
import psutil
import pytest
from harness.leftovers import marked_processes, run_dirs
from harness.paths import ENTRY
from harness.runs import marked_env, run_marked
from harness.signalled import check_interrupted, marked_run
from harness.waiting import poll_until, wait_until

from ostoolkit.connections.real.run import LOAD_USER
from ostoolkit.connections.real.servers import KINDS, check_installed
from ostoolkit.connections.real.transactions import WINDOW_S
from ostoolkit.errors import InvalidRequest
from ostoolkit.procfs import read_sysv_shm

SERVER_IDS = ("postgres", "mariadb", "mariadb_pool", "pgbouncer")
FIGURES = (
    "tps",
    "p50",
    "p99",
    "connect",
    "mem_per_conn",
    "procs",
    "threads",
    "cpu_per_tx",
    "switches_per_tx",
    "refused",
)
GONE_WITHIN_S = 2.0


def require_servers() -> None:
    """Skip (fail under CI) unless every kind of server can start here."""
    for kind in KINDS:
        try:
            check_installed(kind)
        except InvalidRequest as err:
            dbservers.skip_or_fail(str(err))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`connections --real --quick --json -` once, with what it left right after."""
    require_servers()
    tmpdir = tmp_path_factory.mktemp("real")
    marker, env = marked_env(TMPDIR=str(tmpdir))
    segments = set(read_sysv_shm())
    run = run_marked(
        [str(ENTRY), "connections", "--real", "--quick", "--json", "-"],
        env=env,
        marker=marker,
        timeout=240,
        settle=GONE_WITHIN_S,
    )
    return run, run_dirs(tmpdir), set(read_sysv_shm()) - segments


def test_quick_run_gives_every_id(quick_run):
    run, _, _ = quick_run
    assert run.returncode == 0, run.describe()
    report = json.loads(run.stdout)
    ids = {r["id"] for r in report["results"]}
    wanted = {f"conn.{s}.{n}.{f}" for s in SERVER_IDS for n in (10, 100) for f in FIGURES}
    wanted |= {f"conn.{s}.max_connections" for s in SERVER_IDS}
    wanted |= {f"conn.pgbench.{n}.tps" for n in (10, 100)}
    assert wanted <= ids, sorted(wanted - ids)
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["conn.postgres.100.procs"]["median"] >= 100  # a backend per connection
    assert by_id["conn.mariadb.100.procs"]["median"] == 1  # one process ...
    assert by_id["conn.mariadb.100.threads"]["median"] >= 100  # ... a thread per connection
    assert by_id["conn.mariadb_pool.100.threads"]["median"] < 100  # the pool's few threads
    assert by_id["conn.pgbouncer.100.refused"]["median"] == 0
    backends = by_id["conn.pgbouncer.100.procs"]["extra"]["backends"]
    assert 1 <= backends <= 20, backends  # the default --pool-size
    assert by_id["conn.postgres.max_connections"]["median"] == 100  # Debian's default
    assert by_id["conn.postgres.100.refused"]["median"] >= 1  # 3 kept for superusers
    refusal = by_id["conn.postgres.max_connections"]["extra"]["refusal"]
    assert refusal.startswith("FATAL:"), refusal  # the server's own words ...
    assert any(refusal in finding for finding in report["findings"])  # ... in a finding
    assert len(report["data"]["tables"]) == 2


def test_quick_run_figures_have_windows_or_are_exact(quick_run):
    run, _, _ = quick_run
    assert run.returncode == 0, run.describe()
    by_id = {r["id"]: r for r in json.loads(run.stdout)["results"]}
    windows = int(2.0 / WINDOW_S)  # --quick runs 2 s per cell
    page = os.sysconf("SC_PAGE_SIZE")
    for server in SERVER_IDS:
        assert by_id[f"conn.{server}.max_connections"]["exact"]
        for n in (10, 100):
            key = f"conn.{server}.{n}"
            for figure in ("procs", "threads", "refused"):
                assert by_id[f"{key}.{figure}"]["exact"], f"{key}.{figure}"
            for figure in ("tps", "p50", "p99"):  # a sample per window
                assert by_id[f"{key}.{figure}"]["n"] == windows, f"{key}.{figure}"
                assert not by_id[f"{key}.{figure}"]["exact"]
            assert by_id[f"{key}.mem_per_conn"]["resolution"] == page
    for n in (10, 100):  # pgbench's progress reports, one a second
        pgbench = by_id[f"conn.pgbench.{n}.tps"]
        assert pgbench["n"] >= 1
        assert min(pgbench["samples"]) > 0
        assert pgbench["extra"]["pgbench_tps"] > 0


def test_quick_run_leaves_nothing(quick_run):
    run, dirs, segments = quick_run
    assert run.returncode == 0, run.describe()
    assert not run.leftovers, run.describe()
    assert dirs == [], dirs
    assert segments == set(), segments


def _servers_up(names: tuple[str, ...]):
    """The moment every named server of the run is up."""

    def ready(run) -> bool:
        programs = {Path(p.cmdline.split()[0]).name for p in run.procs() if p.cmdline}
        return set(names) <= programs

    return ready


@pytest.mark.parametrize(
    ("servers", "moment"),
    [("postgres,pgbouncer", ("pgbouncer",)), ("mariadb-pool", ("mariadbd",))],
)
def test_sigkill_mid_run_leaves_nothing_within_2_s(tmp_path, servers, moment):
    require_servers()
    segments = set(read_sysv_shm())
    args = ["connections", "--real", servers, "--clients", "10", "--duration", "5"]
    with marked_run(args, tmp_path) as run:
        run.wait_for(_servers_up(moment), timeout=120)
        below = descendants(run)
        os.kill(run.popen.pid, signal.SIGKILL)

        def all_gone() -> bool:
            return not run.alive() and not still_running(below) and not run_dirs(run.tmpdir)

        if not poll_until(all_gone, GONE_WITHIN_S):  # all within 2 s of the SIGKILL
            pytest.fail(
                f"after {GONE_WITHIN_S} s: alive {run.alive()} "
                f"{still_running(below)}, dirs {run_dirs(run.tmpdir)}"
            )
        assert set(read_sysv_shm()) - segments == set()


def descendants(run) -> list[psutil.Process]:
    """Every process below ostoolkit now. PostgreSQL's backends and helpers write their
    titles over their environment (ps_status.c), so the marker alone does not find them."""
    try:
        return psutil.Process(run.popen.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _title(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(proc.cmdline())
    return ""


def _load_backends(run) -> bool:
    """The moment PostgreSQL serves the load: a backend of its load user exists."""
    return any(_title(p).startswith(f"postgres: {LOAD_USER} ") for p in descendants(run))


def still_running(procs: list[psutil.Process]) -> list[str]:
    """Those of ``procs`` still alive (a zombie has exited; PID 1 may not reap it here)."""
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {_title(proc)}")
    return alive


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    "moment", [_servers_up(("initdb",)), _load_backends], ids=["initdb", "under-load"]
)
def test_interrupted_mid_run_cleans_up(tmp_path, sig, moment):
    require_servers()
    segments = set(read_sysv_shm())
    args = ["connections", "--real", "postgres", "--clients", "10", "--duration", "5"]
    with marked_run(args, tmp_path) as run:
        run.wait_for(moment, timeout=120)
        below = descendants(run)
        check_interrupted(run, sig)
        assert not still_running(below), still_running(below)
        assert set(read_sysv_shm()) - segments == set()


JANITOR_SCRIPT = """
import os, signal, subprocess, sys, tempfile
from pathlib import Path
from ostoolkit.janitor import Janitor
run_dir = Path(tempfile.mkdtemp(prefix="ostoolkit-janitor-"))
(run_dir / "data").mkdir()
janitor = Janitor(run_dir).start()
sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
janitor.watch(sleeper.pid)
print(sleeper.pid, run_dir, flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
janitor.close()
sleeper.kill()
sleeper.wait()
"""


@pytest.mark.parametrize("end", ["kill", "close"])
def test_janitor_cleans_up_only_after_its_parent_died(tmp_path, end):
    marker, env = marked_env()
    done = subprocess.run(
        [sys.executable, "-c", JANITOR_SCRIPT, end],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    pid_text, folder = done.stdout.split()
    run_dir = Path(folder)
    try:
        if end == "kill":
            assert done.returncode == -signal.SIGKILL
            wait_until(lambda: not run_dir.exists(), GONE_WITHIN_S, "the janitor left the dir")
            wait_until(lambda: not marked_processes(marker), GONE_WITHIN_S, "sleep survived")
        else:
            assert done.returncode == 0, done.stderr
            assert run_dir.is_dir(), "a janitor told 'done' removed the run dir"
            assert not marked_processes(marker)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_text), signal.SIGKILL)


def test_connect_per_transaction_opens_a_connection_for_every_transaction(tmp_path):
    require_servers()
    marker, env = marked_env(TMPDIR=str(tmp_path))
    args = [
        "connections",
        "--real",
        "postgres,mariadb,pgbouncer",
        "--clients",
        "4",
        "--duration",
        "1",
        "--connect-per-tx",
        "--json",
        "-",
    ]
    run = run_marked([str(ENTRY), *args], env=env, marker=marker, timeout=120)
    assert run.returncode == 0, run.describe()
    assert not run.leftovers, run.describe()
    report = json.loads(run.stdout)
    by_id = {r["id"]: r for r in report["results"]}
    for server in ("postgres", "mariadb", "pgbouncer"):
        tps, connect = by_id[f"conn.{server}.4.tps"], by_id[f"conn.{server}.4.connect"]
        assert tps["extra"]["mode"] == "a connection per transaction"
        transactions = tps["extra"]["transactions"]
        assert transactions > 0
        assert connect["n"] == transactions  # one connection per transaction
        # A transaction's latency holds its connection's set-up: in some window, at least
        # (were every window's p99 below the connections' median, 99 % of them would be).
        assert max(by_id[f"conn.{server}.4.p99"]["samples"]) >= connect["median"]
        assert f"conn.{server}.4.switches_per_tx" not in by_id  # exited tasks' are lost
    assert by_id["conn.pgbench.4.tps"]["median"] > 0  # pgbench -C beside
    assert any(f.startswith("switches per transaction are not given") for f in report["findings"])
    assert any(f.startswith("opening a connection at 4 clients") for f in report["findings"])
