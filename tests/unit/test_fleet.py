"""The fleet view: the spread of a figure over many hosts, the hosts far out of it (with the
A/A and A/B experiments that the rule is trusted on), fingerprint groups, and its rendering."""

from __future__ import annotations

import json
import random
import re

from click.testing import CliRunner
from harness.mermaid import check_xychart, mermaid_blocks
from test_compare import HOST, documented_keys, report, result, write

from ostoolkit.cli import cli
from ostoolkit.compare.engine import compare_reports
from ostoolkit.compare.fleet import FLEET_AFTER, chosen_view
from ostoolkit.loader import report_from_dict
from ostoolkit.render import render
from ostoolkit.render.charts import SPREAD_INIT, SpreadPoint, mermaid_spread_chart
from ostoolkit.render.compare_fleet import spread_points
from ostoolkit.render.tables import MARKDOWN_COLUMNS
from ostoolkit.report import build_report
from ostoolkit.stats import SampleSet
from ostoolkit.stats.fleet import ABOVE, BELOW, MIN_FENCED, FleetHost, fleet_spread

BAND = 0.05


def host(
    key: str, median: float, runs: int = 3, per_run: int = 8, noise: float = 0.02
) -> FleetHost:
    """A host's figure: ``runs`` runs of ``per_run`` samples, each run moved a little."""
    rng = random.Random(key)
    samples = []
    for _ in range(runs):
        level = median * rng.lognormvariate(0, noise)
        samples += [level * rng.lognormvariate(0, noise) for _ in range(per_run)]
    return FleetHost(SampleSet(samples, key, [per_run] * runs), exact=False)


def fleet(medians: list[float], **kwargs: int) -> list[tuple[int, FleetHost]]:
    return [(i, host(f"h{i}", m, **kwargs)) for i, m in enumerate(medians)]


# -- the statistics ------------------------------------------------------------------------


def test_a_host_far_above_the_rest_is_named_with_its_interval():
    medians = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99, 1.5]
    spread = fleet_spread(fleet(medians), BAND)
    assert spread is not None
    assert spread.hosts == 9
    assert spread.lowest < spread.p10 <= spread.median <= spread.p90 < spread.highest
    assert [out.index for out in spread.far_out] == [8]
    out = spread.far_out[0]
    assert out.side == ABOVE
    assert out.judged
    assert out.reason is None
    assert out.low <= out.ratio <= out.high
    assert out.low > spread.fence_high  # its whole interval lies beyond the fence


def test_far_below_and_the_farthest_first():
    medians = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.6, 1.8]
    spread = fleet_spread(fleet(medians), BAND)
    assert [(out.index, out.side) for out in spread.far_out] == [(8, ABOVE), (7, BELOW)]


def test_fences_are_never_nearer_one_than_the_band():
    """Near-identical hosts: a host 4 % off is inside the band, whatever the quartiles say."""
    medians = [1.0] * 8 + [1.04]
    spread = fleet_spread(fleet(medians, noise=0.001), BAND)
    assert spread.fence_low <= 1 - BAND
    assert spread.fence_high >= 1 + BAND
    assert spread.far_out == []


def test_one_run_is_named_but_not_judged_and_an_exact_figure_is_judged_on_its_value():
    hosts = fleet([1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0, 1.02])
    hosts.append((10, host("one", 1.6, runs=1)))
    exact = FleetHost(SampleSet([2.0], "exact"), exact=True)
    hosts.append((11, exact))
    spread = fleet_spread(hosts, BAND)
    by_index = {out.index: out for out in spread.far_out}
    assert not by_index[10].judged
    assert by_index[10].reason == "one run"
    assert by_index[11].judged
    assert by_index[11].low == by_index[11].high == by_index[11].ratio


def test_few_hosts_or_a_median_at_zero_get_a_spread_but_no_fences():
    few = fleet_spread(fleet([1.0, 1.0, 1.0, 3.0]), BAND)
    assert MIN_FENCED == 5
    assert few.fence_low is None
    assert few.far_out == []
    hosts = fleet([1.0, 1.0, 1.0, 1.0, 1.0])
    hosts.append((5, FleetHost(SampleSet([0.0, 0.0], "zero", [1, 1]), exact=False)))
    zero = fleet_spread(hosts, BAND)
    assert zero.fence_high is None
    assert zero.far_out == []
    assert zero.lowest == 0.0
    assert fleet_spread([], BAND) is None


