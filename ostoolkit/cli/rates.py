"""The switch-rate command: how often this host switches, idle and under a ping-pong.

It parses its options with the types in ``options``, reads its defaults from ``RateConfig``
and makes one library call, ``measure.switchrate.measure_switch_rate``, through
``run_command``.
"""

from __future__ import annotations

import os
from dataclasses import replace

import click

from ostoolkit.cli import progress_bar, run_command
from ostoolkit.cli.options import FiniteFloatRange, StrictIntRange, not_allowed, output_options
from ostoolkit.measure.switchrate import RateConfig, measure_switch_rate
from ostoolkit.report import Measurement

RATE = RateConfig.full()
MAX_DURATION_S = 60.0

PHASES = f"{RATE.duration_s:g} s idle, then {RATE.duration_s:g} s under the ping-pong"
SWITCH_RATE_EPILOG = f"""Examples:

\b
  ostoolkit switch-rate                     # {PHASES}
  ostoolkit switch-rate --duration 10 --cpu 1
  ostoolkit switch-rate --json rate.json
"""


@click.command("switch-rate", epilog=SWITCH_RATE_EPILOG)
@click.option("--duration", type=FiniteFloatRange(0.1, MAX_DURATION_S), default=RATE.duration_s,
              show_default=True,
              help=f"Seconds the host is watched idle, and again under the ping-pong, each in "
              f"{RATE.windows} windows: the samples.")  # fmt: skip
@click.option(
    "--cpu", type=StrictIntRange(0), help="CPU the ping-pong's two tasks share.  "
    "[default: the last allowed]"
)  # fmt: skip
@output_options
@click.pass_context
def switch_rate_command(
    ctx: click.Context, duration: float, cpu: int | None, fmt: str, json_path: str | None
) -> None:
    """Count this host's context switches per second, idle and under a ping-pong.

    The kernel's count of every switch on every CPU (/proc/stat ctxt) is read around equal
    windows while ostoolkit only waits (the idle host), then while two processes and then two
    threads pinned to one CPU bounce a byte over two pipes. Per CPU: each allowed CPU's own
    count where /proc/schedstat has one, else the host's count over its online CPUs (not the
    allowed ones). Beside the article's "hundreds of times per second": what one switch costs
    in cycles (net time x the CPU's clock, or counted by the CPU's hardware counters where
    perf_event_open can read them) and instructions (counted only), with perf stat beside.
    """
    if cpu is not None and cpu not in os.sched_getaffinity(0):
        raise click.BadParameter(not_allowed(cpu), param_hint="--cpu")
    config = replace(RATE, duration_s=duration, cpu=cpu)

    def measure() -> Measurement:
        with progress_bar(config.steps(), "counting switches") as progress:
            return measure_switch_rate(config, progress)

    run_command(ctx, measure, fmt, json_path)


RATE_COMMANDS = (switch_rate_command,)
