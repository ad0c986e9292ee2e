"""The compare command: saved reports side by side, figure by figure, from their runs.

The one command that measures nothing: it parses its options with the types in ``options``,
makes one library call (``compare.load_all`` and ``compare.compare_reports``) through
``run_command`` with the compared hosts as its host block, appends its markdown to
GITHUB_STEP_SUMMARY when that is set, and exits 1 when ``--fail-above`` finds a regression.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ostoolkit.cli.options import FiniteFloatRange, output_options
from ostoolkit.cli.run import cli_errors, debugging, run_command
from ostoolkit.compare.engine import (
    DEFAULT_THRESHOLD,
    MAX_THRESHOLD,
    compare_reports,
    compared_hosts,
    load_all,
)
from ostoolkit.compare.fleet import FLEET_AFTER, VIEWS
from ostoolkit.files import check_output_path, write_text
from ostoolkit.render import render
from ostoolkit.report import Measurement

COMPARE_EPILOG = """Examples:

\b
  ostoolkit compare examples/reports/           # every report in a folder
  ostoolkit compare a.json b.json --label laptop --label ci-runner
  ostoolkit compare a1.json a2.json b1.json b2.json -l main -l main -l pr -l pr
  ostoolkit compare base.json new.json --fail-above 1.2 --changed
  ostoolkit compare base.json new.json --threshold 10 --json compare.json
  ostoolkit compare fleet/ --view fleet          # spread and far-out hosts, not columns
"""


@click.command("compare", epilog=COMPARE_EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--label",
    "-l",
    "labels",
    multiple=True,
    help="A column's name, once per report; reports with the same label are pooled as one "
    "host's runs.  [default: host, CPU, kernel]",
)
@click.option(
    "--baseline", metavar="LABEL", help="The column others are compared with.  [default: the first]"
)
@click.option(
    "--threshold",
    type=FiniteFloatRange(0, MAX_THRESHOLD * 100, min_open=True),
    default=DEFAULT_THRESHOLD * 100,
    show_default=True,
    metavar="PCT",
    help="The band of no practical difference: a figure whose whole 95 % interval "
    "lies within ±PCT % of the baseline is the same.",
)
@click.option(
    "--fail-above",
    type=FiniteFloatRange(1.0, min_open=True),
    metavar="RATIO",
    help="Exit 1 when a figure is worse than the baseline (slower, more, or lower "
    "per second) and even its interval's end nearest 1 is beyond RATIO.",
)
@click.option("--changed", is_flag=True, help="Show only the figures whose verdict is not same.")
@click.option(
    "--view",
    type=click.Choice(VIEWS),
    default="auto",
    show_default=True,
    help="hosts: a column per host; fleet: per figure the spread across the hosts, the hosts "
    f"far out of it and the groups that share a fingerprint; auto: fleet past {FLEET_AFTER} "
    "hosts.",
)
@output_options
@click.pass_context
def compare_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    labels: tuple[str, ...],
    baseline: str | None,
    threshold: float,
    fail_above: float | None,
    changed: bool,
    view: str,
    fmt: str,
    json_path: str | None,
) -> None:
    """Compare saved reports (files, or folders of them) across hosts, from their samples.

    For each figure: the ratio of its median to the baseline's and a 95 % interval of that
    ratio that resamples runs, then samples within them. The interval against a band of
    ±PCT % gives one word: slower/faster (times), more/less (memory, counts), higher/lower
    (other units), same (inside the band), unclear (straddling it, one run, too few samples),
    missing. Exact figures (counts fixed by construction) are judged on their values. Noise
    status and the interference a measurement saw are shown beside, never as the verdict.
    Reports with the same --label are pooled as more runs of one host. Nothing is
    measured: the report's host block names the compared hosts. With GITHUB_STEP_SUMMARY set,
    the markdown is appended there too.
    """
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary is not None:
        with cli_errors(debugging(ctx)):
            check_output_path(summary, "GITHUB_STEP_SUMMARY")

    def measure() -> Measurement:
        reports = load_all(paths)
        return compare_reports(
            reports, labels, baseline, fail_above, threshold / 100, changed, view
        )

    report = run_command(ctx, measure, fmt, json_path, host_from=compared_hosts)
    if summary:
        with cli_errors(False):
            write_text(summary, render(report, "markdown"), "GITHUB_STEP_SUMMARY", append=True)
    if report.data["fail_above"] is not None and report.data["regressions"]:
        raise click.exceptions.Exit(1)
