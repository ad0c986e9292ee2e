"""compare: verdicts allowing for noise, host differences, labels, errors and the exit code."""

import json
import os

import pytest
from click.testing import CliRunner

from ostoolkit import cli as cli_module
from ostoolkit import compare as compare_module
from ostoolkit.compare import (
    collect_paths,
    compare_reports,
    host_differences,
    host_label,
    judge,
    load_all,
)
from ostoolkit.errors import InvalidRequest
from ostoolkit.report import Measurement, Result, build_report, save_report

HOST = {
    "hostname": "a",
    "cpu_model": "Intel(R) Xeon(R) Gold 6338",
    "kernel": "6.1.0-13-amd64",
    "virtualization": {"hypervisor": True, "container": "none"},
    "clocksource": "tsc",
}


def result(id, median, spread=0.05, unit="us", status="ok"):
    return Result(id, id, unit, median, median * (1 - spread), median * (1 + spread), (median,), 1,
                  status=status)  # fmt: skip


def report(results, **host):
    return build_report("measure-switch", [], Measurement(tuple(results)), {**HOST, **host}, "t", 1)


def test_judge_words():
    base = result("x", 2.0)
    assert judge(base, result("x", 2.05), None).verdict == "≈ same"
    assert judge(base, result("x", 3.6), None).verdict == "1.80× slower"
    assert judge(base, result("x", 1.0), None).verdict == "2.00× faster"
    assert judge(base, result("x", 3.6, status="noisy"), None).verdict == "inconclusive: noisy"
    qps = result("q", 1000.0, unit="per_s")
    assert judge(qps, result("q", 500.0, unit="per_s"), None).verdict == "2.00× slower"
    mem = result("m", 1000.0, unit="bytes")
    assert judge(mem, result("m", 3000.0, unit="bytes"), None).verdict == "3.00× more"
    count = result("c", 10.0, unit="count")
    assert judge(count, result("c", 20.0, unit="count"), None).verdict == "2.00× higher"


def test_fail_above_marks_only_real_slowdowns():
    base = result("x", 2.0)
    assert judge(base, result("x", 3.6), 1.5).regressed
    assert not judge(base, result("x", 3.6), 2.0).regressed
    assert not judge(base, result("x", 1.0), 1.5).regressed
    assert not judge(base, result("x", 3.6, status="bimodal"), 1.5).regressed


def test_labels_and_host_block():
    a = report([result("x", 2.0)])
    b = report([result("x", 2.0)], hostname="b", kernel="6.8.0-1-generic",
               virtualization={"hypervisor": False, "container": "none"})  # fmt: skip
    assert host_label(a) == "a (Intel Xeon Gold, 6.1.0)"
    assert host_differences([a, b]) == [
        {"field": "hostname", "values": ["a", "b"]},
        {"field": "kernel", "values": ["6.1.0-13-amd64", "6.8.0-1-generic"]},
        {"field": "virtualization.hypervisor", "values": ["True", "False"]},
    ]


def test_every_row_kept_and_baseline_by_label():
    a = report([result("x", 2.0), result("only.a", 1.0)])
    b = report([result("x", 4.0), result("only.b", 1.0)], hostname="b")
    m = compare_reports([a, b], ["a", "b"], baseline="b")
    rows = {row["id"]: row for row in m.data["table"]["rows"]}
    assert set(rows) == {"x", "only.a", "only.b"}
    assert rows["x"] == {"id": "x", "a": "2.00 µs (2.00× faster)", "b": "4.00 µs"}
    assert rows["only.a"]["b"] == "—"
    assert m.data["host_differences"][0]["field"] == "hostname"


def test_errors():
    a = report([result("x", 2.0)])
    with pytest.raises(InvalidRequest, match="no result id in common"):
        compare_reports([a, report([result("y", 1.0)])])
    with pytest.raises(InvalidRequest, match="--baseline 'z' is none of the labels"):
        compare_reports([a, a], ["p", "q"], baseline="z")
    with pytest.raises(InvalidRequest, match="--label was given 1 times for 2 reports"):
        compare_reports([a, a], ["p"])


def write(tmp_path, name, rep):
    path = tmp_path / name
    save_report(rep, path)
    return str(path)


