"""docs/results.md is the contract: every id the commands produce is documented, unit and all."""

import itertools
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `([^`]+)` \| (\w+) \|", re.MULTILINE)


def documented() -> list[tuple[re.Pattern[str], str]]:
    """(regex, unit) for every row of docs/results.md."""
    rows = []
    for pattern, unit in ROW.findall((ROOT / "docs/results.md").read_text()):
        regex = re.escape(pattern)
        regex = regex.replace("<N>", r"\d+")
        regex = re.sub(
            r"\\\{([^}]*)\\\}", lambda m: "(" + m.group(1).replace(",", "|") + ")", regex
        )
        rows.append((re.compile(regex + "$"), unit))
    return rows


def produced() -> dict[str, str]:
    """Every (id, unit) in the shipped example reports."""
    found = {}
    for path in itertools.chain(
        (ROOT / "examples").glob("*.json"), (ROOT / "examples/reports").glob("*.json")
    ):
        for result in json.loads(path.read_text())["results"]:
            found[result["id"]] = result["unit"]
    return found


def test_every_produced_id_is_documented_with_its_unit():
    rows = documented()
    assert len(rows) >= 20
    for result_id, unit in produced().items():
        matches = [u for regex, u in rows if regex.match(result_id)]
        assert matches, f"{result_id} is not in docs/results.md"
        assert unit in matches, f"{result_id} has unit {unit}, documented {matches}"


def test_the_examples_cover_every_command_section():
    ids = produced()
    for prefix in ("switch.", "roundtrip.", "spawn.", "forktree.", "sched.", "memory.", "conn."):
        assert any(i.startswith(prefix) for i in ids), prefix


def test_ids_of_a_small_live_run_are_documented():
    from ostoolkit.measure.clone import measure_clone
    from ostoolkit.measure.cow import measure_cow
    from ostoolkit.measure.spawn import SpawnConfig, measure_spawn

    rows = documented()
    live = (
        measure_clone().results
        + measure_cow(1, 1).results
        + measure_spawn(SpawnConfig(repeat=1, methods=("thread",), parent_rss_mb=(1,))).results
    )
    for result in live:
        assert any(regex.match(result.id) and unit == result.unit for regex, unit in rows), (
            result.id
        )
