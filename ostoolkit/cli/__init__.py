"""The ``ostoolkit`` command line: the group, its commands, and ``run_cli`` for the entry point.

Every command parses its options and calls one library function through
``run.run_command`` (host fingerprint, one measurement, one report, one render), which is
also the boundary that turns errors and signals into exit codes. The option types are in
``options``; the commands in ``measure`` (measure-* and switch-rate), ``commands`` (the
others) and ``compare``.
"""

from __future__ import annotations

import sys

import click

from ostoolkit import __version__
from ostoolkit.cli.commands import COMMANDS
from ostoolkit.cli.compare import compare_command
from ostoolkit.cli.measure import MEASURE_COMMANDS
from ostoolkit.scratch import sweep_stale_tempdirs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ostoolkit")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """See what processes and threads really cost on this Linux host."""
    if not sys.platform.startswith("linux"):
        click.echo(f"ostoolkit: needs Linux (this is {sys.platform})", err=True)
        raise click.exceptions.Exit(2)
    sweep_stale_tempdirs()  # what killed runs left in $TMPDIR (scratch.run_tempdir)


def run_cli(argv: list[str]) -> int:
    """Run the CLI on ``argv`` and return its exit status; click's errors shown in one place.

    Called by ``ostoolkit.entry.main``, which owns interrupts that land outside a command.
    """
    try:
        code = cli.main(args=argv, prog_name="ostoolkit", standalone_mode=False)
    except click.exceptions.Abort:
        raise KeyboardInterrupt from None
    except click.ClickException as err:
        err.show()
        return err.exit_code
    return code if isinstance(code, int) else 0


for _command in (*MEASURE_COMMANDS, *COMMANDS, compare_command):
    cli.add_command(_command)
