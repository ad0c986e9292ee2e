"""The kernel's switch counts without a kernel: filters, the background subtraction, the
skipped lines, and the words the counts become (findings, verdicts, the claims table)."""

import errno
import itertools

import pytest

from ostoolkit.claims import (
    CLAIMS,
    annotate,
    claim_findings,
    claims_table,
    judge_per_switch,
    kernel_counts,
    switch_evidence,
)
from ostoolkit.measure import trace
from ostoolkit.measure.blocks import Timing
from ostoolkit.measure.switchtrace import why_finding
from ostoolkit.report import Measurement, make_result


def test_the_filter_ioctl_is_iow_dollar_6_of_a_pointer():
    assert trace.PERF_EVENT_IOC_SET_FILTER == 0x40082406  # x86_64, aarch64: 8-byte pointers


def test_filters_keep_only_the_pair_and_split_kept_from_flushed():
    texts = trace.filters((10, 11))
    assert texts[trace.SWITCHED] == "prev_pid == 10 || prev_pid == 11"
    assert (
        texts[trace.KEPT] == "reason == 0 && pages == 0 && (common_pid == 10 || common_pid == 11)"
    )
    assert texts[trace.FLUSHED].startswith("reason == 0 && pages != 0 && (")


def _tracefs(tmp_path, events):
    for (subsystem, name), number in events.items():
        folder = tmp_path / "events" / subsystem / name
        folder.mkdir(parents=True)
        (folder / "id").write_text(f"{number}\n")
    return tmp_path


def test_tracepoint_id_reads_tracefs_and_names_what_is_missing(tmp_path):
    root = _tracefs(tmp_path, {("sched", "sched_switch"): 372})
    assert trace.tracepoint_id("sched", "sched_switch", root) == 372
    with pytest.raises(trace.TraceUnavailable, match="tlb:tlb_flush is missing"):
        trace.tracepoint_id("tlb", "tlb_flush", root)


def test_a_kernel_without_tlb_flush_counts_switches_and_says_what_it_skipped(tmp_path, monkeypatch):
    root = _tracefs(tmp_path, {("sched", "sched_switch"): 372})
    monkeypatch.setattr(trace, "TRACEFS", (root,))
    ids, skipped = trace.available_events()
    assert ids == {trace.SWITCHED: 372}
    assert skipped == [
        "address-space changes and TLB flushes not counted: "
        "tracepoint tlb:tlb_flush is missing from this kernel"
    ]


def test_no_sched_switch_means_nothing_is_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(trace, "TRACEFS", (tmp_path / "absent",))
    with pytest.raises(trace.TraceUnavailable, match="tracefs is not mounted"):
        trace.available_events()


def test_not_permitted_names_root_cap_perfmon_and_the_paranoid_setting(monkeypatch):
    monkeypatch.setattr(trace, "read_perf_paranoid", lambda: 2)
    why = trace._why(OSError(errno.EACCES, "Permission denied"))
    assert why == (
        "perf_event_open: EACCES, counting tracepoints on a CPU needs root or CAP_PERFMON "
        "(kernel.perf_event_paranoid is 2)"
    )


class FakeEvents:
    """Counters that a fake ping-pong advances: per call of baseline or rounds."""

    def __init__(self):
        self.counts = {trace.SWITCHED: 0, trace.KEPT: 0, trace.FLUSHED: 0}

    def read(self):
        return dict(self.counts)


def test_count_windows_subtracts_the_background_scaled_to_the_round_trips():
    events = FakeEvents()

    def baseline(n):  # alone: 2 switches in 1,000 ns (a preemption, say)
        events.counts[trace.SWITCHED] += 2
        return 1_000

    def rounds(n):  # 2n hops, each a switch and a kept TLB, plus 4 background in 2,000 ns
        events.counts[trace.SWITCHED] += 2 * n + 4
        events.counts[trace.KEPT] += 2 * n
        return 2_000

    timing = Timing(rounds=rounds, baseline=baseline, switches=lambda: (0, 0))
    counted = trace.count_windows(timing, events, rounds=100, windows=3)
    assert counted.per_hop[trace.SWITCHED] == [1.0, 1.0, 1.0]
    assert counted.per_hop[trace.KEPT] == [1.0] * 3
    assert counted.per_hop[trace.FLUSHED] == [0.0] * 3
    assert counted.hops == 600
    assert counted.gross[trace.SWITCHED] == 3 * 204
    assert counted.background[trace.SWITCHED] == 12.0
    assert counted.traced_round_us == [0.02] * 3


def _counts(process=(1.0, 0.0), thread=(0.0, 0.0), extra=None):
    results = []
    for model, (mm, flushes) in (("process", process), ("thread", thread)):
        for name, value in (("mm_switches_per_hop", mm), ("tlb_flushes_per_hop", flushes)):
            results.append(
                make_result(f"trace.{model}.{name}", name, "number", [value] * 5, extra=extra or {})
            )
    return results


def _switch(model, median, **extra):
    return make_result(
        f"switch.{model}.same_core", f"{model} switch", "us", [median] * 5, extra=extra
    )


