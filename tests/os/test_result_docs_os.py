"""docs/results.md is the contract: the ids of a small live run (clone, cow, spawn) are documented.

The ids of the example reports are checked in tests/unit/test_result_docs.py.
"""

from harness.result_docs import documented_ids

from ostoolkit.measure.clone import measure_clone
from ostoolkit.measure.cow import measure_cow
from ostoolkit.measure.spawn import SpawnConfig, measure_spawn


def test_ids_of_a_small_live_run_are_documented():
    rows = documented_ids()
    live = (
        measure_clone().results
        + measure_cow(1, 1).results
        + measure_spawn(SpawnConfig(repeat=1, methods=("thread",), parent_rss_mb=(1,))).results
    )
    for result in live:
        assert any(regex.match(result.id) and unit == result.unit for regex, unit in rows), (
            result.id
        )
