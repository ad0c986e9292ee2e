"""connections --real before any work: missing packages and bad options, in one line, exit 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ostoolkit.cli import cli
from ostoolkit.connections.real import servers as throwaway
from ostoolkit.errors import InvalidRequest


def test_a_missing_program_names_its_debian_package(monkeypatch):
    monkeypatch.setattr(throwaway.shutil, "which", lambda name, path=None: None)
    monkeypatch.setattr(throwaway.glob, "glob", lambda pattern: [])
    for kind, package in (
        ("postgres", "postgresql"),
        ("mariadb", "mariadb-server"),
        ("mariadb-pool", "mariadb-server"),
    ):
        with pytest.raises(InvalidRequest, match=f"install Debian's {package} package"):
            throwaway.check_installed(kind)
    assert throwaway.installed() == ()


def test_pgbouncer_missing_beside_postgres_names_pgbouncer(monkeypatch, tmp_path):
    (tmp_path / "15" / "bin").mkdir(parents=True)
    for name in ("initdb", "postgres"):
        (tmp_path / "15" / "bin" / name).touch()
    monkeypatch.setattr(throwaway.glob, "glob", lambda pattern: [str(tmp_path / "15" / "bin")])
    monkeypatch.setattr(throwaway.shutil, "which", lambda name, path=None: None)
    with pytest.raises(InvalidRequest, match="pgbouncer not found: install Debian's pgbouncer"):
        throwaway.check_installed("pgbouncer")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--real", "nosuch"], "unknown server 'nosuch'"),
        (["--duration", "3"], "--duration and --connect-per-tx need --real"),
        (["--connect-per-tx"], "need --real"),
        (["--real", "--model", "thread"], "leave out --model"),
        (["--real", "--postgres", "postgresql://x@127.0.0.1/db"], "leave out --model, --postgres"),
        (["--real", "--queries", "5"], "leave out --queries"),
        (["--real", "--clients", "6000"], "above 5000"),
        (["--real", "--duration", "0.1"], "0.1"),
    ],
)
def test_bad_real_options_are_one_line_and_exit_2(args, words):
    result = CliRunner().invoke(cli, ["connections", *args])
    assert result.exit_code == 2, result.output
    assert words in result.output
