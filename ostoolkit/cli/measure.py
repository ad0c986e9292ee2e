"""The measure-* commands and switch-rate: context switches (their cost, and how often this
host switches), process and thread creation, memory per worker.

Each reads its quick and careful settings from its measurement's Config (``quick()``,
``full()``), in its options' defaults and help texts as in the run, and its progress bar's
length from ``Config.steps``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from functools import partial

import click

from ostoolkit.cli.options import (
    MAX_REPEAT,
    AllowedCpu,
    CpuList,
    FiniteFloatRange,
    IntList,
    StrictIntRange,
    counts,
    given,
    listed,
    output_options,
    sizes_mb,
    spoken,
)
from ostoolkit.cli.run import run_command, with_progress
from ostoolkit.measure.blocks import MAX_ROUNDS
from ostoolkit.measure.cow import (
    COW_REPEAT,
    COW_SIZE_MB,
    MAX_COW_MB,
    QUICK_COW_REPEAT,
    measure_cow,
)
from ostoolkit.measure.memory import MAX_PROCESSES, MAX_THREADS, MemoryConfig, measure_memory
from ostoolkit.measure.memory import MODELS as MEMORY_MODELS
from ostoolkit.measure.perfbench import cross_check as run_cross_check
from ostoolkit.measure.pylayers import PyLayersConfig, measure_python_layers
from ostoolkit.measure.ring import MAX_TASKS, RingConfig, measure_rings, ring_steps
from ostoolkit.measure.spawn import MAX_PARENT_RSS_MB, METHODS, SpawnConfig, measure_spawn
from ostoolkit.measure.switch import (
    MAX_WORKING_SET_KB,
    MODELS,
    PLACEMENTS,
    SwitchConfig,
    measure_switch,
)
from ostoolkit.measure.switchrate import RateConfig, measure_switch_rate
from ostoolkit.report import Measurement, Progress

SWITCH, QUICK_SWITCH = SwitchConfig.full(), SwitchConfig.quick()
SPAWN, QUICK_SPAWN = SpawnConfig.full(), SpawnConfig.quick()
MEMORY, QUICK_MEMORY = MemoryConfig.full(), MemoryConfig.quick()
PY_LAYERS, QUICK_PY_LAYERS = PyLayersConfig.full(), PyLayersConfig.quick()
RATE, QUICK_RATE = RateConfig.full(), RateConfig.quick()
MAX_RATE_DURATION_S = 60.0
LAYERS = ("os", "python")
# measure-switch's options that only the OS switch has (option name, parameter name).
OS_ONLY = (
    ("--model", "models"),
    ("--placement", "placements"),
    ("--working-set", "working_set_kb"),
    ("--cross-check", "cross_check"),
    ("--tasks", "tasks"),
    ("--sizes", "sizes"),
)
# Options of the two-task ping-pong that rings (--tasks, --sizes) do not take.
PAIR_ONLY = (
    ("--placement", "placements"),
    ("--working-set", "working_set_kb"),
    ("--iterations", "iterations"),
    ("--cross-check", "cross_check"),
)

SWITCH_EPILOG = """Examples:

\b
  ostoolkit measure-switch                  # careful run, about 10 s
  ostoolkit measure-switch --quick --json -  # CI: the JSON report on stdout
  ostoolkit measure-switch --working-set 256 --model process
  ostoolkit measure-switch --quick --cross-check  # beside the C harness and perf
  ostoolkit measure-switch --layer python    # GIL hand-off, asyncio task switch, OS thread
  ostoolkit measure-switch --placement topology   # every placement this host's CPUs have
  ostoolkit measure-switch --tasks 2,32,256 --sizes 0,64,1024   # lmbench lat_ctx's rings
