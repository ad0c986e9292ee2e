"""The article's claims, in one table; their verdicts in words; and ``annotate``, the one pass
that sets them (and the noise warnings) beside whatever measurement ran.

Source: Ben Dicken, "Processes and Threads", PlanetScale, 2025-09-24.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from ostoolkit.payloads import SummaryTable
from ostoolkit.report import Measurement, Result

# Within this factor of the article's figure a measurement is said to agree with it: the
# article gives round numbers ("~5 µs"), not a range.
AGREE_FACTOR = 1.25


@dataclass(frozen=True)
class Claim:
    """One figure the article states, with its words; a range when ``low`` is set."""

    key: str
    value: float
    unit: str
    text: str
    quote: str
    low: float | None = None

    @property
    def span(self) -> str:
        """The figure as the article gives it: "5–50" for a range, else the value."""
        if self.low is None:
            return f"{self.value:g}"
        return f"{self.low:g}–{self.value:g}"


MODELS = ("process", "thread")
# Stated as a decade ("hundreds", "tens of thousands"): ``value`` is its lower end.
CLAIMS: dict[str, Claim] = {claim.key: claim for claim in (
    Claim("context_switch", 5.0, "us", "~5 µs",
          "The full time of a context switch takes ~5 microseconds on modern CPUs"),
    Claim("thread_switch", 1.0, "us", "~1 µs",
          "switching between threads is ~5x faster than between processes (~1 µs)"),
    Claim("timeslice", 1.0, "ms", "milliseconds",
          "the OS multiplexes the CPU across processes by time slicing, typically "
          "milliseconds per slice"),
    Claim("processes_heavy", 1.0, "ratio", "processes are heavy",
          "Processes are heavy: there is memory overhead and a time overhead for managing them"),
    Claim("thread_speedup", 5.0, "ratio", "~5×",
          "thread switches are about five times faster than process switches"),
    Claim("pool_size", 50.0, "count", "5–50 connections",
          "a pooler funnels its clients into a small pool of server connections, 5–50", low=5.0),
    Claim("switches_per_second", 100.0, "per_s", "hundreds a second",
          "context switches happen hundreds of times per second"),
    Claim("instructions_per_switch", 10_000.0, "count", "tens of thousands of instructions",
          "a context switch executes tens of thousands of instructions"),
    Claim("instructions_per_second", 1e9, "per_s", "billions a second",
          "a CPU executes billions of instructions per second"),
    Claim("pooled_clients", 1000.0, "count", "thousands of clients",
          "a pooler lets thousands of clients share a few server connections"),
    Claim("address_space_switch", 1.0, "number", "a change of address space",
          "switching processes means the CPU must switch to another address space"),
    Claim("tlb_flush", 1.0, "number", "a TLB flush",
          "switching processes flushes the TLB; threads share one address space and do not"),
)}  # fmt: skip
# Per hop, a kernel count within this of 1 is "on every switch", below NONE_PER_HOP "none".
EVERY_PER_HOP, NONE_PER_HOP = (0.9, 1.1), 0.05

# "Milliseconds" read as one to a hundred: below is sub-millisecond, above a tenth of a second.
TIMESLICE_RANGE_MS = (1.0, 100.0)
# Server processes of the pooled model that are not backends: the pooler and the postmaster.
POOLED_NON_BACKENDS = 2


def judge_time(measured: float, claim: Claim) -> str:
    """Say in words how a measured duration compares with the article's figure."""
    if measured <= 0:
        return "not measurable here: the harness's own cost was as large as the switch"
    factor = claim.value / measured
    if 1 / AGREE_FACTOR <= factor <= AGREE_FACTOR:
        return f"agrees with the article's {claim.text} (×{measured / claim.value:.2f})"
    if factor > 1:
        return f"{factor:.1f}× faster than the article's {claim.text}"
    return f"{1 / factor:.1f}× slower than the article's {claim.text}"