def simulated_fleet(seed: int, size: int, moved: float) -> list[tuple[int, FleetHost]]:
    """A fleet of one kind of host: each host's level drawn from 3 % host-to-host spread, its
    runs and samples with 2 % noise; host 0 moved by ``moved``."""
    rng = random.Random(seed)
    levels = [rng.lognormvariate(0, 0.03) for _ in range(size)]
    levels[0] *= moved
    return [(i, host(f"{seed}/{i}", level)) for i, level in enumerate(levels)]


def test_a_a_a_fleet_of_one_kind_calls_almost_no_host_far_out():
    """A/A: 40 fleets of 30 alike hosts; at most 1 % of host-figures may be called far out."""
    called = sum(
        sum(out.judged for out in fleet_spread(simulated_fleet(seed, 30, 1.0), BAND).far_out)
        for seed in range(40)
    )
    assert called <= 0.01 * 40 * 30, called


def test_a_b_a_host_moved_by_30_percent_is_found():
    """A/B: the same fleets with one host 30 % slower: found far out in at least 90 % of them,
    and no other host called far out in more than 1 % of host-figures."""
    found = others = 0
    for seed in range(40):
        far = fleet_spread(simulated_fleet(seed, 30, 1.3), BAND).far_out
        found += any(out.index == 0 and out.judged for out in far)
        others += sum(out.judged for out in far if out.index != 0)
    assert found >= 36, found
    assert others <= 0.01 * 40 * 29, others


# -- the data and the view ------------------------------------------------------------------


def fleet_reports(count: int) -> list:
    """``count`` reports of two figures, hosts in two CPU models; host 3 is far out of "x"."""
    reports = []
    for i in range(count):
        x = 2.0 * (1.5 if i == 3 else 1 + 0.002 * i)
        model = "Intel Xeon" if i % 2 else HOST["cpu_model"]
        reports.append(
            report([result("x", x), result("y", 3.0 + 0.01 * i)], hostname=f"h{i}", cpu_model=model)
        )
    return reports


def test_auto_switches_to_the_fleet_past_a_handful_of_hosts():
    assert chosen_view("auto", FLEET_AFTER) == "hosts"
    assert chosen_view("auto", FLEET_AFTER + 1) == "fleet"
    assert chosen_view("hosts", 100) == "hosts"
    assert chosen_view("fleet", 2) == "fleet"
    few = compare_reports(fleet_reports(FLEET_AFTER))
    assert few.data["view"] == "hosts"
    assert few.data["fleet"] is None
    many = compare_reports(fleet_reports(FLEET_AFTER + 2))
    assert many.data["view"] == "fleet"


def test_fleet_data_has_spread_far_out_hosts_and_groups_in_the_documented_shape():
    m = compare_reports(fleet_reports(10), [f"h{i}" for i in range(10)])
    data = m.data["fleet"]
    documented = documented_keys()
    assert set(data) == documented["data.fleet"]
    groups = data["groups"]
    assert [g["name"] for g in groups] == ["G1", "G2"]
    assert sorted(len(g["hosts"]) for g in groups) == [5, 5]
    assert {g["fingerprint"]["CPU model"] for g in groups} == {HOST["cpu_model"], "Intel Xeon"}
    for group in groups:
        assert set(group) == documented["data.fleet.groups[]"]
    x, y = data["figures"]
    for figure in (x, y):
        assert set(figure) == documented["data.fleet.figures[]"]
        assert set(figure["groups"]) == {"G1", "G2"}
    assert x["hosts"] == 10
    assert x["lowest"] <= x["p10"] <= x["median"] <= x["p90"] <= x["highest"]
    assert [out["host"] for out in x["far_out"]] == ["h3"]
    assert set(x["far_out"][0]) == documented["data.fleet.figures[].far_out[]"]
    assert y["far_out"] == []
    assert data["far_out_hosts"] == {"h3": 1}
    json.dumps(m.data, allow_nan=False)