"""


@click.command("measure-switch", epilog=SWITCH_EPILOG)
@click.option(
    "--layer",
    type=click.Choice(LAYERS),
    default="os",
    show_default=True,
    help="os: the kernel's switch between processes or threads; python: a GIL hand-off between "
    "two threads and an asyncio task switch, on one CPU, beside the OS thread switch.",
)
@click.option(
    "--model",
    "models",
    type=click.Choice(MODELS),
    multiple=True,
    help="process (os.fork) or thread (threading); repeat for both.  [default: both]",
)
@click.option(
    "--placement",
    "placements",
    type=click.Choice([*(p.replace("_", "-") for p in PLACEMENTS), "topology"]),
    multiple=True,
    help="same-core (a real switch per hop) or cross-core (wake-up latency across CPUs); "
    "topology: every placement /sys shows (SMT sibling, same or other last-level cache, other "
    "NUMA node) and unpinned.  [default: same-core and cross-core]",
)
@click.option(
    "--tasks",
    type=IntList(2, MAX_TASKS, "2,32,256", ordered=True),
    help="Rings of N tasks on one CPU passing a token (lmbench lat_ctx), "
    f"e.g. {','.join(map(str, RingConfig().tasks))}.",
)
@click.option(
    "--sizes",
    type=IntList(0, MAX_WORKING_SET_KB, "0,64,1024", ordered=True),
    metavar="KB,...",
    help="Working set each ring task reads at every hop; alone, the two-task "
    "curve, e.g. 0,4,16,64,256,1024,4096.",
)
@click.option(
    "--iterations",
    type=StrictIntRange(1, MAX_ROUNDS),
    help="Round trips per sample.  [default: calibrated to about "
    f"{SWITCH.target_sample_s * 1000:.0f} ms, {QUICK_SWITCH.target_sample_s * 1000:.0f} ms "
    "with --quick]",
)
@click.option(
    "--repeat",
    type=StrictIntRange(1, MAX_REPEAT),
    help=f"Samples per figure, taken in up to {SWITCH.blocks} blocks spread over the run, each "
    f"with a fresh partner and a warm-up.  [default: {SWITCH.repeat}, {QUICK_SWITCH.repeat} "
    "with --quick]",
)
@click.option(
    "--working-set",
    "working_set_kb",
    type=StrictIntRange(0, MAX_WORKING_SET_KB),
    default=SWITCH.working_set_kb,
    show_default=True,
    metavar="KB",
    help="Each task reads its own buffer of this size before every hop (lmbench lat_ctx size).",
)
@click.option(
    "--cpus",
    type=CpuList(),
    help="One CPU (same-core) or two (cross-core) of those this process may use, "
    "e.g. 2,3.  [default: the first allowed]",
)
@click.option("--quick", is_flag=True, help="Finish in a few seconds (for CI logs).")
@click.option(
    "--cross-check/--no-cross-check",
    default=None,
    help="Run the C harness of the same method (lat_pipe.c, built with gcc or cc), its blocks "
    "alternated with ours on the same CPU (Python's share: ours minus C), and perf bench "
    "sched pipe (and -T).  [default: on; off with --quick]",
)
@click.option(
    "--trace",
    "trace_timing",
    is_flag=True,
    help="Also decompose a same-core hop from the kernel's tracepoints (root or CAP_PERFMON): "
    "wake-up to run, the switch path, kernel and user time, ours beside the C harness's, with "
    "the tracing's overhead; traced in blocks of their own, never in the timed figures.",
)
@output_options
@click.pass_context
def measure_switch_command(
    ctx: click.Context,
    layer: str,
    models: tuple[str, ...],
    placements: tuple[str, ...],
    iterations: int | None,
    repeat: int | None,
    working_set_kb: int,
    cpus: tuple[int, ...] | None,
    quick: bool,
    cross_check: bool | None,
    tasks: tuple[int, ...] | None,
    sizes: tuple[int, ...] | None,
    trace_timing: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Measure the cost of a context switch between two processes and between two threads.

    Two tasks bounce a one-byte token over two pipes (the lmbench / perf bench sched pipe
    method), pinned to one CPU (same-core: every hop is a real switch) or to two CPUs
    (cross-core: wake-up latency). Each figure is given gross (round trip / 2) and net (minus
    the same write+read done without a switch, measured in the same run), beside the
    article's claims, checked against the kernel's own switch counters. --layer python
    measures Python's own switches the same way: a GIL hand-off between two threads and an
    asyncio task switch, beside the OS thread switch.
    """
    if layer == "python":
        python_layers(ctx, iterations, repeat, cpus, quick, fmt, json_path)
        return
    if tasks or sizes:
        rings(ctx, models, tasks, sizes, repeat, cpus, quick, fmt, json_path)
        return
    preset = QUICK_SWITCH if quick else SWITCH
    cross = not quick if cross_check is None else cross_check
    config = replace(
        preset,
        models=models or preset.models,
        placements=tuple(p.replace("-", "_") for p in placements) or preset.placements,
        repeat=repeat or preset.repeat,
        iterations=iterations,
        working_set_kb=working_set_kb,
        cpus=cpus,
        c_harness=cross,
        trace_timing=trace_timing,
    )

    def measure(progress: Progress | None) -> Measurement:
        measurement = measure_switch(config, progress)
        return run_cross_check(measurement, quick) if cross else measurement

    steps = config.steps(len(os.sched_getaffinity(0)))
    run_command(ctx, with_progress(steps, "measuring switches", measure), fmt, json_path)


