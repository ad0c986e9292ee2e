"""CLI behaviour through click's CliRunner, with the measurement replaced by canned data."""

import json
import re
from dataclasses import replace
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ostoolkit import __version__
from ostoolkit import cli as cli_module
from ostoolkit.cli import commands as commands_cli
from ostoolkit.cli import measure as measure_cli
from ostoolkit.cli.options import CpuList, IntList, counts, spoken
from ostoolkit.connections.builtin.measure import MAX_CLIENTS, ConnectionsConfig
from ostoolkit.connections.builtin.measure import check_config as check_connections
from ostoolkit.connections.dsn.measure import check_clients
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.cow import COW_REPEAT, COW_SIZE_MB, QUICK_COW_REPEAT
from ostoolkit.measure.memory import MAX_PROCESSES, MAX_THREADS, MemoryConfig
from ostoolkit.measure.memory import check_config as check_memory
from ostoolkit.measure.sched import TimesliceConfig
from ostoolkit.measure.spawn import SpawnConfig
from ostoolkit.measure.switch import SwitchConfig
from ostoolkit.report import Measurement, make_result


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def fake_switch(monkeypatch):
    """Replace the real measurement; record the config it was called with."""
    calls: list[SwitchConfig] = []

    def fake(config, progress=None):
        calls.append(config)
        result = make_result("switch.process.same_core", "process switch", "us", [2.0, 2.2])
        return Measurement((result,), ("finding",), ())

    def fake_perf(measurement, quick):
        calls.append(("perf", quick))
        return measurement

    monkeypatch.setattr(measure_cli, "measure_switch", fake)
    monkeypatch.setattr(measure_cli, "run_cross_check", fake_perf)
    return calls


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--iterations", "0"], "--iterations"),
        (["--repeat", "0"], "--repeat"),
        (["--repeat", "1001"], "--repeat"),
        (["--model", "fiber"], "--model"),
        (["--placement", "anywhere"], "--placement"),
        (["--working-set", "1000000"], "--working-set"),
        (["--working-set", "-1"], "--working-set"),
        (["--cpus", "a,b"], "--cpus"),
        (["--cpus", "0,0"], "--cpus"),
        (["--format", "xml"], "--format"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(runner, fake_switch, args, option):
    result = runner.invoke(cli_module.cli, ["measure-switch", *args])
    assert result.exit_code == 2
    assert option in result.output
    assert "Traceback" not in result.output
    assert not fake_switch


def test_quick_defaults_and_options_reach_the_config(runner, fake_switch):
    result = runner.invoke(
        cli_module.cli,
        [
            "measure-switch",
            "--quick",
            "--model",
            "thread",
            "--placement",
            "cross-core",
            "--working-set",
            "64",
            "--cpus",
            "1,0",
        ],
    )
    assert result.exit_code == 0, result.output
    (config,) = fake_switch
    assert config.models == ("thread",)
    assert config.placements == ("cross_core",)
    assert config.repeat == 15
    assert config.working_set_kb == 64
    assert config.cpus == (1, 0)


def test_json_dash_puts_only_json_on_stdout(runner, fake_switch):
    result = runner.invoke(cli_module.cli, ["measure-switch", "--json", "-"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["command"] == "measure-switch"
    assert data["results"][0]["id"] == "switch.process.same_core"
    assert "process switch" in result.stderr  # the table went to stderr


def test_json_path_and_markdown(runner, fake_switch, tmp_path):
    path = tmp_path / "r.json"
    result = runner.invoke(
        cli_module.cli, ["measure-switch", "--json", str(path), "--format", "markdown"]
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("### ostoolkit measure-switch")
    assert json.loads(path.read_text())["schema"] == "ostoolkit/1"


def test_library_error_is_one_line_exit_1(runner, monkeypatch):
    def failing(config, progress=None):
        raise OstoolkitError("cannot pin to CPU 7: Invalid argument")

    monkeypatch.setattr(measure_cli, "measure_switch", failing)
    result = runner.invoke(cli_module.cli, ["measure-switch"])
    assert result.exit_code == 1
    assert result.stderr == "Error: cannot pin to CPU 7: Invalid argument\n"


def test_keyboard_interrupt_exits_130(runner, monkeypatch):
    def interrupted(config, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(measure_cli, "measure_switch", interrupted)
    result = runner.invoke(cli_module.cli, ["measure-switch"])
    assert result.exit_code == 130
    assert "interrupted" in result.stderr


def test_not_linux_is_exit_2(runner, monkeypatch):
    monkeypatch.setattr(cli_module.sys, "platform", "darwin")
    result = runner.invoke(cli_module.cli, ["host"])
    assert result.exit_code == 2
    assert result.stderr == "ostoolkit: needs Linux (this is darwin)\n"


def test_host_command_lists_fields(runner):
    result = runner.invoke(cli_module.cli, ["host", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["command"] == "host"
    assert data["results"] == []
    assert {"cpu_model", "kernel", "mitigations", "clocksource"} <= set(data["host"])


def test_help_has_examples(runner):
    result = runner.invoke(cli_module.cli, ["measure-switch", "--help"])
    assert "Examples:" in result.output
    assert "--working-set KB" in result.output


def test_states_refuses_a_cpu_outside_the_affinity(runner):
    result = runner.invoke(cli_module.cli, ["states", "--cpu", "4096"])
    assert result.exit_code == 2
    assert "--cpu" in result.output
    assert "not available" in result.output


def test_states_bad_duration(runner):
    result = runner.invoke(cli_module.cli, ["states", "--duration", "0"])
    assert result.exit_code == 2
    assert "--duration" in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--parent-rss", "lots"], "--parent-rss"),
        (["--parent-rss", "99999999"], "--parent-rss"),
        (["--method", "clone3"], "--method"),
        (["--repeat", "0"], "--repeat"),
        (["--mp-repeat", "0"], "--mp-repeat"),
    ],
)
def test_measure_spawn_bad_input(runner, args, option):
    result = runner.invoke(cli_module.cli, ["measure-spawn", *args])
    assert result.exit_code == 2
    assert option in result.output


def test_presets_come_from_the_configs(runner, fake_switch):
    assert runner.invoke(cli_module.cli, ["measure-switch"]).exit_code == 0
    assert runner.invoke(cli_module.cli, ["measure-switch", "--quick"]).exit_code == 0
    careful, perf, quick = fake_switch
    # the C harness beside ours, and perf after, by default; neither with --quick
    assert careful == replace(SwitchConfig.full(), c_harness=True)
    assert perf == ("perf", False)
    assert quick == SwitchConfig.quick()


@pytest.mark.parametrize(
    ("args", "c_harness"),
    [
        (["--no-cross-check"], False),
        (["--quick", "--cross-check"], True),
        (["--quick", "--no-cross-check"], False),
    ],
)
def test_cross_check_can_be_turned_on_and_off(runner, fake_switch, args, c_harness):
    assert runner.invoke(cli_module.cli, ["measure-switch", *args]).exit_code == 0
    config = fake_switch[0]
    assert config.c_harness is c_harness
    assert (("perf", "--quick" in args) in fake_switch) is c_harness


def test_help_texts_are_built_from_the_presets(runner):
    switch = runner.invoke(cli_module.cli, ["measure-switch", "--help"], terminal_width=200)
    full, quick = SwitchConfig.full(), SwitchConfig.quick()
    assert f"[default: {full.repeat}, {quick.repeat} with --quick]" in switch.output
    spawn = runner.invoke(cli_module.cli, ["measure-spawn", "--help"], terminal_width=200)
    assert f"[default: {SpawnConfig().mp_repeat}, {SpawnConfig.quick().mp_repeat}" in spawn.output
    memory = runner.invoke(cli_module.cli, ["measure-memory", "--help"], terminal_width=200)
    assert f"{spoken(MemoryConfig.quick().workers)} workers, or one --cow child" in memory.output


def test_memory_quick_workers_and_steps(runner, monkeypatch):
    calls = []

    def fake(config, progress=None):
        calls.append(config)
        return Measurement(())

    monkeypatch.setattr(measure_cli, "measure_memory", fake)
    assert runner.invoke(cli_module.cli, ["measure-memory", "--quick"]).exit_code == 0
    assert (
        runner.invoke(cli_module.cli, ["measure-memory", "--quick", "--workers", "5"]).exit_code
        == 0
    )
    assert calls == [MemoryConfig.quick(), MemoryConfig(workers=(5,), groups=2)]
    assert calls[0].steps() == len(calls[0].models) * 4  # empty, 1, 10, and 10 again


def test_list_types_parse_once():
    assert counts(100).convert("100, 1,10", None, None) == (1, 10, 100)
    assert IntList(0, 9, "1,2").convert("3,1", None, None) == (3, 1)  # order kept
    assert IntList(0, 9, "1,2").convert((3, 1), None, None) == (3, 1)  # already parsed
    assert spoken((1,)) == "1"
    assert spoken((1, 10, 100)) == "1, 10 and 100"
    with pytest.raises(click.BadParameter, match="names a number twice"):
        counts(100).convert("1,1", None, None)
    with pytest.raises(click.BadParameter, match=r"each number must be within 1\.\.100"):
        counts(100).convert("101", None, None)


def test_cpu_list_names_the_allowed_cpus(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 2})
    assert CpuList().convert("2,0", None, None) == (2, 0)
    with pytest.raises(
        click.BadParameter, match="CPU 1 is not available to this process; choose from 0,2"
    ):
        CpuList().convert("0,1", None, None)
    with pytest.raises(click.BadParameter, match=r"each number must be within 0\.\.2"):
        CpuList().convert("3", None, None)


def test_states_reads_the_timeslice_preset(runner, monkeypatch):
    calls = []

    def fake_timeslice(duration_s, windows, cpu=None, progress=None):
        calls.append(TimesliceConfig(duration_s, windows, cpu))
        return Measurement(())

    monkeypatch.setattr(commands_cli, "observe_states", lambda cpu, progress: Measurement(()))
    monkeypatch.setattr(commands_cli, "measure_timeslice", fake_timeslice)
    for argv in (
        ["states"],
        ["states", "--quick"],
        ["states", "--duration", "2", "--windows", "4"],
        ["states", "--quick", "--windows", "4"],
    ):
        assert runner.invoke(cli_module.cli, argv).exit_code == 0, argv
    quick, full = TimesliceConfig.quick(), TimesliceConfig.full()
    assert calls == [full, quick, TimesliceConfig(2.0, 4), TimesliceConfig(quick.duration_s, 4)]
    states = runner.invoke(cli_module.cli, ["states", "--help"], terminal_width=200)
    assert f"[default: {full.duration_s};" in states.output
    assert f"[default: {full.windows};" in states.output
    assert f"over {quick.duration_s:g} s, {quick.windows} windows" in states.output


def test_switch_rate_quick_halves_each_phase_unless_the_duration_is_given(runner, monkeypatch):
    from ostoolkit.cli import measure as measure_cli
    from ostoolkit.measure.switchrate import RateConfig

    seen = []
    monkeypatch.setattr(
        measure_cli,
        "measure_switch_rate",
        lambda config, progress: seen.append(config) or Measurement(()),
    )
    for argv in (
        ["switch-rate"],
        ["switch-rate", "--quick"],
        ["switch-rate", "--quick", "--duration", "3"],
    ):
        assert runner.invoke(cli_module.cli, argv).exit_code == 0, argv
    assert [c.duration_s for c in seen] == [
        RateConfig.full().duration_s,
        RateConfig.quick().duration_s,
        3.0,
    ]


def test_memory_cow_counts_come_from_cow(runner, monkeypatch):
    calls = []

    def fake_cow(size_mb, repeat, progress=None):
        calls.append((size_mb, repeat))
        return Measurement(())

    monkeypatch.setattr(measure_cli, "measure_cow", fake_cow)
    assert runner.invoke(cli_module.cli, ["measure-memory", "--cow"]).exit_code == 0
    assert runner.invoke(cli_module.cli, ["measure-memory", "--cow", "--quick"]).exit_code == 0
    assert calls == [(COW_SIZE_MB, COW_REPEAT), (COW_SIZE_MB, QUICK_COW_REPEAT)]


def _refused(check):
    try:
        check()
    except (click.BadParameter, InvalidRequest):
        return True
    return False


@pytest.mark.parametrize("number", [-1, 0, 1, 2, MAX_CLIENTS, MAX_CLIENTS + 1])
def test_clients_option_refuses_what_the_library_refuses(number):
    option = counts(MAX_CLIENTS)
    by_option = _refused(lambda: option.convert(str(number), None, None))
    assert by_option == _refused(lambda: check_clients([number]))
    only_threads = ConnectionsConfig(clients=(number,), models=("thread",))  # no task budget
    assert by_option == _refused(lambda: check_connections(only_threads))


@pytest.mark.parametrize("number", [-1, 0, 1, 2, MAX_THREADS + 1])
def test_workers_option_refuses_what_the_library_refuses(number):
    by_option = _refused(lambda: counts(MAX_THREADS).convert(str(number), None, None))
    config = MemoryConfig(workers=(number,), models=("thread",))
    assert by_option == _refused(lambda: check_memory(config))


def test_library_count_checks_keep_their_messages():
    with pytest.raises(InvalidRequest, match=rf"--clients {MAX_CLIENTS + 1} is outside 1\.\."):
        check_connections(ConnectionsConfig(clients=(5, MAX_CLIENTS + 1)))
    with pytest.raises(InvalidRequest, match=r"client counts must be within 1\.\."):
        check_clients([0, 5])
    with pytest.raises(InvalidRequest, match=f"--workers {MAX_PROCESSES + 1} is over"):
        check_memory(MemoryConfig(workers=(1, MAX_PROCESSES + 1), models=("process",)))
    with pytest.raises(InvalidRequest, match=r"--workers 0 is outside 1\.\."):
        check_memory(MemoryConfig(workers=(0, 1), models=("process",)))


def test_version_is_the_newest_release_of_the_changelog(runner):
    """`ostoolkit --version` and CHANGELOG.md's newest released heading name one version."""
    done = runner.invoke(cli_module.cli, ["--version"])
    assert done.exit_code == 0
    assert done.output == f"ostoolkit, version {__version__}\n"
    changelog = (Path(__file__).resolve().parents[2] / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert headings[1] == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
