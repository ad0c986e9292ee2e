"""The report command's pure parts: sections and "the article vs this host"."""

from dataclasses import replace

import pytest

from ostoolkit import suite
from ostoolkit.claims import article_rows
from ostoolkit.connections.builtin.measure import ConnectionsConfig
from ostoolkit.connections.dsn.measure import real_server_steps
from ostoolkit.connections.real.run import RealConfig
from ostoolkit.errors import InvalidRequest
from ostoolkit.measure.memory import MemoryConfig
from ostoolkit.measure.placement import PLACEMENTS
from ostoolkit.measure.pylayers import PyLayersConfig
from ostoolkit.measure.ring import RingConfig
from ostoolkit.measure.sched import TimesliceConfig
from ostoolkit.measure.spawn import SpawnConfig
from ostoolkit.measure.switch import SwitchConfig
from ostoolkit.report import Measurement, make_result
from ostoolkit.suite import SECTIONS, parse_sections

M = Measurement(())


def test_parse_sections_keeps_suite_order():
    assert parse_sections(None) == tuple(SECTIONS)
    assert parse_sections("states, switch") == ("switch", "states")
    with pytest.raises(InvalidRequest, match="unknown section 'disk'"):
        parse_sections("switch,disk")
    with pytest.raises(InvalidRequest, match="an empty section name"):
        parse_sections("states,")
    with pytest.raises(InvalidRequest, match="names a section twice"):
        parse_sections("switch,switch")


def test_article_rows():
    results = [
        make_result("switch.process.same_core", "p", "us", [2.5]),
        make_result("switch.thread.same_core", "t", "us", [2.0]),
        make_result("sched.timeslice", "s", "ms", [4.0]),
        make_result("conn.pooled.10.procs", "p", "count", [22], extra={"clients": 10}),
        make_result("conn.pooled.1000.procs", "p", "count", [22], extra={"clients": 1000}),
        make_result("memory.process.uss_per_worker", "m", "bytes", [1024.0 * 1000]),
        make_result("memory.thread.uss_per_worker", "m", "bytes", [1024.0 * 100]),
    ]
    rows = {row["claim"]: row for row in article_rows(results)}
    assert rows["context switch"]["verdict"] == "2.0× faster than the article's ~5 µs"
    assert rows["thread switch"]["this host"] == "2.00 µs (ostoolkit)"
    assert rows["threads switch faster"]["this host"] == "1.25× (ostoolkit)"
    assert rows["time slice"]["verdict"] == "4.0 ms: milliseconds, as the article says"
    assert rows["pool size"]["verdict"] == "20 server connections served 1000 clients"
    assert rows["processes are heavier"]["this host"] == "1000 KiB vs 100 KiB"
    assert article_rows([]) == []
    # where the C harness ran beside ours, the article is judged on its figures, and says so
    with_c = [
        *results,
        make_result("ref.lat_pipe.process.same_core", "c", "us", [1.0]),
        make_result("ref.lat_pipe.thread.same_core", "c", "us", [0.8]),
    ]
    rows = {row["claim"]: row for row in article_rows(with_c)}
    assert rows["context switch"]["this host"] == "1.00 µs (C harness)"
    assert rows["context switch"]["verdict"] == "5.0× faster than the article's ~5 µs"
    assert rows["threads switch faster"]["this host"] == "1.25× (C harness)"


QUICK, DEFAULT, FULL = (suite.Preset.named(name) for name in ("quick", "default", "full"))


@pytest.mark.parametrize(
    ("section", "function", "kind"),
    [
        ("spawn", "measure_spawn", SpawnConfig),
        ("memory", "measure_memory", MemoryConfig),
        ("connections", "measure_connections", ConnectionsConfig),
    ],
)
@pytest.mark.parametrize("preset", [DEFAULT, FULL])
def test_sections_run_their_configs_presets(monkeypatch, section, function, kind, preset):
    seen = []

    def fake(config):
        seen.append(config)
        return Measurement(())

    monkeypatch.setattr(suite, function, fake)
    monkeypatch.setattr(suite, "installed", lambda: ())  # no real servers here
    SECTIONS[section].run(preset, True)
    assert seen == [kind.full() if preset.full else kind.quick()]


def test_the_quick_preset_trims_each_round(monkeypatch):
    """Three rounds of --quick fit 30 s: each takes fewer samples than a quick command."""
    seen = []
    monkeypatch.setattr(suite, "measure_spawn", lambda config: seen.append(config) or M)
    monkeypatch.setattr(suite, "measure_switch", lambda config: seen.append(config) or M)
    SECTIONS["spawn"].run(QUICK, True)
    SECTIONS["switch"].run(QUICK, True)
    spawn, switch = seen
    assert spawn.repeat < SpawnConfig.quick().repeat
    assert spawn.mp_repeat * QUICK.runs >= 5  # at least 5 multiprocessing starts a report
    assert switch.repeat < SwitchConfig.quick().repeat
    assert (QUICK.runs, DEFAULT.runs, FULL.runs) == (3, 5, 3)
    assert suite.Preset.named("quick", 7).runs == 7
    with pytest.raises(InvalidRequest, match="unknown preset"):
        suite.Preset.named("slow")


@pytest.mark.parametrize("preset", [DEFAULT, FULL])
def test_full_report_runs_the_installed_real_servers_once(monkeypatch, preset):
    real = []
    monkeypatch.setattr(suite, "measure_connections", lambda config: Measurement(()))
    monkeypatch.setattr(suite, "installed", lambda: ("postgres", "pgbouncer"))
    monkeypatch.setattr(
        suite, "measure_real", lambda config: real.append(config) or Measurement(())
    )
    SECTIONS["connections"].run(preset, True)
    SECTIONS["connections"].run(preset, False)  # a later round: the built-in models only
    assert real == ([RealConfig(("postgres", "pgbouncer"))] if preset.full else [])


