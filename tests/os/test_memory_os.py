"""measure-memory with real workers: accounting identities and nothing left behind."""

import psutil
import pytest

from ostoolkit.measure import memory
from ostoolkit.measure.memory import MemoryConfig, measure_cow, measure_memory


@pytest.mark.parametrize("model", ["process", "thread", "exec_process", "mp_spawn"])
def test_group_identities_and_positive_marginals(model, monkeypatch):
    seen: list[list[psutil.Process]] = []
    real = memory.measure_group

    def checked(leader, workers):
        """While the group stands: USS <= PSS <= RSS for every process in it."""
        top = psutil.Process(leader)
        procs = [top, *top.children(recursive=True)]
        for proc in procs:
            info = proc.memory_full_info()
            assert info.uss <= info.pss <= info.rss
        seen.append(procs)
        group = real(leader, workers)
        expected = 1 + workers if model != "thread" else 1
        assert group.processes == expected
        if model == "thread":
            assert group.threads >= 1 + workers
        return group

    monkeypatch.setattr(memory, "measure_group", checked)
    m = measure_memory(MemoryConfig(workers=(1, 4), models=(model,)))
    by_id = {r.id: r for r in m.results}
    for metric in ("uss", "pss", "rss"):
        result = by_id[f"memory.{model}.{metric}_per_worker"]
        assert result.extra["slope_bytes"] > 0
        assert result.n == 2
    everyone = [p for group in seen for p in group]
    _gone, alive = psutil.wait_procs(everyone, timeout=20)
    assert not alive


def test_cow_unique_memory_grows_with_what_is_written():
    m = measure_cow(size_mb=16, repeat=1)
    uss = {r.id.removeprefix("memory.cow.uss_after_"): r.median for r in m.results[:5]}
    assert uss["fork"] < 16 * 2**20 / 4  # hardly any of the parent's 16 MiB is its own
    assert uss["read"] < uss["fork"] + 16 * 2**20 / 10  # reading copies nothing
    assert uss["fork"] < uss["write10"] < uss["write50"] < uss["write100"]
    assert uss["write100"] - uss["fork"] >= 16 * 2**20 * 0.9
    faults = m.results[5]
    assert faults.id == "memory.cow.minor_faults_write100"
    assert faults.median >= faults.extra["pages"]
