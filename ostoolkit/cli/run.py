"""One trip for every command: host fingerprint, one measurement, one report, one render;
and the boundary that turns errors and signals into exit codes and one line.

The commands (``measure``, ``commands``, ``compare``) call ``run_command``; the group in
``ostoolkit.cli`` adds them. Kept apart from the group so that no command imports the
package that imports it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, NoReturn

import click

from ostoolkit.children import raising_on_sigterm
from ostoolkit.claims import annotate
from ostoolkit.errors import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    InvalidRequest,
    OstoolkitError,
    Terminated,
    describe_os_error,
)
from ostoolkit.files import write_stdout, write_text
from ostoolkit.host import collect_host
from ostoolkit.render import render
from ostoolkit.report import Measurement, Report, build_report
from ostoolkit.scratch import tmpdir_warnings


def emit(report: Report, fmt: str, json_path: str | None, full_host: bool = False) -> None:
    """Print the report; with --json - stdout carries only JSON and the table goes to stderr."""
    if json_path == "-":
        write_stdout(report.to_json())
        if fmt != "json":
            click.echo(render(report, fmt, full_host), err=True, nl=False)
        return
    if json_path:
        write_text(json_path, report.to_json(), "--json")
    write_stdout(render(report, fmt, full_host))


class InputError(click.ClickException):
    """A request refused as asked: one line on stderr, exit status 2 like a usage error."""

    exit_code = 2


@contextmanager
def progress_bar(steps: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr when it is a terminal; yields its update function or None."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=steps, label=label, file=sys.stderr) as bar:
        yield bar.update


def with_progress(
    steps: int, label: str, measure: Callable[[Callable[[int], None] | None], Measurement]
) -> Callable[[], Measurement]:
    """``measure``, run under a progress bar of ``steps`` steps (``run_command``'s argument)."""

    def run() -> Measurement:
        with progress_bar(steps, label) as progress:
            return measure(progress)

    return run


def now_utc() -> str:
    """The current time as ISO 8601 UTC with a Z, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@contextmanager
def cli_errors(debug: bool) -> Iterator[None]:
    """Turn interrupts, the project's errors and OS errors into exit codes and one line.

    The one boundary: a command's children are already ended and reaped when an exception
    gets here (they are closed by context managers on the way up).
    """
    try:
        with raising_on_sigterm():
            yield
    except KeyboardInterrupt:
        click.echo("interrupted: every child was ended and reaped", err=True)
        raise click.exceptions.Exit(EXIT_SIGINT) from None
    except Terminated:
        click.echo("terminated: every child was ended and reaped", err=True)
        raise click.exceptions.Exit(EXIT_SIGTERM) from None
    except OSError as err:
        if debug:
            raise
        fail(describe_os_error(err, "ostoolkit"))
    except OstoolkitError as err:
        if debug:
            raise
        fail(err)


def fail(err: OstoolkitError) -> NoReturn:
    """Raise the click exception for one of the project's errors: exit 2 for a refused request."""
    if isinstance(err, InvalidRequest):
        raise InputError(str(err)) from None
    raise click.ClickException(str(err)) from None


def debugging(ctx: click.Context) -> bool:
    """Whether --debug was given to the group: tracebacks instead of one-line errors."""
    return bool(ctx.find_root().params.get("debug"))


def run_command(
    ctx: click.Context,
    measure: Callable[[], Measurement],
    fmt: str,
    json_path: str | None,
    full_host: bool = False,
    host_from: Callable[[Measurement], dict[str, Any]] | None = None,
) -> Report:
    """The common trip: host fingerprint, one measurement, one report, one render.

    ``host_from`` is for a command that measures nothing on this machine (compare): the
    report's host block is made from its result instead, and this host is not fingerprinted.
    """
    with cli_errors(debugging(ctx)):
        started_at, start = now_utc(), time.monotonic()
        host = collect_host() if host_from is None else {}
        measurement = annotate(measure())  # the article's claims, verdicts, noise warnings
        measurement += Measurement((), warnings=tuple(tmpdir_warnings()))  # said once a run
        if host_from is not None:
            host = host_from(measurement)
        report = build_report(
            ctx.info_name or "ostoolkit",
            sys.argv[1:],
            measurement,
            host,
            started_at,
            time.monotonic() - start,
        )
        emit(report, fmt, json_path, full_host)
    return report