def judge_speedup(process_us: float, thread_us: float) -> str:
    """Say how much faster threads switch than processes here, beside the article's ~5×."""
    claim = CLAIMS["thread_speedup"]
    said = f"the article says threads are {claim.text} faster"
    if process_us <= 0 or thread_us <= 0:
        return f"threads vs processes: not measurable here (a net figure was ≤ 0); {said}"
    ratio = process_us / thread_us
    if abs(ratio - 1) < 0.1:
        return f"threads and processes switch at about the same cost here (×{ratio:.2f}); {said}"
    if ratio > 1:
        return f"threads switch {ratio:.1f}× faster here; the article says {claim.text}"
    return (
        f"threads switch {1 / ratio:.1f}× slower than processes here; "
        f"the article says {claim.text} faster"
    )


def judge_timeslice(median_ms: float) -> str:
    """Say in words how the median slice compares with the article's "milliseconds"."""
    low, high = TIMESLICE_RANGE_MS
    if median_ms < low:
        return f"{median_ms:.2f} ms: shorter than a millisecond here"
    if median_ms > high:
        return f"{median_ms:.0f} ms: longer than the article's milliseconds (over {high:.0f} ms)"
    return f"{median_ms:.1f} ms: {CLAIMS['timeslice'].text}, as the article says"


def judge_heavier(process_bytes: float, thread_bytes: float) -> str:
    """Say how many threads' worth of memory one process costs here."""
    if thread_bytes <= 0:
        return "not comparable here: a thread's marginal cost measured ≤ 0"
    if process_bytes <= 0:
        return "not comparable here: a process's marginal cost measured ≤ 0"
    ratio = process_bytes / thread_bytes
    if ratio >= AGREE_FACTOR:
        return f"a process costs {ratio:,.1f}× a thread here: heavier, as the article says"
    if ratio > 1 / AGREE_FACTOR:
        return f"a process costs about a thread's memory here (×{ratio:.2f}); the article: heavier"
    return f"a process costs {1 / ratio:.1f}× less than a thread here; the article says heavier"


def judge_decade(measured: float, claim: Claim) -> str:
    """A figure against a claim stated as a decade: from ``claim.value`` to ten times it."""
    low, high = claim.value, claim.value * 10
    if low <= measured < high:
        return f"{measured:,.0f}: {claim.text}, as the article says"
    if measured >= high:
        return f"{measured:,.0f}: {measured / low:,.0f}× the article's {claim.text}"
    if measured <= 0:
        return f"none measured; the article says {claim.text}"
    shown = f"{measured:,.0f}" if measured >= 10 else f"{measured:.1f}"
    times = f"{low / measured:,.1f}"
    if times == "1.0":  # within rounding of the decade's lower end: no "1.0× fewer"
        return f"{shown}: just below the article's {claim.text}, about as it says"
    return f"{shown}: {times}× fewer than the article's {claim.text}"


def judge_per_switch(per_hop: float, claim: Claim, thread: bool = False) -> str:
    """A kernel count per switch (``trace.<model>.*_per_hop``) against the article's claim
    that a process switch does it every time and a thread switch (``thread``) never."""
    low, high = EVERY_PER_HOP
    every, none = low <= per_hop <= high, abs(per_hop) < NONE_PER_HOP
    said = f"{per_hop:.2f} per switch"
    if thread:
        if none:
            return f"{said}: none, as the article says (threads share one address space)"
        return f"{said}: the article says a thread switch needs no {claim.text.removeprefix('a ')}"
    if every:
        return f"{said}: {claim.text} on every process switch, as the article says"
    if none and claim.key == "tlb_flush":
        return f"{said}: kept, not flushed (the CPU tags TLB entries); the article says flushed"
    if none:
        return f"{said}: none counted; the article says {claim.text} on every process switch"
    return f"{said}: on some process switches only; the article says on every one"


def kernel_counts(by_id: Mapping[str, Result]) -> dict[str, tuple[float, float]]:
    """Per model, the kernel's counted address-space changes and TLB flushes per hop
    (``trace.<model>.mm_switches_per_hop``, ``tlb_flushes_per_hop``) where both were taken."""
    counts = {}
    for model in MODELS:
        mm = by_id.get(f"trace.{model}.mm_switches_per_hop")
        flushes = by_id.get(f"trace.{model}.tlb_flushes_per_hop")
        if mm is not None and flushes is not None:
            counts[model] = (mm.median, flushes.median)
    return counts