def test_fleet_table_fits_120_columns_and_markdown_six_columns():
    reports = fleet_reports(12)
    m = compare_reports(reports, [f"a-rather-long-host-label-number-{i}" for i in range(12)])
    rep = build_report("compare", [], m, {"compared": m.data["hosts"]}, "", 0)
    table = render(rep, "table")
    assert table.startswith("ostoolkit compare (fleet): 12 hosts in 2 fingerprint groups")
    assert max(len(line) for line in table.splitlines()) <= 120
    assert "far out: a-rather-long-host-label-number-3 1.48×" in table
    assert "far out most often (figures): a-rather-long-host-label-number-3 (1)" in table
    md = render(rep, "markdown")
    assert md.startswith("### ostoolkit compare (fleet)")
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows
    assert all(line.count(" | ") + 1 <= MARKDOWN_COLUMNS for line in rows)
    assert "| figure | hosts | median (p10–p90) | by group | far out |" in md
    assert re.search(r"\| label of x \| 12 \| .* \| a-rather-long-host-label-number-3 1\.48×", md)


def test_view_option_and_its_errors(tmp_path):
    paths = [write(tmp_path, f"r{i}.json", rep) for i, rep in enumerate(fleet_reports(3))]
    runner = CliRunner()
    fleet_run = runner.invoke(cli, ["compare", *paths, "--view", "fleet"])
    assert fleet_run.exit_code == 0, fleet_run.output
    assert fleet_run.output.startswith("ostoolkit compare (fleet): 3 hosts")
    hosts_run = runner.invoke(cli, ["compare", *paths, "--view", "hosts", "--format", "json"])
    assert json.loads(hosts_run.output)["data"]["view"] == "hosts"
    bad = runner.invoke(cli, ["compare", *paths, "--view", "crowd"])
    assert bad.exit_code == 2
    assert "'--view'" in bad.output
    assert "'auto', 'hosts', 'fleet'" in bad.output


def test_a_saved_fleet_report_renders_again_and_survives_damage():
    m = compare_reports(fleet_reports(8))
    rep = build_report("compare", [], m, {"compared": m.data["hosts"]}, "", 0)
    damaged = json.loads(rep.to_json())
    damaged["data"]["fleet"]["figures"][0]["far_out"] = [{"host": 3}, "x"]
    damaged["data"]["fleet"]["groups"] = {"G1": 1}
    text = render(report_from_dict(damaged, "saved.json"), "table")
    assert "ostoolkit compare (fleet)" in text


def test_fleet_markdown_draws_the_headline_figures_spread_as_a_chart():
    points = [
        SpreadPoint("process switch, same core (net)", 0.8, 0.9, 1.1, 1.5),
        SpreadPoint("fork", 0.95, 0.97, 1.03, 1.04),
    ]
    lines = mermaid_spread_chart(points)
    assert lines[1] == SPREAD_INIT
    series = check_xychart(lines[1:-1])  # palette, labels within the cap, axis from 0
    # drawn over each other: out to the highest, p10 to p90, out to the lowest, grey below
    assert [series[k] for k in ("bar", "bar:2", "bar:3", "bar:4")] == [
        ["1.5", "1.04"],
        ["1.1", "1.03"],
        ["0.9", "0.97"],
        ["0.8", "0.95"],
    ]
    assert series["line"] == ["1", "1"]  # the fleet's median
    assert series["labels"][1] == "fork: 1.06×"  # p90 / p10
    assert mermaid_spread_chart([]) == []
    figures = [
        {
            "headline": True,
            "label": "x",
            "median": 2.0,
            "lowest": 1.0,
            "p10": 1.8,
            "p90": 2.2,
            "highest": 3.0,
        },
        {
            "headline": False,
            "label": "y",
            "median": 2.0,
            "lowest": 1.0,
            "p10": 1.8,
            "p90": 2.2,
            "highest": 3.0,
        },
        {
            "headline": True,
            "label": "z",
            "median": 0.0,
            "lowest": 0,
            "p10": 0,
            "p90": 0,
            "highest": 0,
        },
    ]
    assert spread_points(figures) == [SpreadPoint("x", 0.5, 0.9, 1.1, 1.5)]
    headline = [
        report([result("switch.process.same_core", 2.0 + 0.01 * i)], hostname=f"h{i}")
        for i in range(8)
    ]
    m = compare_reports(headline)
    rep = build_report("compare", [], m, {"compared": m.data["hosts"]}, "", 0)
    md = render(rep, "markdown")
    (chart,) = mermaid_blocks(md)
    assert chart[0] == SPREAD_INIT
    assert "dark blue from p10 to p90" in md
