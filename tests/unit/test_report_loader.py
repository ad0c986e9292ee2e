"""The one report loader: every malformed report, odd file and example, against the schema.

``loader.load_report`` checks fields by hand; ``ostoolkit/schema/ostoolkit-1.schema.json`` is
the published contract. These tests hold the two together with the jsonschema library: every
example report validates and loads, and every malformed report built here (one field of a
valid report changed at a time) is refused by both, the loader in one line that names the
file and the field's JSON path.
"""

import json
import math
import os
import re
from pathlib import Path

import jsonschema
import pytest

from ostoolkit import __version__, loader
from ostoolkit.errors import ReportError
from ostoolkit.files import MAX_REPORT_BYTES
from ostoolkit.loader import SCHEMA_FILE, load_report, report_from_dict
from ostoolkit.report import METHODS, STATUSES, UNITS, Report

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.json"))
VALID = ROOT / "examples/sample-measure-switch.json"
VALIDATOR = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def valid() -> dict:
    """A fresh copy of a valid report with every optional key present."""
    data = json.loads(VALID.read_text(encoding="utf-8"))
    data.setdefault("data", {})
    return data


class NotJson(ValueError):
    """What the schema side calls a text the loader refuses before the schema applies."""


def parse_strictly(text: str):
    """Parse as the loader's rules beyond the schema say: no NaN, Infinity or 1e400, no
    unpaired surrogate. Written independently of loader.py, so it checks the loader too."""

    def constant(name):
        raise NotJson(f"{name} is not JSON")

    def decimal(text):
        value = float(text)
        if math.isinf(value):
            raise NotJson(f"{text} overflows a double")
        return value

    data = json.loads(text, parse_constant=constant, parse_float=decimal)
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            value.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate
    return data


def schema_refuses(text: str) -> bool:
    """Whether the published schema (after a strict JSON parse) refuses this text."""
    try:
        data = parse_strictly(text)
    except ValueError:
        return True
    return not VALIDATOR.is_valid(data)