def switch_evidence(by_id: Mapping[str, Result]) -> str | None:
    """What explains processes against threads here, in a clause: the kernel's counts where
    taken, else the CPU's TLB tagging flag (/proc/cpuinfo) and why nothing was counted."""
    counts = kernel_counts(by_id)
    if "process" in counts and "thread" in counts:
        (p_mm, p_flush), (t_mm, t_flush) = counts["process"], counts["thread"]
        return (
            f"counted by the kernel per switch: processes {p_mm:.2f} address-space changes and "
            f"{p_flush:.2f} TLB flushes, threads {t_mm:.2f} and {t_flush:.2f}"
        )
    process = by_id.get("switch.process.same_core")
    tagging = process.extra.get("tlb_tagging") if process else None
    if not isinstance(tagging, str) or tagging in ("unknown", ""):
        return None
    return f"TLB tagging from /proc/cpuinfo: {tagging} (switches not counted by the kernel)"


def pooled_backends(result: Result) -> int:
    """The backends a pooled run's server processes (``conn.pooled.<N>.procs``) held."""
    return int(result.median) - POOLED_NON_BACKENDS


def pooled_clients(result: Result) -> int:
    """The client count a connections result was measured at (its ``extra.clients``)."""
    clients = result.extra.get("clients")
    return clients if isinstance(clients, int) else 0


def judge_pool(result: Result) -> str | None:
    """PgBouncer's PostgreSQL backends at a client count, against the article's 5-50 pool."""
    backends = result.extra.get("backends")
    if not isinstance(backends, int):
        return None
    claim = CLAIMS["pool_size"]
    where = "within" if (claim.low or 0.0) <= backends <= claim.value else "outside"
    return (
        f"{backends} PostgreSQL backends for {pooled_clients(result)} clients: {where} the "
        f"article's {claim.text}"
    )


def judge_pooled_clients(result: Result) -> str:
    """Whether PgBouncer took every client, and whether that was the article's thousands."""
    clients, refused = pooled_clients(result), int(result.median)
    if refused:
        return f"refused {refused} of {clients} clients"
    if clients >= CLAIMS["pooled_clients"].value:
        return f"served all {clients} clients: agrees with the article's thousands"
    return f"served all {clients} clients; the article speaks of thousands: try --clients 1000"


# A verdict for one result, given every result of the measurement by id; None: no claim here.
Judge = Callable[[Result, Mapping[str, Result]], str | None]


@dataclass(frozen=True)
class Rule:
    """Which results (an id pattern) the article speaks about, with which claim and verdict."""

    pattern: str
    claim: str
    judge: Judge
    words: str = "{text}"

    def claim_text(self) -> str:
        """The claim's words as the result carries them."""
        return self.words.format(text=CLAIMS[self.claim].text)


def _heavier(result: Result, by_id: Mapping[str, Result]) -> str | None:
    """A process model's USS per worker against a thread's, when threads were measured."""
    thread = by_id.get("memory.thread.uss_per_worker")
    if thread is None or result.id == thread.id:
        return None
    return judge_heavier(result.median, thread.median)


def _pooled(result: Result, _: Mapping[str, Result]) -> str:
    """A built-in pooled run: the backends its clients were funnelled into."""
    return f"{pooled_backends(result)} backends for {pooled_clients(result)} clients"


def _against_claim(pattern: str, claim: str, judge: Callable[[float, Claim], str]) -> Rule:
    """A rule that judges a result's median against its claim's figure."""
    return Rule(pattern, claim, lambda result, _: judge(result.median, CLAIMS[claim]))


def switch_figure(by_id: Mapping[str, Result], model: str) -> tuple[Result | None, str]:
    """The figure the article's switch claims are judged on for ``model``, and whose it is: the
    C harness's (the kernel's switch) where it ran beside ours, else ostoolkit's own."""
    reference = by_id.get(f"ref.lat_pipe.{model}.same_core")
    if reference is not None:
        return reference, "C harness"
    return by_id.get(f"switch.{model}.same_core"), "ostoolkit"


def _switch_rule(pattern: str, model: str, claim: str) -> Rule:
    """Ours judged against the claim unless the C harness ran beside it: then its figure is."""

    def judge(result: Result, by_id: Mapping[str, Result]) -> str | None:
        reference = by_id.get(f"ref.lat_pipe.{model}.same_core")
        if reference is not None and reference.id != result.id:
            return f"judged on the C harness's figure ({reference.median:.2f} µs)"
        return judge_time(result.median, CLAIMS[claim])

    return Rule(pattern.format(model), claim, judge)


