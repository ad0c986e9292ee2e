"""CLI behaviour through click's CliRunner, with the measurement replaced by canned data."""

import json

import pytest
from click.testing import CliRunner

from ostoolkit import cli as cli_module
from ostoolkit.errors import OstoolkitError
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

    monkeypatch.setattr(cli_module, "measure_switch", fake)
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
        ["measure-switch", "--quick", "--model", "thread", "--placement", "cross-core",
         "--working-set", "64", "--cpus", "1,0"],
    )  # fmt: skip
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

    monkeypatch.setattr(cli_module, "measure_switch", failing)
    result = runner.invoke(cli_module.cli, ["measure-switch"])
    assert result.exit_code == 1
    assert result.stderr == "Error: cannot pin to CPU 7: Invalid argument\n"


def test_keyboard_interrupt_exits_130(runner, monkeypatch):
    def interrupted(config, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "measure_switch", interrupted)
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
