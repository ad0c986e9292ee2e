"""The article's claims: verdicts in words, annotate (claims, verdicts, noise), the table."""

from dataclasses import replace

from ostoolkit.claims import (
    CLAIMS,
    NOISE_WARNED,
    annotate,
    claims_table,
    judge_heavier,
    judge_speedup,
    judge_time,
    judge_timeslice,
    noise_warning,
)
from ostoolkit.report import Measurement, make_result


def test_judge_time_faster_slower_agrees():
    claim = CLAIMS["context_switch"]
    assert judge_time(2.5, claim) == "2.0× faster than the article's ~5 µs"
    assert judge_time(10.0, claim) == "2.0× slower than the article's ~5 µs"
    assert judge_time(5.5, claim) == "agrees with the article's ~5 µs (×1.10)"


def test_judge_time_non_positive():
    assert "not measurable" in judge_time(0.0, CLAIMS["thread_switch"])


def test_judge_speedup_words():
    assert judge_speedup(5.0, 1.0) == "threads switch 5.0× faster here; the article says ~5×"
    assert judge_speedup(2.0, 4.0) == (
        "threads switch 2.0× slower than processes here; the article says ~5× faster"
    )
    assert judge_speedup(5.0, 5.1).startswith("threads and processes switch at about the same")
    assert "not measurable" in judge_speedup(-1.0, 1.0)


# -- annotate: the one pass that sets claims, verdicts and noise warnings -------------------


def _noisy(result):
    return replace(result, status="noisy", notes=("other tasks took 20% of the CPU",))


def test_every_claim_the_code_states_is_in_the_table():
    assert CLAIMS["pool_size"].text == "5–50 connections"
    assert CLAIMS["pool_size"].span == "5–50"
    assert CLAIMS["timeslice"].text == "milliseconds"
    assert CLAIMS["processes_heavy"].text == "processes are heavy"
    assert CLAIMS["context_switch"].span == "5"
    for key in ("switches_per_second", "instructions_per_switch", "pooled_clients"):
        assert CLAIMS[key].quote


def test_annotate_sets_each_claim_as_the_measurements_did():
    results = (
        make_result("switch.process.same_core", "p", "us", [2.5]),
        make_result("switch.thread.same_core", "t", "us", [2.0]),
        make_result("switch.process.cross_core", "x", "us", [40.0]),
        make_result("roundtrip.process.same_core", "r", "us", [9.0]),
        make_result("sched.timeslice", "s", "ms", [4.0]),
        make_result("sched.runqueue_wait", "w", "ms", [4.0]),
        make_result("memory.process.uss_per_worker", "m", "bytes", [1000.0]),
        make_result("memory.mp_spawn.uss_per_worker", "m", "bytes", [50.0]),
        make_result("memory.thread.uss_per_worker", "m", "bytes", [100.0]),
        make_result("memory.process.rss_per_worker", "m", "bytes", [9000.0]),
        make_result("conn.pooled.100.procs", "p", "count", [22], extra={"clients": 100}),
        make_result("conn.pooled.100.threads", "p", "count", [22]),
        make_result("conn.process.100.procs", "p", "count", [101]),
    )
    got = {r.id: (r.claim, r.verdict) for r in annotate(Measurement(results)).results}
    assert got == {
        "switch.process.same_core": ("~5 µs", "2.0× faster than the article's ~5 µs"),
        "switch.thread.same_core": ("~1 µs", "2.0× slower than the article's ~1 µs"),
        "switch.process.cross_core": (None, None),
        "roundtrip.process.same_core": (None, None),
        "sched.timeslice": ("milliseconds", judge_timeslice(4.0)),
        "sched.runqueue_wait": (None, None),
        "memory.process.uss_per_worker": ("processes are heavy", judge_heavier(1000.0, 100.0)),
        "memory.mp_spawn.uss_per_worker": ("processes are heavy", judge_heavier(50.0, 100.0)),
        "memory.thread.uss_per_worker": (None, None),
        "memory.process.rss_per_worker": (None, None),
        "conn.pooled.100.procs": ("a pool of 5–50 connections", "20 backends for 100 clients"),
        "conn.pooled.100.threads": (None, None),
        "conn.process.100.procs": (None, None),
    }


def test_processes_are_heavy_needs_the_thread_figure():
    alone = make_result("memory.process.uss_per_worker", "m", "bytes", [1000.0])
    assert annotate(Measurement((alone,))).results == (alone,)


def test_noise_warnings_only_for_the_figures_warned_about_today():
    warned = [
        _noisy(make_result(i, f"label {i}", "us", [1.0]))
        for i in ("switch.thread.cross_core", "sched.runqueue_wait", "spawn.fork")
    ]
    quiet = [
        _noisy(make_result(i, f"label {i}", "us", [1.0]))
        for i in ("roundtrip.process.same_core", "sched.involuntary_per_s", "conn.thread.10.p50")
    ]
    ok = make_result("switch.process.same_core", "fine", "us", [1.0])
    m = annotate(Measurement((*warned, *quiet, ok), warnings=("first",)))
    assert m.warnings == (
        "first",
        "label switch.thread.cross_core is noisy: other tasks took 20% of the CPU",
        "label sched.runqueue_wait is noisy: other tasks took 20% of the CPU",
        "label spawn.fork is noisy: other tasks took 20% of the CPU",
    )
    assert [noise_warning(r) for r in quiet] == [None, None, None]
    assert "switch.*" in NOISE_WARNED


def test_annotate_is_idempotent_and_keeps_warnings_a_measurement_placed_itself():
    noisy = _noisy(make_result("switch.process.same_core", "p", "us", [2.5]))
    placed = noise_warning(noisy)
    assert placed is not None
    m = Measurement((noisy,), warnings=(placed, "a later warning"))
    once = annotate(m)
    assert once.warnings == (placed, "a later warning")
    assert annotate(once) == once
    assert once.results[0].claim == "~5 µs"


def test_claims_table_shape():
    table = claims_table([make_result("sched.timeslice", "s", "ms", [4.0])])
    assert table["columns"] == [
        ["claim", "text"], ["the article", "text"], ["this host", "text"], ["verdict", "text"]
    ]  # fmt: skip
    assert table["note"] == ""
    assert table["rows"] == [
        {
            "claim": "time slice",
            "the article": "milliseconds",
            "this host": "4.00 ms",
            "verdict": "4.0 ms: milliseconds, as the article says",
        }
    ]