def _per_switch_rule(model: str, name: str, claim: str) -> Rule:
    """A kernel count per switch of ``model`` judged against the claim (``judge_per_switch``)."""

    def judge(result: Result, _: Mapping[str, Result]) -> str:
        return judge_per_switch(result.median, CLAIMS[claim], thread=model == "thread")

    return Rule(f"trace.{model}.{name}", claim, judge)


POOL_WORDS = "a pool of {text}"
# Cross-core switch figures are wake-up latencies across CPUs, not the switch the article
# describes, so they carry no claim.
RULES: tuple[Rule, ...] = (
    *(
        _switch_rule(pattern, model, claim)
        for pattern in ("switch.{}.same_core", "ref.lat_pipe.{}.same_core")
        for model, claim in (("process", "context_switch"), ("thread", "thread_switch"))
    ),
    Rule("sched.timeslice", "timeslice", lambda r, _: judge_timeslice(r.median)),
    Rule("memory.*.uss_per_worker", "processes_heavy", _heavier),
    Rule("conn.pooled.*.procs", "pool_size", _pooled, words=POOL_WORDS),
    Rule("conn.pgbouncer.*.procs", "pool_size", lambda r, _: judge_pool(r), words=POOL_WORDS),
    Rule("conn.pgbouncer.*.refused", "pooled_clients", lambda r, _: judge_pooled_clients(r)),
    _against_claim("rate.switches_per_s", "switches_per_second", judge_decade),
    _against_claim("switch.*.instructions", "instructions_per_switch", judge_decade),
    _against_claim("rate.instructions_per_s", "instructions_per_second", judge_decade),
    *(
        _per_switch_rule(model, name, claim)
        for model in MODELS
        for name, claim in (
            ("mm_switches_per_hop", "address_space_switch"),
            ("tlb_flushes_per_hop", "tlb_flush"),
        )
    ),
)

# The verdict of a row whose figure the article does not put a number on.
NO_CLAIM = "measured, no claim"
# The sections (an id's first part) whose figures come many to a run: each model's USS, PSS
# and RSS; each client count's seven figures. Their noisy figures share one warning, not dozens.
GROUPED_SECTIONS = {"memory": "memory", "conn": "connections"}


def noise_warning(result: Result) -> str:
    """The warning for one figure that is not ``ok``: its label, status and the notes why."""
    return f"{result.label} is {result.status}: {'; '.join(result.notes)}"


def noise_warnings(results: Sequence[Result]) -> list[str]:
    """A warning for every figure that is not ``ok``, in the results' order; several from one
    grouped section share a single warning, placed where their first one's would be."""
    flagged = [r for r in results if r.status != "ok"]
    sections: dict[str, list[Result]] = {}
    for result in flagged:
        sections.setdefault(result.id.split(".", 1)[0], []).append(result)
    warnings = []
    for result in flagged:
        section = result.id.split(".", 1)[0]
        group = sections[section]
        if section not in GROUPED_SECTIONS or len(group) == 1:
            warnings.append(noise_warning(result))
        elif result is group[0]:  # one for the section, each label with its status
            listed = ", ".join(f"{r.label} ({r.status})" for r in group)
            warnings.append(
                f"{len(group)} {GROUPED_SECTIONS[section]} figures are not ok (the JSON report's "
                f"notes say why): {listed}"
            )
    return warnings


def untrusted(*figures: Result) -> str | None:
    """The verdict for a claim resting on a figure its own run distrusts (noisy, bimodal,
    throttled): none, and why; None when every figure is ok. A verdict on such a figure
    would read as a finding about the host when it is one about the run."""
    for figure in figures:
        if figure.status != "ok":
            which = f"{figure.label} is " if len(figures) > 1 else ""
            return f"not judged: {which}{figure.status}"
    return None


def with_claim(result: Result, by_id: Mapping[str, Result]) -> Result:
    """The result with the article's claim and a verdict beside it, if a rule covers it
    (no verdict on a figure that is not ok: ``untrusted``)."""
    for rule in RULES:
        if fnmatchcase(result.id, rule.pattern):
            verdict = rule.judge(result, by_id)
            if verdict is not None:
                verdict = untrusted(result) or verdict
                return replace(result, claim=rule.claim_text(), verdict=verdict)
    return result


