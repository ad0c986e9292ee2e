"""The report command's pure parts: sections and "the article vs this host"."""

from dataclasses import replace

import pytest

from ostoolkit import suite
from ostoolkit.claims import article_rows
from ostoolkit.connections.builtin import ConnectionsConfig
from ostoolkit.connections.realdb import real_server_steps
from ostoolkit.connections.realload import RealConfig
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
    assert rows["thread switch"]["this host"] == "2.00 µs"
    assert rows["threads switch faster"]["this host"] == "1.25×"
    assert rows["time slice"]["verdict"] == "4.0 ms: milliseconds, as the article says"
    assert rows["pool size"]["verdict"] == "20 server connections served 1000 clients"
    assert rows["processes are heavier"]["this host"] == "1000 KiB vs 100 KiB"
    assert article_rows([]) == []


@pytest.mark.parametrize(
    ("section", "function", "kind"),
    [
        ("spawn", "measure_spawn", SpawnConfig),
        ("memory", "measure_memory", MemoryConfig),
        ("connections", "measure_connections", ConnectionsConfig),
    ],
)
@pytest.mark.parametrize("full", [False, True])
def test_sections_run_their_configs_presets(monkeypatch, section, function, kind, full):
    seen = []

    def fake(config):
        seen.append(config)
        return Measurement(())

    monkeypatch.setattr(suite, function, fake)
    monkeypatch.setattr(suite, "installed", lambda: ())  # no real servers here
    SECTIONS[section].run(full)
    assert seen == [kind.full() if full else kind.quick()]


@pytest.mark.parametrize("full", [False, True])
def test_full_report_runs_the_installed_real_servers_too(monkeypatch, full):
    real = []
    monkeypatch.setattr(suite, "measure_connections", lambda config: Measurement(()))
    monkeypatch.setattr(suite, "installed", lambda: ("postgres", "pgbouncer"))
    monkeypatch.setattr(
        suite, "measure_real", lambda config: real.append(config) or Measurement(())
    )
    SECTIONS["connections"].run(full)
    assert real == ([RealConfig(("postgres", "pgbouncer"))] if full else [])


@pytest.mark.parametrize("full", [False, True])
def test_switch_ring_and_python_sections(monkeypatch, full):
    seen = []
    monkeypatch.setattr(suite, "measure_switch", lambda config: seen.append(config) or M)
    monkeypatch.setattr(suite, "measure_rings", lambda config: seen.append(config) or M)
    monkeypatch.setattr(suite, "measure_python_layers", lambda config: seen.append(config) or M)
    for name in ("switch", "ring", "python"):
        SECTIONS[name].run(full)
    switch, ring, python = seen
    assert python == (PyLayersConfig.full() if full else PyLayersConfig.quick())
    if full:  # every placement the topology has; the full lat_ctx sweep
        assert switch == replace(SwitchConfig.full(), placements=(*PLACEMENTS, "topology"))
        assert ring == RingConfig.full()
    else:
        assert switch == SwitchConfig.quick()
        assert ring == replace(RingConfig.quick(), tasks=(2, 32))


def test_a_figure_two_sections_measure_is_reported_once(monkeypatch):
    switch = make_result("switch.thread.same_core", "switch's", "us", [0.8])
    python = make_result("switch.thread.same_core", "python's", "us", [0.9])
    gil = make_result("switch.python.gil", "gil", "us", [2.6])
    monkeypatch.setitem(
        SECTIONS, "switch", suite.Section(lambda full: None, lambda full: Measurement((switch,)))
    )
    monkeypatch.setitem(
        SECTIONS,
        "python",
        suite.Section(lambda full: None, lambda full: Measurement((python, gil))),
    )
    monkeypatch.setattr(suite, "check_open_files", lambda *args: None)
    merged = suite.run_suite(("switch", "python"))
    assert [(r.id, r.label) for r in merged.results] == [
        ("switch.thread.same_core", "switch's"),
        ("switch.python.gil", "gil"),
    ]
    alone = suite.run_suite(("python",))
    assert [r.label for r in alone.results] == ["python's", "gil"]


def test_presets_and_step_counts():
    assert SwitchConfig.full() == SwitchConfig()
    assert SwitchConfig.quick().repeat < SwitchConfig.full().repeat
    assert SwitchConfig(repeat=4).steps(2) == 2 * 2 * 5
    assert SpawnConfig.quick().steps() == 5 * 10 + 3 * 3
    assert MemoryConfig.quick().steps() == 4 * 3
    assert ConnectionsConfig.full().steps() == 3 * 3
    assert TimesliceConfig.quick() == TimesliceConfig()
    assert TimesliceConfig.full().steps() == 30
    assert real_server_steps((10, 100)) == 3


@pytest.mark.parametrize("full", [False, True])
def test_states_section_runs_the_timeslice_preset(monkeypatch, full):
    seen = []

    def fake(duration_s, windows, cpu=None, progress=None):
        seen.append(TimesliceConfig(duration_s, windows, cpu))
        return Measurement(())

    monkeypatch.setattr(suite, "observe_states", lambda: Measurement(()))
    monkeypatch.setattr(suite, "measure_timeslice", fake)
    SECTIONS["states"].run(full)
    assert seen == [TimesliceConfig.full() if full else TimesliceConfig.quick()]
