"""measure-switch --layer python's pure logic: presets, sampling steps, notes, findings, CLI.

Nothing here starts a thread or a process (tests/unit's guard): the samplers are fakes, the
asyncio hand-off runs on one event loop in this thread, and the CLI's measurement is replaced.
"""

import asyncio
import os

import pytest
from click.testing import CliRunner

from ostoolkit import cli as cli_module
from ostoolkit.cli import measure as measure_cli
from ostoolkit.measure.blocks import Gathered
from ostoolkit.measure.interference import Interference
from ostoolkit.measure.pylayers import (
    ASYNCIO_ID,
    GIL_ID,
    OS_ID,
    PyLayersConfig,
    _Court,
    _future_baseline,
    _future_pong,
    _future_round_trips,
    layer_findings,
    layer_result,
    switch_notes,
)
from ostoolkit.report import Measurement, Result, make_result

CPU = min(os.sched_getaffinity(0))
QUIET = Interference(0.0, 0.0, (CPU,), 1.0)


def test_presets_and_steps():
    full, quick = PyLayersConfig.full(), PyLayersConfig.quick()
    assert full == PyLayersConfig()
    assert quick.repeat < full.repeat
    assert quick.target_sample_s < full.target_sample_s
    # two Python figures and the OS thread switch, each (calibration + one per sample)
    assert full.steps() == 3 * (full.repeat + 1)


def test_os_switch_is_the_thread_switch_on_the_same_cpu():
    config = PyLayersConfig(repeat=7, blocks=3, iterations=500, target_sample_s=0.01)
    switch = config.os_switch(3)
    assert switch.models == ("thread",)
    assert switch.placements == ("same_core",)
    assert switch.cpus == (3,)
    assert (switch.repeat, switch.blocks, switch.iterations) == (7, 3, 500)
    assert switch.target_sample_s == 0.01
    assert switch.working_set_kb == 0


def test_switch_notes():
    assert switch_notes("gil", 1.0, 0.1) == []
    (above,) = switch_notes("gil", 2.6, 1.1)
    assert "2.60 OS switches per hand-off" in above
    assert "1.10 involuntary" in above
    (below,) = switch_notes("gil", 0.5, 0.0)
    assert "only 0.50" in below
    assert switch_notes("asyncio", 0.0, 0.0) == []
    (busy,) = switch_notes("asyncio", 0.2, 0.2)
    assert "asyncio itself makes no OS switch" in busy


def test_layer_result_extras():
    gathered = Gathered(
        rounds=100,
        round_us=[6.0, 6.2, 6.4],
        baseline_us=[0.1, 0.1, 0.1],
        reference_us=[0.5, 0.5, 0.6],
        voluntary=300,
        involuntary=220,
        hops=200,
        block_sizes=[2, 1],
    )
    result = layer_result("gil", CPU, gathered, QUIET)
    assert isinstance(result, Result)
    assert (result.id, result.unit, result.n) == (GIL_ID, "us", 3)
    assert result.median == pytest.approx(3.0)
    extra = result.extra
    assert extra["cpus"] == [CPU, CPU]
    assert extra["gross_us"] == pytest.approx(3.1)
    assert extra["round_trip_us"] == pytest.approx(6.2)
    assert extra["baseline_us"] == pytest.approx(0.1)
    assert extra["switches_per_hop"] == pytest.approx(2.6)
    assert extra["involuntary_per_hop"] == pytest.approx(1.1)
    assert result.runs == (2, 1)  # each block a run: a fresh partner thread
    assert extra["reference_samples_us"] == [0.5, 0.5, 0.6]
    assert any("2.60 OS switches per hand-off" in note for note in result.notes)
    task = layer_result(
        "asyncio", CPU, Gathered(1, [4.0], [0.2], [0.5], [0.0], 0, 0, 2, [1]), QUIET
    )
    assert isinstance(task, Result)
    assert task.id == ASYNCIO_ID
    assert task.extra["switches_per_hop"] == 0


def results(gil: float, task: float, os_switch: float | None) -> dict:
    found = {
        GIL_ID: make_result(GIL_ID, "gil", "us", [gil], extra={"switches_per_hop": 2.6}),
        ASYNCIO_ID: make_result(ASYNCIO_ID, "asyncio", "us", [task], extra={"switches_per_hop": 0}),
    }
    if os_switch is not None:
        found[OS_ID] = make_result(OS_ID, "os", "us", [os_switch])
    return found