def write(tmp_path: Path, text: str, name: str = "a.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


RESULT_DEFAULTS = {
    "status": "ok",
    "notes": [],
    "extra": {},
    "claim": None,
    "verdict": None,
    "runs": [],
    "exact": False,
    "resolution": None,
}


def saved_form(data: dict) -> dict:
    """What to_json writes for a valid report: every optional key, with its default if absent."""
    results = [{**RESULT_DEFAULTS, **result} for result in data["results"]]
    return {"findings": [], "warnings": [], "data": {}, **data, "results": results}


def assert_one_line_naming(err: pytest.ExceptionInfo, path: Path, *parts: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    for part in parts:
        assert part in message, message


# -- one field at a time --------------------------------------------------------------------


def set_(path, value):
    """A mutation: set the value at a JSON path (keys and indices) of the report."""

    def mutate(data):
        *parents, last = path
        for key in parents:
            data = data[key]
        data[last] = value

    return mutate


def drop(path):
    """A mutation: delete the key at a JSON path of the report."""

    def mutate(data):
        *parents, last = path
        for key in parents:
            data = data[key]
        del data[last]

    return mutate


R3 = ("results", 3)
NAN, INF = float("nan"), float("inf")

# (JSON path shown in the message, mutation, what the message says about it)
MALFORMED = [
    # top level
    ("schema", set_(["schema"], "ostoolkit/0"), 'expected "ostoolkit/1"'),
    ("schema", set_(["schema"], ["ostoolkit/1"]), 'expected "ostoolkit/1"'),
    ("schema", drop(["schema"]), "schema is missing"),
    ("tool", drop(["tool"]), "is missing"),
    ("tool", set_(["tool"], "ostoolkit 0.1.0"), "is a string, expected an object"),
    ("tool.name", set_(["tool", "name"], 3), "is an integer, expected a string"),
    ("tool.version", set_(["tool", "version"], None), "is null, expected a string"),
    ("tool.version", drop(["tool", "version"]), "is missing"),
    ("tool.commit", set_(["tool", "commit"], ["abc"]), "is a list, expected a string"),
    ("tool.methods", set_(["tool", "methods"], [1]), "is a list, expected an object"),
    ("tool.methods", set_(["tool", "methods"], "1"), "is a string, expected an object"),
    *[
        ("tool.methods.switch", set_(["tool", "methods"], {"switch": bad}), problem)
        for bad, problem in [
            (0, "is 0, expected a method version of 1 or more"),
            (-2, "is -2, expected a method version of 1 or more"),
            (1.5, "is 1.5, expected an integer"),
            ("2", "is a string, expected an integer"),
            (True, "is a boolean, expected an integer"),
            (None, "is null, expected an integer"),
        ]
    ],
    ("command", set_(["command"], 1), "is an integer, expected a string"),
    ("command", drop(["command"]), "is missing"),
    ("argv", set_(["argv"], "measure-switch --quick"), "is a string, expected a list of strings"),
    ("argv[1]", set_(["argv", 1], None), "is null, expected a string"),
    ("started_at", set_(["started_at"], 1764059400), "is an integer, expected a string"),
    ("started_at", drop(["started_at"]), "is missing"),
    ("duration_s", set_(["duration_s"], "1.4"), "is a string, expected a number"),
    ("duration_s", set_(["duration_s"], True), "is a boolean, expected a number"),
    ("duration_s", set_(["duration_s"], [1.4]), "is a list, expected a number"),
    ("duration_s", set_(["duration_s"], NAN), "is NaN, expected a finite number"),
    ("duration_s", drop(["duration_s"]), "is missing"),
    ("host", set_(["host"], ["vm"]), "is a list, expected an object"),
    ("host", set_(["host"], None), "is null, expected an object"),
    ("host", drop(["host"]), "is missing"),
    ("results", set_(["results"], {"switch.process.same_core": 2.0}), "expected a list of results"),
    ("results", set_(["results"], None), "is null, expected a list of results"),
    ("results", drop(["results"]), "is missing"),
    ("results[3]", set_([*R3], [valid()["results"][3]]), "is a list, expected an object"),
    ("results[3]", set_([*R3], "switch.process.same_core"), "is a string, expected an object"),
    ("findings", set_(["findings"], "one finding"), "is a string, expected a list of strings"),
    ("findings[0]", set_(["findings"], [None]), "is null, expected a string"),
    ("warnings[0]", set_(["warnings"], [["nested"]]), "is a list, expected a string"),
    ("data", set_(["data"], []), "is a list, expected an object"),
    ("data", set_(["data"], "none"), "is a string, expected an object"),
    ("bogus", set_(["bogus"], 1), "is not a field of an ostoolkit/1 report"),
    # one result's fields
    ("results[3].id", set_([*R3, "id"], ["switch"]), "is a list, expected a string"),
    ("results[3].id", set_([*R3, "id"], 7), "is an integer, expected a string"),
    ("results[3].id", set_([*R3, "id"], None), "is null, expected a string"),
    ("results[3].id", set_([*R3, "id"], ""), "is empty"),
    ("results[3].label", set_([*R3, "label"], {"text": "x"}), "is an object, expected a string"),
    ("results[3].unit", set_([*R3, "unit"], None), "is null, expected one of us, ms"),
    ("results[3].unit", set_([*R3, "unit"], "furlongs"), 'is "furlongs", expected one of'),
    ("results[3].unit", set_([*R3, "unit"], "US"), 'is "US", expected one of'),
    ("results[3].unit", set_([*R3, "unit"], ["us"]), "is a list, expected one of"),
    ("results[3].median", set_([*R3, "median"], "2.5"), "is a string, expected a number"),
    ("results[3].median", set_([*R3, "median"], True), "is a boolean, expected a number"),
    ("results[3].median", set_([*R3, "median"], None), "is null, expected a number"),
    ("results[3].median", set_([*R3, "median"], [2.5]), "is a list, expected a number"),
    ("results[3].median", set_([*R3, "median"], {"v": 2.5}), "is an object, expected a number"),
    ("results[3].median", set_([*R3, "median"], NAN), "is NaN, expected a finite number"),
    ("results[3].median", set_([*R3, "median"], INF), "is Infinity, expected a finite number"),
    ("results[3].median", set_([*R3, "median"], -INF), "is -Infinity, expected a finite"),
    ("results[3].median", set_([*R3, "median"], 10**400), "beyond a double, expected a finite"),
    ("results[3].p10", set_([*R3, "p10"], "fast"), "is a string, expected a number"),
    ("results[3].p90", set_([*R3, "p90"], False), "is a boolean, expected a number"),
    ("results[3].samples", set_([*R3, "samples"], "2.5 2.6"), "expected a list of numbers"),
    ("results[3].samples", set_([*R3, "samples"], 2.5), "expected a list of numbers"),
    ("results[3].samples[1]", set_([*R3, "samples", 1], "2.5"), "is a string, expected a number"),
    ("results[3].samples[0]", set_([*R3, "samples", 0], True), "is a boolean, expected a number"),
    ("results[3].samples[2]", set_([*R3, "samples", 2], [2.5]), "is a list, expected a number"),
    ("results[3].samples[2]", set_([*R3, "samples", 2], NAN), "is NaN, expected a finite"),
    ("results[3].samples[2]", set_([*R3, "samples", 2], None), "is null, expected a number"),
    ("results[3].n", set_([*R3, "n"], "30"), "is a string, expected an integer"),
    ("results[3].n", set_([*R3, "n"], 2.5), "is 2.5, expected an integer"),
    ("results[3].n", set_([*R3, "n"], -1), "is -1, expected a count of 0 or more"),
    ("results[3].n", set_([*R3, "n"], True), "is a boolean, expected an integer"),
    ("results[3].n", set_([*R3, "n"], None), "is null, expected an integer"),
    ("results[3].status", set_([*R3, "status"], "great"), 'is "great", expected one of ok'),
    ("results[3].status", set_([*R3, "status"], None), "is null, expected one of ok"),
    ("results[3].status", set_([*R3, "status"], 1), "is an integer, expected one of ok"),
    ("results[3].notes", set_([*R3, "notes"], "noisy"), "expected a list of strings"),
    ("results[3].notes[0]", set_([*R3, "notes"], [1]), "is an integer, expected a string"),
    ("results[3].extra", set_([*R3, "extra"], [1, 2]), "is a list, expected an object"),
    ("results[3].extra", set_([*R3, "extra"], None), "is null, expected an object"),
    ("results[3].claim", set_([*R3, "claim"], 5), "is an integer, expected a string or null"),
    ("results[3].claim", set_([*R3, "claim"], ["~5 µs"]), "is a list, expected a string or"),
    ("results[3].verdict", set_([*R3, "verdict"], {}), "is an object, expected a string or"),
    ("results[3].medain", set_([*R3, "medain"], 2.5), "is not a field of a result"),
    ("results[3].runs", set_([*R3, "runs"], 3), "is an integer, expected a list of sample"),
    ("results[3].runs[1]", set_([*R3, "runs"], [3, 0]), "is 0, expected a run of at least"),
    ("results[3].runs[0]", set_([*R3, "runs"], [2.5]), "is 2.5, expected an integer"),
    ("results[3].runs[0]", set_([*R3, "runs"], [True]), "is a boolean, expected an integer"),
    ("results[3].exact", set_([*R3, "exact"], 1), "is an integer, expected true or false"),
    ("results[3].exact", set_([*R3, "exact"], None), "is null, expected true or false"),
    ("results[3].resolution", set_([*R3, "resolution"], -1), "is -1, expected 0 or more"),
    ("results[3].resolution", set_([*R3, "resolution"], "4 KiB"), "is a string, expected a"),
    *[
        (f"results[3].{key}", drop([*R3, key]), "is missing")
        for key in ("id", "label", "unit", "median", "p10", "p90", "samples", "n")
    ],
    # NaN and Infinity where the fields are free-form: not JSON, so refused there too
    ("results[3].extra.gross_us", set_([*R3, "extra", "gross_us"], NAN), "is NaN: JSON has no"),
    ("host.loadavg[0]", set_(["host", "loadavg", 0], INF), "is Infinity: JSON has no NaN"),
    ('data["a b"][1]', set_(["data", "a b"], [1, -INF]), "is -Infinity: JSON has no NaN"),
    # an unpaired surrogate cannot be printed or saved as UTF-8
    ("results[3].label", set_([*R3, "label"], "switch \ud800"), "unpaired UTF-16 surrogate"),
    ("host.kernel", set_(["host", "kernel"], "6.1\udfff"), "unpaired UTF-16 surrogate"),
]


@pytest.mark.parametrize(
    ("where", "mutate", "problem"), MALFORMED, ids=[f"{c[0]}:{c[2][:30]}" for c in MALFORMED]
)
def test_malformed_field_refused_by_loader_and_schema(tmp_path, where, mutate, problem):
    data = valid()
    mutate(data)
    text = json.dumps(data, indent=2)  # NaN, Infinity written as Python does; \\ud800 escaped
    path = write(tmp_path, text)
    with pytest.raises(ReportError) as err:
        load_report(path)
    assert_one_line_naming(err, path, problem)
    if not where.startswith("schema"):
        assert f"{path}: {where} " in str(err.value)
    assert schema_refuses(text), "the schema accepts what the loader refuses"


@pytest.mark.parametrize(
    ("field", "replacement", "where"),
    [
        ("duration_s", "1e400", "duration_s"),
        ("median", "2e999", "results[0].median"),
        ("gross_us", "-4e308", "results[0].extra.gross_us"),
        ("baseline_us", "1" + "0" * 400 + ".5", "results[0].extra.baseline_us"),
        ("hostname", '"\\ud800": 1, "hostname"', 'host["\\ud800"]'),
    ],
)
def test_text_the_parser_turns_into_what_json_cannot_hold(tmp_path, field, replacement, where):
    """1e400 parses as inf in Python; a surrogate escape yields an unprintable string.

    The first occurrence of the field's value in the sample report is replaced as text.
    """
    text = VALID.read_text(encoding="utf-8")
    if field == "hostname":
        pattern, new = '"hostname"', replacement
    else:
        pattern, new = rf'"{field}": -?[0-9][0-9.eE+-]*', f'"{field}": {replacement}'
    assert re.search(pattern, text)
    text = re.sub(pattern, lambda _: new, text, count=1)
    path = write(tmp_path, text)
    with pytest.raises(ReportError) as err:
        load_report(path)
    assert_one_line_naming(err, path, f"{path}: {where} ")
    assert schema_refuses(text)


ACCEPTED = [
    drop(["findings"]),
    drop(["warnings"]),
    drop(["data"]),
    set_(["host"], {}),
    set_(["results"], []),
    set_(["tool", "commit"], "abc123"),
    set_(["tool", "methods"], {"switch": 2, "spawn": 1}),
    set_(["tool", "methods"], {"a section of a later release": 7}),
    set_(["tool", "methods"], {}),
    set_(["duration_s"], 7),
    set_([*R3, "median"], 3),
    set_([*R3, "samples"], []),
    set_([*R3, "n"], 30.0),
    set_([*R3, "claim"], None),
    set_([*R3, "verdict"], None),
    set_([*R3, "extra"], {"deep": [[{"x": [1, None, True, "s"]}]], "big": 10**30}),
    set_(["data", "pair"], "😀 \U0001f600"),
    set_([*R3, "runs"], [3] * 5),
    set_([*R3, "runs"], []),
    set_([*R3, "exact"], True),
    set_([*R3, "resolution"], 4096),
    set_([*R3, "resolution"], None),
    *[drop([*R3, key]) for key in ("status", "notes", "extra", "claim", "verdict")],
    *[set_([*R3, "unit"], unit) for unit in UNITS],
    *[set_([*R3, "status"], status) for status in STATUSES],
]


@pytest.mark.parametrize("mutate", ACCEPTED)
def test_valid_variants_accepted_by_loader_and_schema(tmp_path, mutate):
    data = valid()
    mutate(data)
    text = json.dumps(data)
    report = load_report(write(tmp_path, text))
    assert not schema_refuses(text)
    assert json.loads(report.to_json()) == saved_form(data)


def test_paired_surrogate_escapes_are_one_character(tmp_path):
    text = VALID.read_text(encoding="utf-8").replace('"hostname": "', '"hostname": "\\ud83d\\ude00')
    assert load_report(write(tmp_path, text)).host["hostname"].startswith("😀")


# -- files that are not reports -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (b'{"schema": "ostoolkit/1", "command": "caf\xe9"}', "is not UTF-8: byte 0xe9 at offset"),
        (b"\xff\xfe{\x00}\x00", "is not UTF-8: byte 0xff at offset 0"),
        (b'{"schema": "ostoolkit/1", "cmd": "\xed\xa0\x80"}', "is not UTF-8"),  # CESU surrogate
        (b"{not json", "is not JSON: Expecting property name"),
        (b'{"schema": "ostoolkit/1"} trailing', "is not JSON: Extra data at line 1 column 27"),
        (b"[1, 2]", "is not an ostoolkit report: the top level is a list, expected an object"),
        (b'"ostoolkit/1"', "the top level is a string"),
        (b"null", "the top level is null"),
        (b"[" * 200_000 + b"]" * 200_000, "is nested too deeply to read"),
        (b'{"schema": "ostoolkit/1", "data": ' + b'{"a": ' * 200_000, "is nested too deeply"),
        (b'{"duration_s": ' + b"7" * 5000 + b"}", "holds a number too long to read"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else None,
)
def test_bad_contents_are_one_line(tmp_path, content, problem):
    path = tmp_path / "bad report.json"
    path.write_bytes(content)
    with pytest.raises(ReportError) as err:
        load_report(path)
    assert_one_line_naming(err, path, problem)


def test_a_leading_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.read_bytes())
    assert load_report(path) == load_report(VALID)


def test_over_the_cap_is_refused_unread(tmp_path):
    sparse = tmp_path / "huge.json"
    sparse.touch()
    os.truncate(sparse, MAX_REPORT_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ReportError) as err:
        load_report(sparse)
    assert_one_line_naming(err, sparse, f"read up to {MAX_REPORT_BYTES}")
    small_cap = VALID.stat().st_size - 1
    with pytest.raises(ReportError) as err:
        load_report(VALID, limit=small_cap)
    assert_one_line_naming(err, VALID, f"read up to {small_cap}")
    assert load_report(VALID, limit=small_cap + 1).results


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(ReportError) as err:
        load_report(fifo)
    assert_one_line_naming(err, fifo, "is a FIFO, not a regular file")


@pytest.mark.timeout(10)
def test_devices_directories_and_links_are_refused(tmp_path):
    zero = Path("/dev/zero")
    with pytest.raises(ReportError) as err:
        load_report(zero)
    assert_one_line_naming(err, zero, "is a character device, not a regular file")
    link = tmp_path / "zero.json"
    link.symlink_to(zero)
    with pytest.raises(ReportError) as err:
        load_report(link)
    assert_one_line_naming(err, link, "is a character device")
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(ReportError) as err:
        load_report(folder)
    assert_one_line_naming(err, folder, "is a directory, not a regular file")
    broken = tmp_path / "broken.json"
    broken.symlink_to(tmp_path / "gone.json")
    with pytest.raises(ReportError) as err:
        load_report(broken)
    assert_one_line_naming(err, broken, "No such file or directory")
    with pytest.raises(ReportError) as err:
        load_report(tmp_path / "missing.json")
    assert_one_line_naming(err, tmp_path / "missing.json", "cannot read")


def test_a_file_name_with_a_newline_stays_on_one_line(tmp_path):
    path = write(tmp_path, "[]", name="two\nlines.json")
    with pytest.raises(ReportError) as err:
        load_report(path)
    assert "\n" not in str(err.value)
    assert "two\\nlines.json" in str(err.value)


def test_from_dict_names_its_source_and_checks_python_values():
    data = valid()
    data["results"][0]["median"] = float("nan")
    with pytest.raises(ReportError, match=r"^r\.json: results\[0\]\.median is NaN"):
        report_from_dict(data, "r.json")
    with pytest.raises(ReportError, match=r"^report is not an ostoolkit report"):
        report_from_dict([])


def test_method_versions_are_loaded_and_unknown_without_them(tmp_path):
    """tool.methods is optional: a report before 0.2.0 has none (unknown), a later one its own."""
    old = load_report(write(tmp_path, json.dumps(valid()), "old.json"))
    assert "methods" not in old.tool
    assert old.methods is None
    data = valid()
    data["tool"] = {"name": "ostoolkit", "version": "0.2.0", "methods": {"switch": 3.0}}
    new = load_report(write(tmp_path, json.dumps(data), "new.json"))
    assert new.methods == {"switch": 3}
    assert json.loads(new.to_json())["tool"]["methods"] == {"switch": 3}
    data["tool"]["methods"] = {"switch": 1, "spawn": 0}
    path = write(tmp_path, json.dumps(data), "bad.json")
    with pytest.raises(ReportError) as err:
        load_report(path)
    assert str(err.value) == (
        f"{path}: tool.methods.spawn is 0, expected a method version of 1 or more"
    )


def test_a_written_report_carries_every_method_version_and_loads(tmp_path):
    report = Report("measure-switch", (), "t", 1.0, {}, ())
    assert report.tool == {"name": "ostoolkit", "version": __version__, "methods": METHODS}
    text = report.to_json()
    assert not schema_refuses(text)
    assert load_report(write(tmp_path, text)).methods == METHODS


# -- the examples and the schema file -------------------------------------------------------


def test_schema_file_is_valid_json_schema_and_shipped_with_the_package():
    jsonschema.Draft202012Validator.check_schema(VALIDATOR.schema)
    assert SCHEMA_FILE.parent.parent == ROOT / "ostoolkit"
    assert '"schema/*.json"' in (ROOT / "pyproject.toml").read_text()
    assert VALIDATOR.schema["properties"]["results"]["items"] == {"$ref": "#/$defs/result"}
    result = VALIDATOR.schema["$defs"]["result"]["properties"]
    assert result["unit"]["enum"] == list(UNITS)
    assert result["status"]["enum"] == list(STATUSES)


def test_examples_exist():
    names = {path.name for path in EXAMPLES}
    assert {"sample-measure-switch.json", "a-vm-2cpus.json", "b-vm-cpuset1.json"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_loads_and_round_trips(path):
    text = path.read_text(encoding="utf-8")
    original = parse_strictly(text)
    VALIDATOR.validate(original)
    report = load_report(path)
    again = report.to_json()
    VALIDATOR.validate(parse_strictly(again))
    assert json.loads(again) == saved_form(original)
    assert report_from_dict(json.loads(again), "again") == report


def test_a_result_of_more_samples_than_the_cap_is_refused_naming_the_field(tmp_path, monkeypatch):
    """loader.MAX_SAMPLES is millions; a cap of 40 stands in for it, so the test is quick."""
    assert loader.MAX_SAMPLES >= 1_000_000  # above what any command writes (see its comment)
    monkeypatch.setattr(loader, "MAX_SAMPLES", 40)

    def with_samples(count: int, runs: list[int]) -> Path:
        data = valid()
        data["results"][3].update(samples=[2.5] * count, n=count, runs=runs)
        return write(tmp_path, json.dumps(data), name=f"r{count}-{len(runs)}.json")

    at_cap = load_report(with_samples(40, [20, 20])).results[3]
    assert (len(at_cap.samples), at_cap.runs) == (40, (20, 20))
    assert len(load_report(with_samples(40, [1] * 40)).results[3].runs) == 40
    over = with_samples(41, [20, 21])
    with pytest.raises(ReportError) as err:
        load_report(over)
    assert_one_line_naming(
        err, over, f"{over}: results[3].samples holds 41 samples, more than the 40 a result may"
    )
    too_many_runs = with_samples(40, [1] * 41)
    with pytest.raises(ReportError) as err:
        load_report(too_many_runs)
    assert_one_line_naming(err, too_many_runs, "results[3].runs holds 41 runs, more than the 40")