def test_judge_per_switch_words():
    space, flush = CLAIMS["address_space_switch"], CLAIMS["tlb_flush"]
    assert "as the article says" in judge_per_switch(1.0, space)
    assert "kept, not flushed" in judge_per_switch(0.001, flush)
    assert "as the article says" in judge_per_switch(0.99, flush)
    assert "none, as the article says" in judge_per_switch(0.0, space, thread=True)
    assert "needs no change of address space" in judge_per_switch(0.5, space, thread=True)
    assert "some process switches only" in judge_per_switch(0.5, space)


def test_the_speedup_verdict_quotes_the_kernel_s_counts_where_taken():
    results = [_switch("process", 2.0), _switch("thread", 1.9), *_counts()]
    (finding,) = claim_findings(results)
    assert finding.endswith(
        "; counted by the kernel per switch: processes 1.00 address-space changes and 0.00 "
        "TLB flushes, threads 0.00 and 0.00"
    )


def test_the_speedup_verdict_says_cpuinfo_where_nothing_was_counted():
    process = _switch("process", 2.0, tlb_tagging="pcid", switch_counts="not permitted")
    (finding,) = claim_findings([process, _switch("thread", 1.9)])
    assert finding.endswith(
        "; TLB tagging from /proc/cpuinfo: pcid (switches not counted by the kernel)"
    )
    assert switch_evidence({}) is None


def test_why_finding_from_counts_then_from_cpuinfo():
    by_id = {
        r.id: r
        for r in (_switch("process", 2.0), _switch("thread", 1.9), *_counts(extra={"cpus": [1, 1]}))
    }
    counted = why_finding(by_id, "pcid")
    assert counted is not None
    assert counted.startswith("why, counted by the kernel")
    assert "on CPU 1" in counted
    assert "changed address space 1.00 times" in counted
    assert "keeps the TLB (pcid tags its entries" in counted
    flushing = {
        r.id: r for r in (*by_id.values(), *_counts(process=(1.0, 1.0), extra={"cpus": [1, 1]}))
    }
    assert "process switches flush the TLB" in (why_finding(flushing, "none") or "")
    inferred = {k: v for k, v in by_id.items() if not k.startswith("trace.")}
    said = why_finding(inferred, "pcid")
    assert said is not None
    assert said.startswith(
        "why (inferred from the CPU's pcid flag in /proc/cpuinfo, not counted by the kernel)"
    )
    assert why_finding(inferred, "none") is None


def test_kernel_counts_need_both_figures_of_a_model():
    results = _counts()
    assert kernel_counts({r.id: r for r in results}) == {
        "process": (1.0, 0.0),
        "thread": (0.0, 0.0),
    }
    only_mm = {r.id: r for r in results if "mm_" in r.id}
    assert kernel_counts(only_mm) == {}


def test_the_claims_table_has_a_row_per_count_or_one_saying_why_not():
    rows = claims_table(list(_counts()))["rows"]
    names = [row["claim"] for row in rows]
    assert names == [
        "address-space changes per process switch",
        "TLB flushes per process switch",
        "address-space changes per thread switch",
        "TLB flushes per thread switch",
    ]
    assert rows[1]["this host"] == "0.00 per switch (counted)"
    assert rows[1]["verdict"].startswith("0.00 per switch: kept, not flushed")
    why = "not permitted: root only"
    process = _switch("process", 2.0, tlb_tagging="pcid", switch_counts=why)
    (row,) = [r for r in claims_table([process])["rows"] if r["claim"].startswith("TLB")]
    assert row["this host"] == "not counted"
    assert row["verdict"] == f"not counted here: {why}; /proc/cpuinfo shows TLB tagging pcid"


def test_annotate_sets_the_claims_on_the_count_figures():
    annotated = annotate(Measurement(tuple(_counts()), (), ()))
    by_id = {r.id: r for r in annotated.results}
    assert by_id["trace.process.mm_switches_per_hop"].claim == "a change of address space"
    assert by_id["trace.thread.tlb_flushes_per_hop"].verdict.startswith("0.00 per switch: none")


@pytest.mark.parametrize("windows", [1, 4])
def test_every_window_is_a_sample(windows):
    events = FakeEvents()
    ticks = itertools.count(1)

    def rounds(n):
        events.counts[trace.SWITCHED] += 2 * n
        return 1_000 * next(ticks)

    timing = Timing(rounds=rounds, baseline=lambda n: 500, switches=lambda: (0, 0))
    counted = trace.count_windows(timing, events, rounds=10, windows=windows)
    assert len(counted.per_hop[trace.SWITCHED]) == windows == len(counted.traced_round_us)


P, Q = 101, 102  # the writer (preempted on its way out of write) and the woken reader