def test_findings_say_what_each_costs():
    first, threads, loop = layer_findings(results(2.6, 2.2, 0.8))
    assert first.startswith(
        "here an asyncio task switch costs 2.2 µs, a GIL hand-off between two threads 2.6 µs, "
        "an OS thread switch 0.8 µs"
    )
    assert "3.2× a bare OS thread switch" in threads
    assert "2.6 OS switches" in threads
    assert "no OS switch at all" in loop
    assert "0.8× a GIL hand-off" in loop
    assert "about the same as a GIL hand-off" in layer_findings(results(2.6, 2.5, 0.8))[2]


def test_findings_without_the_os_figure_or_a_positive_median():
    only = layer_findings(results(2.6, 2.2, None))
    assert len(only) == 2
    assert "OS thread switch" not in only[0]
    assert len(layer_findings(results(-0.1, 2.2, 0.8))) == 1  # no ratio of a negative figure
    assert layer_findings({}) == []


def test_the_asyncio_hand_off_passes_the_token_and_ends():
    """The ping-pong protocol on one event loop (this thread): n round trips, then False."""
    loop = asyncio.new_event_loop()
    try:

        async def play() -> None:
            court = _Court(loop.create_future(), loop.create_future())
            partner = loop.create_task(_future_pong(court))
            await asyncio.sleep(0)
            assert await _future_round_trips(court, 5) > 0
            assert await _future_baseline(5) > 0
            assert not partner.done()
            court.to_pong.set_result(False)
            await partner

        loop.run_until_complete(play())
        assert asyncio.all_tasks(loop) == set()
    finally:
        loop.close()


# -- the CLI: --layer python's options, its refusals, its presets --------------------------------


@pytest.fixture
def fake_layers(monkeypatch):
    """Replace the real measurement; record the config it was called with."""
    calls: list[PyLayersConfig] = []

    def fake(config, progress=None):
        calls.append(config)
        return Measurement((make_result(GIL_ID, "gil", "us", [2.0, 2.2]),), ("finding",), ())

    def no_switch(config, progress=None):
        raise AssertionError("--layer python ran the OS switch command")

    monkeypatch.setattr(measure_cli, "measure_python_layers", fake)
    monkeypatch.setattr(measure_cli, "measure_switch", no_switch)
    return calls


def invoke(*args: str):
    return CliRunner().invoke(cli_module.cli, ["measure-switch", "--layer", "python", *args])


def test_cli_presets_and_options_reach_the_config(fake_layers):
    assert invoke().exit_code == 0
    assert invoke("--quick").exit_code == 0
    result = invoke("--quick", "--repeat", "4", "--iterations", "300", "--cpus", str(CPU))
    assert result.exit_code == 0, result.output
    full, quick, given = fake_layers
    assert full == PyLayersConfig.full()
    assert quick == PyLayersConfig.quick()
    assert given == PyLayersConfig(
        repeat=4, iterations=300, target_sample_s=quick.target_sample_s, cpu=CPU
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--model", "thread"], "--model"),
        (["--placement", "same-core"], "--placement"),
        (["--working-set", "0"], "--working-set"),
        (["--cross-check"], "--cross-check"),
    ],
)
def test_cli_refuses_the_os_switch_s_own_options(fake_layers, args, option):
    result = invoke("--quick", *args)
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert line.startswith(f"Error: {option} is for --layer os only")
    assert not fake_layers


def test_cli_takes_one_cpu_with_the_python_layer(fake_layers):
    two = sorted(os.sched_getaffinity(0))[:2]
    if len(two) < 2:
        pytest.skip("needs two allowed CPUs")
    result = invoke("--cpus", ",".join(map(str, two)))
    assert result.exit_code == 2
    assert "Error: --cpus takes one CPU with --layer python" in result.output
    assert not fake_layers


def test_cli_layer_choice_and_default(monkeypatch):
    assert (
        "--layer [os|python]"
        in CliRunner()
        .invoke(cli_module.cli, ["measure-switch", "--help"], terminal_width=200)
        .output
    )
    bad = CliRunner().invoke(cli_module.cli, ["measure-switch", "--layer", "gil"])
    assert bad.exit_code == 2
    assert "--layer" in bad.output
    seen = []

    def fake_switch(config, progress=None):
        seen.append(config)
        return Measurement(())

    monkeypatch.setattr(measure_cli, "measure_switch", fake_switch)
    monkeypatch.setattr(measure_cli, "run_cross_check", lambda measurement, quick: measurement)
    assert CliRunner().invoke(cli_module.cli, ["measure-switch", "--layer", "os"]).exit_code == 0
    assert len(seen) == 1