@pytest.mark.parametrize("preset", [DEFAULT, FULL])
def test_switch_ring_and_python_sections(monkeypatch, preset):
    seen = []
    monkeypatch.setattr(suite, "measure_switch", lambda config: seen.append(config) or M)
    monkeypatch.setattr(suite, "measure_rings", lambda config: seen.append(config) or M)
    monkeypatch.setattr(suite, "measure_python_layers", lambda config: seen.append(config) or M)
    for name in ("switch", "ring", "python"):
        SECTIONS[name].run(preset, True)
    switch, ring, python = seen
    assert python == (PyLayersConfig.full() if preset.full else PyLayersConfig.quick())
    if preset.full:  # every placement the topology has; the full lat_ctx sweep
        assert switch == replace(
            SwitchConfig.full(),
            placements=(*PLACEMENTS, "topology"),
            c_harness=True,
            trace_timing=True,
        )
        assert ring == RingConfig.full()
    else:  # the C harness beside ours, in the default preset too
        assert switch == replace(SwitchConfig.quick(), c_harness=True)
        assert ring == replace(RingConfig.quick(), tasks=(2, 32))


def test_the_quick_preset_runs_no_c_harness(monkeypatch):
    seen = []
    monkeypatch.setattr(suite, "measure_switch", lambda config: seen.append(config) or M)
    SECTIONS["switch"].run(QUICK, True)
    assert seen[0].c_harness is False


def test_a_figure_two_sections_measure_is_reported_once(monkeypatch):
    switch = make_result("switch.thread.same_core", "switch's", "us", [0.8])
    python = make_result("switch.thread.same_core", "python's", "us", [0.9])
    gil = make_result("switch.python.gil", "gil", "us", [2.6])
    monkeypatch.setitem(
        SECTIONS,
        "switch",
        suite.Section(lambda preset: None, lambda preset, first: Measurement((switch,))),
    )
    monkeypatch.setitem(
        SECTIONS,
        "python",
        suite.Section(lambda preset: None, lambda preset, first: Measurement((python, gil))),
    )
    monkeypatch.setattr(suite, "check_open_files", lambda *args: None)
    merged = suite.run_suite(("switch", "python"), suite.Preset("quick", 1))
    assert [(r.id, r.label) for r in merged.results] == [
        ("switch.thread.same_core", "switch's"),
        ("switch.python.gil", "gil"),
    ]
    alone = suite.run_suite(("python",), suite.Preset("quick", 1))
    assert [r.label for r in alone.results] == ["python's", "gil"]


def test_rounds_interleave_the_sections_and_each_figure_keeps_its_runs(monkeypatch):
    order = []

    def section(name, values):
        def run(preset, first):
            order.append((name, first))
            value = values[len([o for o in order if o[0] == name]) - 1]
            result = make_result(f"{name}.x", name, "us", [value, value + 1], runs=[1, 1])
            exact = make_result(f"{name}.count", name, "count", [3], exact=True)
            return Measurement((result, exact), (f"{name} said {value}",), ("careful",))

        return suite.Section(lambda preset: None, run)

    monkeypatch.setitem(SECTIONS, "spawn", section("spawn", [10.0, 20.0, 30.0]))
    monkeypatch.setitem(SECTIONS, "memory", section("memory", [1.0, 2.0, 3.0]))
    monkeypatch.setattr(suite, "check_open_files", lambda *args: None)
    merged = suite.run_suite(("spawn", "memory"), suite.Preset("quick", 3))
    assert order == [
        ("spawn", True),
        ("memory", True),
        ("spawn", False),
        ("memory", False),
        ("spawn", False),
        ("memory", False),
    ]
    by_id = {r.id: r for r in merged.results}
    spawn = by_id["spawn.x"]
    assert spawn.samples == (10.0, 11.0, 20.0, 21.0, 30.0, 31.0)
    assert spawn.runs == (1, 1, 1, 1, 1, 1)
    assert spawn.median == 20.5
    assert by_id["spawn.count"].exact
    assert by_id["spawn.count"].runs == (1, 1, 1)
    assert merged.findings == ("spawn said 10.0", "memory said 1.0")  # the first round's
    assert merged.warnings.count("careful") == 2  # once per section, not per round
    assert merged.data["runs"] == 3


def test_presets_and_step_counts():
    assert SwitchConfig.full() == SwitchConfig()
    assert SwitchConfig.quick().repeat < SwitchConfig.full().repeat
    assert SwitchConfig(repeat=4).steps(2) == 2 * 2 * 5
    assert SpawnConfig.quick().steps() == 5 * 10 + 3 * 5
    assert MemoryConfig.quick().steps() == 4 * 4  # the empty group, 1, 10, and 10 again
    assert ConnectionsConfig.full().steps() == 3 * 3
    assert TimesliceConfig.quick() == TimesliceConfig()
    assert TimesliceConfig.full().steps() == 30
    assert real_server_steps((10, 100)) == 3


@pytest.mark.parametrize("preset", [DEFAULT, FULL])
def test_states_section_runs_the_timeslice_preset(monkeypatch, preset):
    seen = []

    def fake(duration_s, windows, cpu=None, progress=None):
        seen.append(TimesliceConfig(duration_s, windows, cpu))
        return Measurement(())

    monkeypatch.setattr(suite, "observe_states", lambda: Measurement(()))
    monkeypatch.setattr(suite, "measure_timeslice", fake)
    SECTIONS["states"].run(preset, True)
    assert seen == [TimesliceConfig.full() if preset.full else TimesliceConfig.quick()]