def test_cli_exit_codes_and_formats(tmp_path):
    a = write(tmp_path, "a.json", report([result("x", 2.0)]))
    b = write(tmp_path, "b.json", report([result("x", 4.0)], hostname="b"))
    runner = CliRunner()
    ok = runner.invoke(cli_module.cli, ["compare", a, b, "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["data"]["table"]["rows"][0]["id"] == "x"
    gate = runner.invoke(cli_module.cli, ["compare", a, b, "--fail-above", "1.5"])
    assert gate.exit_code == 1
    assert "2.00× slower" in gate.stdout
    folder = runner.invoke(cli_module.cli, ["compare", str(tmp_path), "--format", "markdown"])
    assert folder.exit_code == 0
    assert "| host field" in folder.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "bad.json is not JSON"),
        ('{"schema": "ostoolkit/0"}', 'bad.json: schema is "ostoolkit/0", expected "ostoolkit/1"'),
        ('{"schema": "ostoolkit/1"}', "bad.json: tool is missing"),
        ("[1, 2]", "bad.json is not an ostoolkit report"),
        ("", "bad.json is empty"),
        (
            '{"schema": "ostoolkit/1", "duration_s": NaN}',
            "bad.json: duration_s is NaN, expected a finite",
        ),
    ],
)
def test_cli_bad_files_are_one_line_exit_2(tmp_path, content, message):
    good = write(tmp_path, "good.json", report([result("x", 2.0)]))
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result_ = CliRunner().invoke(cli_module.cli, ["compare", good, str(bad)])
    assert result_.exit_code == 2
    assert message in result_.stderr
    assert result_.stderr.count("bad.json") == 1  # named once, not "bad.json: bad.json ..."
    assert len(result_.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result_.output


def test_cli_wrong_field_type_names_the_json_path(tmp_path):
    good = write(tmp_path, "good.json", report([result("x", 2.0)]))
    data = report([result("y", 1.0), result("x", 2.0)]).to_dict()
    data["results"][1]["median"] = "2.0"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result_ = CliRunner().invoke(cli_module.cli, ["compare", good, str(bad)])
    assert result_.exit_code == 2
    assert f"{bad}: results[1].median is a string, expected a number" in result_.stderr


def folder_with(tmp_path):
    """A folder holding two good reports, a.json and b.json."""
    folder = tmp_path / "reports"
    folder.mkdir()
    write(folder, "a.json", report([result("x", 2.0)]))
    write(folder, "b.json", report([result("x", 4.0)], hostname="b"))
    (folder / "notes.txt").write_text("not a report")
    return folder


def test_collect_paths_lists_json_entries_sorted_and_keeps_files(tmp_path):
    folder = folder_with(tmp_path)
    given = tmp_path / "given.report"
    assert collect_paths([given, folder]) == [given, folder / "a.json", folder / "b.json"]
    assert len(load_all([folder])) == 2


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (os.mkfifo, "is a FIFO, not a regular file"),
        (os.mkdir, "is a directory, not a regular file"),
        (lambda path: os.symlink("/dev/zero", path), "is a character device"),
        (lambda path: os.symlink(path + ".gone", path), "No such file or directory"),
    ],
    ids=["fifo", "directory", "link-to-dev-zero", "broken-link"],
)
def test_folder_entry_that_is_not_a_regular_file_is_refused_not_waited_on(tmp_path, make, kind):
    folder = folder_with(tmp_path)
    entry = folder / "c.json"
    make(str(entry))
    with pytest.raises(InvalidRequest) as err:
        load_all([folder])
    message = str(err.value)
    assert str(entry) in message
    assert kind in message
    assert "\n" not in message


@pytest.mark.timeout(10)
@pytest.mark.parametrize("make", ["fifo", "dev-zero"])
def test_cli_refuses_a_fifo_or_dev_zero_given_directly(tmp_path, make):
    good = write(tmp_path, "good.json", report([result("x", 2.0)]))
    if make == "fifo":
        bad = str(tmp_path / "pipe.json")
        os.mkfifo(bad)
    else:
        bad = "/dev/zero"
    result_ = CliRunner().invoke(cli_module.cli, ["compare", good, bad])
    assert result_.exit_code == 2
    assert result_.stderr.strip().splitlines() == [
        f"Error: {bad} is {'a FIFO' if make == 'fifo' else 'a character device'}, "
        "not a regular file"
    ]


def test_folder_without_reports_is_refused_by_name(tmp_path):
    empty = tmp_path / "void"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    with pytest.raises(InvalidRequest, match=r"^the folder .*void holds no \*\.json report$"):
        collect_paths([empty])


def test_unlistable_folder_is_refused(tmp_path, monkeypatch):
    folder = folder_with(tmp_path)

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(compare_module.os, "scandir", refuse)
    with pytest.raises(
        InvalidRequest, match=r"cannot list the folder .*reports: Permission denied"
    ):
        collect_paths([folder])