def _turns():
    E = trace.Event
    return [
        E(trace.ENTER, -2_000, Q),  # Q blocks in its read
        E(trace.SWITCH, 0, Q, P),  # P resumes: preempted earlier, its turn is not observed
        E(trace.ENTER, 1_000, P),
        E(trace.EXIT, 1_500, P),
        E(trace.ENTER, 2_000, P),  # P's write
        E(trace.WAKING, 2_500, P, Q),
        E(trace.EXIT, 3_000, P),
        E(trace.SWITCH, 4_000, P, Q),  # wake-up preemption on P's way out
        E(trace.EXIT, 5_000, Q),  # Q returns from its read
        E(trace.ENTER, 6_000, Q),
        E(trace.EXIT, 6_500, Q),
        E(trace.ENTER, 7_000, Q),  # Q blocks in its next read
        E(trace.SWITCH, 8_000, Q, P),
    ]


def test_decompose_splits_a_woken_task_s_turn_and_leaves_the_preempted_one_out():
    hops = trace.decompose(_turns(), (P, Q))
    assert hops.wake_to_run == [1.5]  # waking at 2.5 µs, switched to at 4
    assert hops.switch_path == [2.0]  # P's last exit at 3 µs to Q's return at 5
    assert hops.kernel == [2.5]  # 4→5, 6→6.5, 7→8
    assert hops.user == [1.5]  # 5→6, 6.5→7


def test_decompose_drops_turns_next_to_another_task():
    other = 999
    events = _turns()
    events[7] = trace.Event(trace.SWITCH, 4_000, P, other)  # P gives the CPU to someone else
    events.insert(8, trace.Event(trace.SWITCH, 4_500, other, Q))
    hops = trace.decompose(events, (P, Q))
    assert hops.kernel == []
    assert hops.switch_path == []


def _sample(type_id, tid, time_ns, fields):
    raw = bytearray(64)
    raw[0:2] = type_id.to_bytes(2, "little")
    for offset, value in fields.items():
        raw[offset : offset + 4] = value.to_bytes(4, "little", signed=True)
    body = trace.SAMPLE_FIXED.pack(tid, tid, time_ns, len(raw)) + bytes(raw)
    body += b"\0" * (-(len(body) + 8) % 8)
    return trace.RECORD_HEADER.pack(trace.PERF_RECORD_SAMPLE, 0, 8 + len(body)) + body


def test_parse_samples_reads_switches_wakings_system_calls_and_losses():
    kinds = {372: trace.SWITCH, 375: trace.WAKING, 842: "enter_read", 841: "exit_read"}
    lost = trace.RECORD_HEADER.pack(trace.PERF_RECORD_LOST, 0, 24) + (7).to_bytes(8, "little") * 2
    data = b"".join(
        (
            _sample(372, P, 10, {24: P, 56: Q}),
            _sample(375, P, 20, {24: Q}),
            _sample(842, Q, 30, {}),
            _sample(841, Q, 40, {}),
            _sample(1, Q, 50, {}),  # not one of ours: skipped
            lost,
        )
    )
    events, dropped = trace.parse_samples(data, kinds)
    assert events == [
        trace.Event(trace.SWITCH, 10, P, Q),
        trace.Event(trace.WAKING, 20, P, Q),
        trace.Event(trace.ENTER, 30, Q),
        trace.Event(trace.EXIT, 40, Q),
    ]
    assert dropped == 7


def test_timed_filters_name_the_pair_in_each_field():
    texts = trace.timed_filters((P, Q))
    assert texts[trace.WAKING] == f"pid == {P} || pid == {Q}"
    assert texts[trace.SWITCH] == (
        f"prev_pid == {P} || prev_pid == {Q} || next_pid == {P} || next_pid == {Q}"
    )
    assert texts["enter_write"] == f"common_pid == {P} || common_pid == {Q}"


def test_kernel_share_per_window():
    traced = trace.Traced(kernel=[3.0, 1.0], user=[1.0, 1.0])
    assert traced.kernel_share() == [0.75, 0.5]


SWITCH_FORMAT = """name: sched_switch
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:28;\tsize:4;\tsigned:1;
\tfield:char next_comm[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:pid_t next_pid;\toffset:60;\tsize:4;\tsigned:1;
"""
WAKING_FORMAT = """name: sched_waking
format:
\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:32;\tsize:4;\tsigned:1;
"""


def test_raw_layout_reads_this_kernel_s_offsets_and_refuses_a_missing_field(tmp_path):
    for name, text in (("sched_switch", SWITCH_FORMAT), ("sched_waking", WAKING_FORMAT)):
        folder = tmp_path / "events" / "sched" / name
        folder.mkdir(parents=True)
        (folder / "format").write_text(text)
    layout = trace.raw_layout(tmp_path)
    assert layout == {
        (trace.SWITCH, "prev_pid"): 28,
        (trace.SWITCH, "next_pid"): 60,
        (trace.WAKING, "pid"): 32,
    }
    record = _sample(372, P, 10, {28: P, 60: Q})
    events, _ = trace.parse_samples(record, {372: trace.SWITCH}, layout)
    assert events == [trace.Event(trace.SWITCH, 10, P, Q)]
    (tmp_path / "events/sched/sched_waking/format").write_text("name: sched_waking\n")
    with pytest.raises(trace.TraceUnavailable, match="has no 4-byte field pid"):
        trace.raw_layout(tmp_path)