def claim_findings(results: Sequence[Result]) -> list[str]:
    """The findings that judge a claim on several figures at once: threads against
    processes, and the pooler's backends and clients at PgBouncer's largest client count."""
    by_id = {r.id: r for r in results}
    findings = []
    (process, whose), (thread, _) = switch_figure(by_id, "process"), switch_figure(by_id, "thread")
    if process and thread:
        withheld = untrusted(process, thread)
        claim = CLAIMS["thread_speedup"].text
        evidence = switch_evidence(by_id)
        verdict = (
            f"threads vs processes (the article: {claim} faster): {withheld}"
            if withheld
            else f"{judge_speedup(process.median, thread.median)} ({whose})"
        )
        findings.append(f"{verdict}; {evidence}" if evidence else verdict)
    pgbouncer = [r for r in results if fnmatchcase(r.id, "conn.pgbouncer.*.procs")]
    if procs := max(pgbouncer, key=lambda r: int(r.id.split(".")[2]), default=None):
        if pool := judge_pool(procs):
            findings.append(f"PgBouncer: {pool}")
        if refused := by_id.get(procs.id.removesuffix(".procs") + ".refused"):
            findings.append(f"PgBouncer {judge_pooled_clients(refused)}")
    return findings


def annotate(measurement: Measurement) -> Measurement:
    """Set the article's claims and verdicts beside the results, judge the claims resting on several
    figures (first among the findings), and warn about figures not ``ok``. Idempotent, so that a
    part and the whole it is merged into may both be annotated."""
    by_id = {r.id: r for r in measurement.results}
    results = tuple(with_claim(r, by_id) for r in measurement.results)
    found = set(measurement.findings)
    judged = [f for f in claim_findings(results) if f not in found]
    said = set(measurement.warnings)
    added = [w for w in noise_warnings(results) if w not in said]
    return replace(
        measurement,
        results=results,
        findings=(*judged, *measurement.findings),
        warnings=(*measurement.warnings, *added),
    )


def _row(name: str, key: str | None, here: str, verdict: str, *figures: Result) -> dict[str, str]:
    """One row of "the article vs this host" (``key`` names the claim; None: not stated); no
    verdict where a figure it rests on is not trusted by its own run (``untrusted``)."""
    article = CLAIMS[key].text if key else "(not stated)"
    verdict = untrusted(*figures) or verdict
    return {"claim": name, "the article": article, "this host": here, "verdict": verdict}


def _judged(
    name: str, figure: Result, key: str, here: str, judge: Callable[[float, Claim], str]
) -> dict[str, str]:
    """The row of one figure whose median ``judge`` weighs against the claim ``key``."""
    return _row(name, key, here, judge(figure.median, CLAIMS[key]), figure)


