"""docs/results.md is the contract: every id the example reports hold is documented, unit and all.

The ids of a small live run are checked in tests/os/test_result_docs_os.py.
"""

import itertools
import json

from harness.paths import REPO
from harness.result_docs import documented_ids


def produced() -> dict[str, str]:
    """Every (id, unit) in the shipped example reports."""
    found = {}
    for path in itertools.chain(
        (REPO / "examples").glob("*.json"), (REPO / "examples/reports").glob("*.json")
    ):
        for result in json.loads(path.read_text())["results"]:
            found[result["id"]] = result["unit"]
    return found


def test_every_produced_id_is_documented_with_its_unit():
    rows = documented_ids()
    assert len(rows) >= 20
    for result_id, unit in produced().items():
        matches = [u for regex, u in rows if regex.match(result_id)]
        assert matches, f"{result_id} is not in docs/results.md"
        assert unit in matches, f"{result_id} has unit {unit}, documented {matches}"


def test_the_examples_cover_every_command_section():
    ids = produced()
    for prefix in ("switch.", "roundtrip.", "spawn.", "forktree.", "sched.", "memory.", "conn."):
        assert any(i.startswith(prefix) for i in ids), prefix
