"""The article's claims: verdicts in words, annotate (claims, verdicts, noise), the table."""

from dataclasses import replace

import pytest

from ostoolkit.claims import (
    CLAIMS,
    GROUPED_SECTIONS,
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


def test_a_noise_warning_for_every_figure_that_is_not_ok_in_the_results_order():
    noisy = [
        _noisy(make_result(i, f"label {i}", "us", [1.0]))
        for i in (
            "switch.thread.cross_core",
            "roundtrip.process.same_core",
            "sched.involuntary_per_s",
            "spawn.fork",
            "conn.thread.10.p50",
            "perf.sched_pipe.process.same_core",
        )
    ]
    ok = make_result("switch.process.same_core", "fine", "us", [1.0])
    m = annotate(Measurement((noisy[0], ok, *noisy[1:]), warnings=("first",)))
    assert m.warnings == (
        "first",
        *(f"label {r.id} is noisy: other tasks took 20% of the CPU" for r in noisy),
    )
    assert noise_warning(noisy[0]) == m.warnings[1]


def test_a_grouped_sections_noisy_figures_share_one_warning_where_the_first_was():
    mem = [
        _noisy(make_result(f"memory.process.{m}_per_worker", f"process: {m}", "bytes", [1.0]))
        for m in ("uss", "pss")
    ]
    conn = [
        replace(
            _noisy(make_result(f"conn.thread.{n}.p99", f"thread, {n}: p99", "us", [1.0])),
            status=status,
        )
        for n, status in ((10, "noisy"), (100, "bimodal"))
    ]
    spawn = _noisy(make_result("spawn.fork", "fork", "us", [1.0]))
    lone = _noisy(make_result("memory.cow.uss_after_fork", "cow", "bytes", [1.0]))
    m = annotate(Measurement((mem[0], spawn, *conn, mem[1])))
    assert m.warnings == (
        "2 memory figures are not ok (the JSON report's notes say why): "
        "process: uss (noisy), process: pss (noisy)",
        "fork is noisy: other tasks took 20% of the CPU",
        "2 connections figures are not ok (the JSON report's notes say why): "
        "thread, 10: p99 (noisy), thread, 100: p99 (bimodal)",
    )
    assert annotate(Measurement((lone,))).warnings == (
        "cow is noisy: other tasks took 20% of the CPU",
    )  # one alone keeps the usual words
    assert set(GROUPED_SECTIONS) == {"memory", "conn"}
    parts = annotate(Measurement(tuple(mem))), annotate(Measurement(tuple(conn)))
    merged = annotate(parts[0] + parts[1])  # as the suite does: no warning said twice
    assert merged.warnings == parts[0].warnings + parts[1].warnings


def test_annotate_is_idempotent_and_keeps_warnings_a_measurement_already_carries():
    noisy = _noisy(make_result("switch.process.same_core", "p", "us", [2.5]))
    placed = noise_warning(noisy)
    m = Measurement((noisy,), warnings=(placed, "a later warning"))
    once = annotate(m)
    assert once.warnings == (placed, "a later warning")
    assert annotate(once) == once
    assert once.results[0].claim == "~5 µs"


def test_claims_table_shape():
    table = claims_table([make_result("sched.timeslice", "s", "ms", [4.0])])
    assert table["columns"] == [
        ["claim", "text"],
        ["the article", "text"],
        ["this host", "text"],
        ["verdict", "text"],
    ]
    assert table["note"] == ""
    assert table["rows"] == [
        {
            "claim": "time slice",
            "the article": "milliseconds",
            "this host": "4.00 ms",
            "verdict": "4.0 ms: milliseconds, as the article says",
        }
    ]


def test_heavier_refuses_a_marginal_cost_of_zero_or_below_on_either_side():
    assert (
        judge_heavier(0.0, 100.0) == "not comparable here: a process's marginal cost measured ≤ 0"
    )
    assert judge_heavier(-5.0, 100.0).startswith("not comparable here")
    assert judge_heavier(100.0, 0.0).startswith("not comparable here")


def _pgbouncer(figure: str, value: float, clients: int, **extra: object):
    return make_result(
        f"conn.pgbouncer.{clients}.{figure}",
        "PgBouncer",
        "count",
        [value],
        extra={"clients": clients, **extra},
    )


def test_pgbouncer_pool_is_judged_against_the_articles_5_to_50():
    inside = annotate(Measurement((_pgbouncer("procs", 26, 1000, backends=20),))).results[0]
    assert inside.claim.startswith("a pool of 5–50")
    assert (
        inside.verdict
        == "20 PostgreSQL backends for 1000 clients: within the article's 5–50 connections"
    )
    outside = annotate(Measurement((_pgbouncer("procs", 66, 1000, backends=60),))).results[0]
    assert "outside" in outside.verdict
    unknown = annotate(Measurement((_pgbouncer("procs", 6, 10),))).results[0]
    assert unknown.verdict is None  # no backends count: nothing to judge


def test_pgbouncer_clients_are_judged_against_the_articles_thousands():
    def verdict(refused: int, clients: int) -> str | None:
        return annotate(Measurement((_pgbouncer("refused", refused, clients),))).results[0].verdict

    assert verdict(0, 1000) == "served all 1000 clients: agrees with the article's thousands"
    assert "try --clients 1000" in (verdict(0, 100) or "")
    assert verdict(3, 1000) == "refused 3 of 1000 clients"


def test_decade_claims_say_where_the_host_falls():
    from ostoolkit.claims import CLAIMS, judge_decade

    rate, instructions = CLAIMS["switches_per_second"], CLAIMS["instructions_per_switch"]
    assert judge_decade(450, rate) == "450: hundreds a second, as the article says"
    assert judge_decade(12_000, rate) == "12,000: 120× the article's hundreds a second"
    assert judge_decade(20, rate) == "20: 5.0× fewer than the article's hundreds a second"
    assert judge_decade(2.5, rate) == "2.5: 40.0× fewer than the article's hundreds a second"
    assert judge_decade(0, rate) == "none measured; the article says hundreds a second"
    assert judge_decade(35_000, instructions).endswith("as the article says")
    assert judge_decade(100_000, instructions).startswith("100,000: 10×")


@pytest.mark.parametrize("measured", [97.0, 99.4, 95.3])
def test_a_figure_within_rounding_of_the_decade_is_not_one_times_fewer(measured):
    from ostoolkit.claims import CLAIMS, judge_decade

    verdict = judge_decade(measured, CLAIMS["switches_per_second"])
    assert "1.0×" not in verdict
    assert verdict.endswith(": just below the article's hundreds a second, about as it says")
    assert judge_decade(97, CLAIMS["switches_per_second"]).startswith("97: just below")


def test_a_figure_that_rounds_away_from_one_keeps_its_ratio():
    from ostoolkit.claims import CLAIMS, judge_decade

    rate = CLAIMS["switches_per_second"]
    assert judge_decade(95.2, rate) == "95: 1.1× fewer than the article's hundreds a second"
    assert judge_decade(9_700, CLAIMS["instructions_per_switch"]).startswith("9,700: just below")


def test_switch_rate_and_instructions_results_carry_the_claims():
    rate = make_result("rate.switches_per_s", "switches", "per_s", [480.0])
    instr = make_result("switch.process.instructions", "instructions", "number", [2_000.0])
    done = annotate(Measurement((rate, instr))).results
    assert done[0].claim == "hundreds a second"
    assert done[0].verdict == "480: hundreds a second, as the article says"
    assert (
        done[1].verdict == "2,000: 5.0× fewer than the article's tens of thousands of instructions"
    )


def test_the_claims_table_gains_rates_rings_and_python_rows():
    from ostoolkit.claims import article_rows

    results = [
        make_result("rate.switches_per_s", "rate", "per_s", [650.0]),
        make_result("switch.process.instructions", "instr", "number", [32_000.0]),
        make_result("switch.thread.cycles", "cycles", "number", [2_400.0]),
        make_result("ring.process.8", "ring 8", "us", [3.0], extra={"tasks": 8}),
        make_result("ring.process.256", "ring 256", "us", [8.0], extra={"tasks": 256}),
        make_result("ring.process.256.ws.64", "ring ws", "us", [25.0], extra={"tasks": 256}),
        make_result("switch.python.gil", "gil", "us", [2.6]),
    ]
    rows = {row["claim"]: row for row in article_rows(results)}
    assert rows["switches per second"]["verdict"] == "650: hundreds a second, as the article says"
    assert rows["instructions per process switch"]["this host"] == "32,000"
    assert rows["cycles per thread switch"]["verdict"] == "measured, no claim"
    assert rows["process switch in a ring of 256"]["this host"] == "8.00 µs"  # not the ws one
    assert rows["Python GIL hand-off"]["this host"] == "2.60 µs"


def test_the_instruction_rate_is_judged_against_billions():
    from ostoolkit.claims import article_rows

    ips = make_result("rate.instructions_per_s", "ips", "per_s", [2.4e9])
    done = annotate(Measurement((ips,))).results[0]
    assert done.claim == "billions a second"
    assert done.verdict == "2,400,000,000: billions a second, as the article says"
    slow = make_result("rate.instructions_per_s", "ips", "per_s", [4e8])
    assert annotate(Measurement((slow,))).results[0].verdict.startswith("400,000,000: 2.5×")
    rows = {row["claim"]: row for row in article_rows([ips])}
    assert rows["instructions per second"]["this host"] == "2.40 billion/s"


def test_without_a_pmu_the_claims_table_says_the_instructions_are_not_measurable():
    from ostoolkit.claims import article_rows

    why = "perf_event_open: ENOENT, the CPU shows no PMU, usual in a VM"
    rate = make_result(
        "rate.switches_per_s", "rate", "per_s", [650.0], extra={"pmu_unavailable": why}
    )
    rows = {row["claim"]: row for row in article_rows([rate])}
    for claim in ("instructions per switch", "instructions per second"):
        assert rows[claim]["this host"] == "not counted"
        assert rows[claim]["verdict"] == f"not measurable here: {why}"
    counted = make_result("rate.switches_per_s", "rate", "per_s", [650.0])
    assert "instructions per switch" not in {row["claim"] for row in article_rows([counted])}


def test_no_verdict_on_a_figure_its_own_run_distrusts():
    """Issue 21: 'agrees with the article' beside a bimodal, interfered figure said more
    about the run than the host."""
    from ostoolkit.claims import article_rows

    ok = make_result("switch.process.same_core", "process switch", "us", [5.0, 5.0, 5.1])
    bimodal = replace(ok, status="bimodal")
    thread = make_result("switch.thread.same_core", "thread switch", "us", [1.0, 1.0, 1.1])
    annotated = annotate(Measurement((bimodal, thread))).results
    assert annotated[0].verdict == "not judged: bimodal"
    assert annotated[1].verdict is not None
    assert not annotated[1].verdict.startswith("not judged")
    rows = {row["claim"]: row["verdict"] for row in article_rows([bimodal, thread])}
    assert rows["context switch"] == "not judged: bimodal"
    assert rows["threads switch faster"] == "not judged: process switch is bimodal"
    assert not rows["thread switch"].startswith("not judged")
    throttled = replace(thread, status="throttled")
    assert annotate(Measurement((throttled,))).results[0].verdict == "not judged: throttled"


def test_claims_on_several_figures_are_judged_once_in_claims():
    """Issue 22: measurements no longer judge the article themselves; annotate does, once,
    first among the findings, however often a measurement is annotated."""
    process = make_result("switch.process.same_core", "process switch", "us", [5.0, 5.0, 5.1])
    thread = make_result("switch.thread.same_core", "thread switch", "us", [1.0, 1.0, 1.1])
    once = annotate(Measurement((process, thread), ("the measurement's own",)))
    assert once.findings == (f"{judge_speedup(5.0, 1.0)} (ostoolkit)", "the measurement's own")
    assert annotate(once).findings == once.findings
    noisy = annotate(Measurement((replace(process, status="noisy"), thread)))
    assert noisy.findings[0].startswith(
        "threads vs processes (the article: ~5× faster): not judged"
    )


def test_the_pooler_is_judged_at_its_largest_client_count():
    from ostoolkit.claims import claim_findings

    def procs(clients, backends):
        extra = {"backends": backends, "clients": clients}
        return make_result(f"conn.pgbouncer.{clients}.procs", "p", "count", [2.0], extra=extra)

    def refused(clients, count):
        return make_result(
            f"conn.pgbouncer.{clients}.refused", "r", "count", [count], extra={"clients": clients}
        )

    findings = claim_findings([procs(10, 3), refused(10, 0), procs(1000, 20), refused(1000, 0)])
    assert findings[0].startswith("PgBouncer: 20 PostgreSQL backends for 1000 clients: within")
    assert findings[1] == "PgBouncer served all 1000 clients: agrees with the article's thousands"
    alone = claim_findings([procs(10, 3)])  # no refused figure: the backends alone
    assert alone == [
        "PgBouncer: 3 PostgreSQL backends for 10 clients: outside the article's 5–50 connections"
    ]


def test_switch_claims_are_judged_on_the_c_harness_where_it_ran_beside_ours():
    ours = make_result("switch.process.same_core", "process switch", "us", [2.0, 2.0, 2.1])
    c_ref = make_result("ref.lat_pipe.process.same_core", "C harness", "us", [1.0, 1.0, 1.1])
    by_id = {r.id: r for r in annotate(Measurement((ours, c_ref))).results}
    assert by_id[c_ref.id].verdict == "5.0× faster than the article's ~5 µs"
    assert by_id[ours.id].verdict == "judged on the C harness's figure (1.00 µs)"
    alone = annotate(Measurement((ours,))).results[0]
    assert alone.verdict == "2.5× faster than the article's ~5 µs"