def article_rows(results: Sequence[Result]) -> list[dict[str, str]]:
    """Each of the article's claims beside what this host measured, with a verdict; issue 14's
    rates, cycles, rings and Python's own switches where this run measured them."""
    by_id = {r.id: r for r in results}
    rows = []
    (process, whose), (thread, thread_whose) = (switch_figure(by_id, m) for m in MODELS)
    if process:
        here = f"{process.median:.2f} µs ({whose})"
        rows.append(_judged("context switch", process, "context_switch", here, judge_time))
    if thread:
        here = f"{thread.median:.2f} µs ({thread_whose})"
        rows.append(_judged("thread switch", thread, "thread_switch", here, judge_time))
    if process and thread and thread.median > 0:
        here = f"{process.median / thread.median:.2f}× ({whose})"
        verdict = judge_speedup(process.median, thread.median)
        rows.append(_row("threads switch faster", "thread_speedup", here, verdict, process, thread))
    rows += switch_count_rows(by_id)
    if slice_ := by_id.get("sched.timeslice"):
        verdict = judge_timeslice(slice_.median)
        rows.append(_row("time slice", "timeslice", f"{slice_.median:.2f} ms", verdict, slice_))
    pools = [r for r in results if r.id.startswith("conn.pooled.") and r.id.endswith(".procs")]
    if pooled := max(pools, key=pooled_clients, default=None):  # the largest client count
        backends, clients = pooled_backends(pooled), pooled_clients(pooled)
        verdict = f"{backends} server connections served {clients} clients"
        rows.append(_row("pool size", "pool_size", f"{backends} backends", verdict, pooled))
    p_mem = by_id.get("memory.process.uss_per_worker")
    t_mem = by_id.get("memory.thread.uss_per_worker")
    if p_mem and t_mem:
        here = f"{p_mem.median / 2**10:.0f} KiB vs {t_mem.median / 2**10:.0f} KiB"
        verdict = judge_heavier(p_mem.median, t_mem.median)
        rows.append(_row("processes are heavier", "processes_heavy", here, verdict, p_mem, t_mem))
    if rate := by_id.get("rate.switches_per_s"):
        here = f"{rate.median:,.0f}/s"
        rows.append(_judged("switches per second", rate, "switches_per_second", here, judge_decade))
        if why := rate.extra.get("pmu_unavailable"):  # no hardware counters: said, not guessed
            for name in ("instructions per switch", "instructions per second"):
                key = name.replace(" ", "_")
                rows.append(_row(name, key, "not counted", f"not measurable here: {why}"))
    if ips := by_id.get("rate.instructions_per_s"):
        here = f"{ips.median / 1e9:.2f} billion/s"
        rows.append(
            _judged("instructions per second", ips, "instructions_per_second", here, judge_decade)
        )
    for model in ("process", "thread"):
        if instructions := by_id.get(f"switch.{model}.instructions"):
            name, here = f"instructions per {model} switch", f"{instructions.median:,.0f}"
            rows.append(_judged(name, instructions, "instructions_per_switch", here, judge_decade))
        if cycles := by_id.get(f"switch.{model}.cycles"):
            rows.append(_row(f"cycles per {model} switch", None, f"{cycles.median:,.0f}", NO_CLAIM))
        rings = [r for r in results if r.id.startswith(f"ring.{model}.") and r.id.count(".") == 2]
        # the largest ring without a working set: ring.<model>.<N>
        if ring := max(rings, key=lambda r: int(r.id.rsplit(".", 1)[1]), default=None):
            name = f"{model} switch in a ring of {ring.extra.get('tasks')}"
            rows.append(_judged(name, ring, "context_switch", f"{ring.median:.2f} µs", judge_time))
    for layer, name in (("gil", "Python GIL hand-off"), ("asyncio", "Python asyncio switch")):
        if python := by_id.get(f"switch.python.{layer}"):
            rows.append(_row(name, None, f"{python.median:.2f} µs", NO_CLAIM))
    return rows


def switch_count_rows(by_id: Mapping[str, Result]) -> list[dict[str, str]]:
    """The rows of what the kernel counted per switch (address-space changes, TLB flushes),
    for processes and threads; where they were not counted but switches were measured, one
    row that says why (``switch_counts`` of the process switch figure)."""
    rows = []
    for model in MODELS:
        for name, key in (
            ("mm_switches_per_hop", "address_space_switch"),
            ("tlb_flushes_per_hop", "tlb_flush"),
        ):
            if (figure := by_id.get(f"trace.{model}.{name}")) is None:
                continue
            what = "address-space changes" if key == "address_space_switch" else "TLB flushes"
            verdict = judge_per_switch(figure.median, CLAIMS[key], model == "thread")
            here = f"{figure.median:.2f} per switch (counted)"
            rows.append(_row(f"{what} per {model} switch", key, here, verdict, figure))
    process = by_id.get("switch.process.same_core")
    why = process.extra.get("switch_counts") if process else None
    if not rows and isinstance(why, str) and why != "tracepoints":
        tagging = process.extra.get("tlb_tagging", "unknown") if process else "unknown"
        verdict = f"not counted here: {why}; /proc/cpuinfo shows TLB tagging {tagging}"
        rows.append(_row("TLB flushes per process switch", "tlb_flush", "not counted", verdict))
    return rows


def claims_table(results: Sequence[Result]) -> SummaryTable:
    """The report's "the article vs this host" table (``data.table``) for these results."""
    columns = [[key, "text"] for key in ("claim", "the article", "this host", "verdict")]
    return {"columns": columns, "rows": article_rows(results), "note": ""}
