import json

import pytest

from ostoolkit.errors import ReportError
from ostoolkit.files import write_text
from ostoolkit.loader import load_report, report_from_dict
from ostoolkit.report import (
    SCHEMA,
    Measurement,
    Report,
    build_report,
    make_result,
)


def sample_report() -> Report:
    result = make_result("switch.process.same_core", "process switch", "us", [2.0, 2.1, 2.2])
    return build_report(
        "measure-switch",
        ["measure-switch", "--quick"],
        Measurement((result,), ("a finding",), ("a warning",)),
        {"hostname": "h"},
        "2026-11-25T08:00:00Z",
        1.23456,
    )


def test_json_round_trip(tmp_path):
    report = sample_report()
    path = tmp_path / "r.json"
    write_text(str(path), report.to_json(), "--json")  # as the CLI writes --json
    assert load_report(path) == report
    data = json.loads(path.read_text())
    assert list(data)[:7] == [
        "schema",
        "tool",
        "command",
        "argv",
        "started_at",
        "duration_s",
        "host",
    ]
    assert data["schema"] == SCHEMA
    assert data["duration_s"] == 1.235
    assert data["results"][0]["median"] == 2.1


def test_refuses_other_schema_and_garbage(tmp_path):
    """Each error names the file; the full table of malformed reports is test_report_loader."""
    data = sample_report().to_dict()
    data["schema"] = "ostoolkit/0"
    other = tmp_path / "old.json"
    other.write_text(json.dumps(data))
    with pytest.raises(ReportError, match=r"old\.json: schema is \"ostoolkit/0\", expected"):
        load_report(other)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match=r"bad\.json is not JSON"):
        load_report(bad)
    with pytest.raises(ReportError, match=r"cannot read .*missing\.json"):
        load_report(tmp_path / "missing.json")
    broken = sample_report().to_dict()
    del broken["results"][0]["unit"]
    with pytest.raises(ReportError, match=r"^r\.json: results\[0\]\.unit is missing$"):
        report_from_dict(broken, "r.json")


def test_round_trip_keeps_optional_fields_and_types(tmp_path):
    result = make_result("x", "x", "bytes", [1, 2, 3], notes=("n",), extra={"k": [1, {"a": None}]})
    report = build_report("c", [], Measurement((result,), data={"tree": {}}), {}, "t", 0)
    path = tmp_path / "r.json"
    write_text(str(path), report.to_json(), "--json")
    loaded = load_report(path)
    assert loaded == report
    assert loaded.to_json() == report.to_json()
    assert report_from_dict(report.to_dict()) == report  # tuples, not JSON lists


def test_measurements_add():
    a = Measurement((), ("f1",), ("w1",))
    b = Measurement((), ("f2",), ())
    assert (a + b).findings == ("f1", "f2")
    assert (a + b).warnings == ("w1",)


def test_a_population_is_judged_by_its_interference_alone():
    from ostoolkit.measure.interference import Interference
    from ostoolkit.report import make_result

    setups = [300.0] * 8 + [3000.0] * 8  # the later connections, opened under load, slower
    assert make_result("c", "set-up", "us", setups).status == "bimodal"
    quiet = Interference(0.0, 0.0, (0,), 5.0)
    own = make_result("c", "set-up", "us", setups, interference=quiet, population=True)
    assert (own.status, own.samples, own.p10, own.p90) == ("ok", tuple(setups), 300.0, 3000.0)
    busy = Interference(0.5, 0.0, (0,), 5.0)
    disturbed = make_result("c", "set-up", "us", setups, interference=busy, population=True)
    assert disturbed.status == "noisy"
    assert any("other tasks took 50%" in note for note in disturbed.notes)