def rings(
    ctx: click.Context,
    models: tuple[str, ...],
    tasks: tuple[int, ...] | None,
    sizes: tuple[int, ...] | None,
    repeat: int | None,
    cpus: tuple[int, ...] | None,
    quick: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """measure-switch --tasks/--sizes: rings on one CPU; the pair's own options refused."""
    for option, name in PAIR_ONLY:
        if given(ctx, name):
            why = "--tasks and --sizes build rings on one CPU"
            raise click.UsageError(f"{option} is for the two-task ping-pong: {why}")
    if cpus is not None and len(cpus) != 1:
        raise click.UsageError(f"--cpus takes one CPU with --tasks/--sizes, not {len(cpus)}")
    preset = RingConfig.quick() if quick else RingConfig.full()
    config = replace(
        preset,
        tasks=tasks or (2,),
        sizes_kb=sizes or (0,),
        models=models or preset.models,
        samples=repeat or preset.samples,
        cpu=cpus[0] if cpus else None,
    )

    measure = with_progress(
        ring_steps(config), "building rings", lambda progress: measure_rings(config, None, progress)
    )
    run_command(ctx, measure, fmt, json_path)


def python_layers(
    ctx: click.Context,
    iterations: int | None,
    repeat: int | None,
    cpus: tuple[int, ...] | None,
    quick: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """measure-switch --layer python: refuse the OS switch's own options, then measure."""
    for option, name in OS_ONLY:
        if given(ctx, name):
            raise click.UsageError(
                f"{option} is for --layer os only: --layer python measures a GIL hand-off, an "
                "asyncio task switch and the OS thread switch, all on one CPU"
            )
    if cpus is not None and len(cpus) != 1:
        raise click.UsageError(
            f"--cpus takes one CPU with --layer python (every task runs on it), not {len(cpus)}"
        )
    preset = QUICK_PY_LAYERS if quick else PY_LAYERS
    config = replace(
        preset, repeat=repeat or preset.repeat, iterations=iterations, cpu=cpus[0] if cpus else None
    )

    steps, label = config.steps(), "measuring Python's switches"
    measure = with_progress(steps, label, lambda progress: measure_python_layers(config, progress))
    run_command(ctx, measure, fmt, json_path)


PHASES = f"{RATE.duration_s:g} s idle, then {RATE.duration_s:g} s under the ping-pong"
SWITCH_RATE_EPILOG = f"""Examples:

\b
  ostoolkit switch-rate                     # {PHASES}
  ostoolkit switch-rate --duration 10 --cpu 1
  ostoolkit switch-rate --quick --json rate.json
"""


@click.command("switch-rate", epilog=SWITCH_RATE_EPILOG)
@click.option(
    "--duration",
    type=FiniteFloatRange(0.1, MAX_RATE_DURATION_S),
    default=RATE.duration_s,
    show_default=True,
    help="Seconds the host is watched idle, and again under the ping-pong, each in "
    f"{RATE.windows} windows: the samples ({QUICK_RATE.duration_s:g} with --quick).",
)
@click.option(
    "--cpu",
    type=AllowedCpu(),
    help="CPU the ping-pong's two tasks share.  [default: the last allowed]",
)
@click.option("--quick", is_flag=True, help=f"{QUICK_RATE.duration_s:g} s per phase (for CI logs).")
@output_options
@click.pass_context
def switch_rate_command(
    ctx: click.Context,
    duration: float,
    cpu: int | None,
    quick: bool,
    fmt: str,
    json_path: str | None,
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
    preset = QUICK_RATE if quick else RATE
    config = replace(
        preset, duration_s=duration if given(ctx, "duration") else preset.duration_s, cpu=cpu
    )
    measure = with_progress(
        config.steps(), "counting switches", partial(measure_switch_rate, config)
    )
    run_command(ctx, measure, fmt, json_path)


SPAWN_EPILOG = """Examples:

\b
  ostoolkit measure-spawn                          # about 5 s
  ostoolkit measure-spawn --quick --json spawn.json
  ostoolkit measure-spawn --method fork --method thread --parent-rss 0,256,1024
"""


@click.command("measure-spawn", epilog=SPAWN_EPILOG)
@click.option(
    "--method",
    "methods",
    type=click.Choice(METHODS),
    multiple=True,
    help="Creation method to time; repeat for several.  [default: all]",
)
@click.option(
    "--repeat",
    type=StrictIntRange(1, MAX_REPEAT),
    help="Timed operations per method.  "
    f"[default: {SPAWN.repeat}, {QUICK_SPAWN.repeat} with --quick]",
)
@click.option(
    "--mp-repeat",
    type=StrictIntRange(1, MAX_REPEAT),
    help="Starts per multiprocessing method.  "
    f"[default: {SPAWN.mp_repeat}, {QUICK_SPAWN.mp_repeat} with --quick]",
)
@click.option(
    "--parent-rss",
    "parent_rss_mb",
    type=sizes_mb(MAX_PARENT_RSS_MB),
    metavar="MB,...",
    help="Also time fork with the parent holding this much more memory.",
)
@click.option("--quick", is_flag=True, help="Fewer repetitions (for CI logs).")
@output_options
@click.pass_context
def measure_spawn_command(
    ctx: click.Context,
    methods: tuple[str, ...],
    repeat: int | None,
    mp_repeat: int | None,
    parent_rss_mb: tuple[int, ...] | None,
    quick: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Measure what creating a process or a thread costs, one creation at a time.

    fork+exit+waitpid, fork+execve of /bin/true, os.posix_spawn, subprocess.run, a thread's
    start+join, and one worker with each multiprocessing start method (fork, forkserver,
    spawn); each as a ratio to a thread start. --parent-rss shows fork growing with the
    page tables it copies.
    """
    preset = QUICK_SPAWN if quick else SPAWN
    config = replace(
        preset,
        repeat=repeat or preset.repeat,
        mp_repeat=mp_repeat or preset.mp_repeat,
        methods=methods or preset.methods,
        parent_rss_mb=parent_rss_mb or (),
    )

    measure = with_progress(config.steps(), "timing creations", partial(measure_spawn, config))
    run_command(ctx, measure, fmt, json_path)


MEMORY_EPILOG = f"""Examples:

\b
  ostoolkit measure-memory                         # {spoken(MEMORY.workers)} workers of each model
  ostoolkit measure-memory --model thread --workers 100,1000,10000
  ostoolkit measure-memory --cow --size 256        # copy-on-write, step by step
"""


@click.command("measure-memory", epilog=MEMORY_EPILOG)
@click.option(
    "--workers",
    type=counts(MAX_THREADS),
    default=listed(MEMORY.workers),
    show_default=True,
    help=f"Worker counts to measure (processes up to {MAX_PROCESSES}, threads up to "
    f"{MAX_THREADS}).",
)
@click.option(
    "--model",
    "models",
    type=click.Choice(MEMORY_MODELS),
    multiple=True,
    help="Worker model; repeat for several.  [default: all]",
)
@click.option("--cow", is_flag=True, help="Show copy-on-write after fork instead.")
@click.option(
    "--size",
    type=StrictIntRange(1, MAX_COW_MB),
    default=COW_SIZE_MB,
    show_default=True,
    metavar="MB",
    help="With --cow: the parent's memory the child writes.",
)
@click.option(
    "--repeat",
    type=StrictIntRange(1, 100),
    default=COW_REPEAT,
    show_default=True,
    help="With --cow: children forked, one after the other.",
)
@click.option(
    "--quick", is_flag=True, help=f"{spoken(QUICK_MEMORY.workers)} workers, or one --cow child."
)
@output_options
@click.pass_context
def measure_memory_command(
    ctx: click.Context,
    workers: tuple[int, ...],
    models: tuple[str, ...],
    cow: bool,
    size: int,
    repeat: int,
    quick: bool,
    fmt: str,
    json_path: str | None,
) -> None:
    """Measure the memory one more process costs, and one more thread, honestly counted.

    N idle workers (forked processes, threads, fork+execve'd interpreters, multiprocessing
    'spawn' workers) each write the same small state and block; the whole group is measured
    by USS, PSS and RSS against the same group with no worker, and the cost per worker is
    the slope. --cow instead forks a child over the parent's memory and shows its unique
    memory growing only with what it writes.
    """
    preset = QUICK_MEMORY if quick else MEMORY
    if cow:
        runs = QUICK_COW_REPEAT if quick else repeat
        measure = with_progress(runs, "copy-on-write", partial(measure_cow, size, runs))
    else:
        chosen = workers if given(ctx, "workers") else preset.workers
        config = replace(preset, workers=chosen, models=models or preset.models)
        measure = with_progress(config.steps(), "measuring memory", partial(measure_memory, config))
    run_command(ctx, measure, fmt, json_path)


MEASURE_COMMANDS = (
    measure_switch_command,
    switch_rate_command,
    measure_spawn_command,
    measure_memory_command,
)
