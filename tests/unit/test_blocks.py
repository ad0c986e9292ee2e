"""The one block sampler (measure.blocks): calibration, warm-up, interleaving and counting.

The timed work is fake: each callable records its call and returns a fixed time per round.
"""

import contextlib
import itertools

from ostoolkit.measure.blocks import (
    MAX_ROUNDS,
    MIN_ROUNDS,
    Calibration,
    Gathered,
    Sampling,
    Timing,
    block_sizes,
    take_block,
    take_rounds,
)


def test_rounds_are_calibrated_within_bounds():
    # 200 round trips took 2 ms: 10 µs each, so 50 ms is 5000 round trips
    assert Calibration(0.05).rounds_for(2_000_000) == 5000
    assert Calibration(0.05).rounds_for(10**12) == MIN_ROUNDS
    assert Calibration(0.05).rounds_for(0) == MAX_ROUNDS
    assert Calibration(0.02, probe=5, bounds=(5, 50)).rounds_for(10**6) == 50


def test_samples_are_split_into_even_blocks_larger_first():
    assert block_sizes(10, 3) == [4, 3, 3]
    assert block_sizes(2, 5) == [1, 1]
    assert block_sizes(1, 1) == [1]


def fake_timing(calls: list[str], **options: object) -> Timing:
    """Rounds of 10 µs and a baseline of 1 µs a hop; 100 voluntary, 10 involuntary a sample."""
    counter = itertools.count()

    def rounds(n: int) -> int:
        calls.append(f"rt{n}")
        return 10_000 * n

    def baseline(n: int) -> int:
        calls.append(f"base{n}")
        return 1_000 * n

    def switches() -> tuple[int, int]:
        step = next(counter)
        return 100 * step, 10 * step

    return Timing(rounds, baseline, switches, **options)  # type: ignore[arg-type]


def test_the_first_block_calibrates_then_every_block_warms_up_and_interleaves():
    calls: list[str] = []
    steps: list[int] = []
    gathered = Gathered()
    timing = fake_timing(calls, reference=lambda n: 500 * n)
    calibration = Calibration(0.001)  # 1 ms / 10 µs = 100 rounds
    take_block(timing, calibration, 2, gathered, steps.append)
    warm_and_probe = ["rt200", "rt200"]
    assert calls == [*warm_and_probe, *["base100", "rt100"] * 3]
    take_block(timing, calibration, 1, gathered, steps.append)  # no calibration again
    assert calls[8:] == ["base100", "rt100"] * 2
    assert gathered.rounds == 100
    assert gathered.round_us == [10.0] * 3
    assert gathered.baseline_us == [1.0] * 3
    assert gathered.reference_us == [0.5] * 3
    assert gathered.block_sizes == [2, 1]
    assert gathered.hops == 600
    assert gathered.per_hop() == (0.5, 0.05)
    assert gathered.switches_per_hop == [0.55] * 3
    assert sum(steps) == 1 + 3  # the first warm-up once, then one per sample


def test_fixed_rounds_skip_calibration_and_the_baseline_is_the_reference_by_default():
    calls: list[str] = []
    gathered = Gathered()
    take_block(fake_timing(calls), Calibration(0.05, fixed=7), 1, gathered)
    assert calls == ["base7", "rt7", "base7", "rt7"]
    assert gathered.rounds == 7
    assert gathered.reference_us == gathered.baseline_us == [1.0]


def test_a_ring_counts_its_hops_per_lap_and_where_records_the_cpus():
    calls: list[str] = []
    gathered = Gathered()
    where = iter([(0, 1), (1, 1)])
    timing = fake_timing(calls, hops_per_round=8, where=lambda: next(where))
    take_block(timing, Calibration(0.05, fixed=10), 2, gathered)
    assert gathered.hops == 2 * 10 * 8
    assert gathered.switches_per_hop == [110 / 80] * 2
    assert gathered.cpus_seen == {(0, 1), (1, 1)}


def test_figures_take_their_blocks_in_rounds_each_block_in_a_fresh_context():
    events: list[str] = []

    def fresh(name: str):
        @contextlib.contextmanager
        def start():
            events.append(f"{name} starts")
            yield fake_timing([])
            events.append(f"{name} ends")

        return start

    steps: list[int] = []
    figures = {"a": fresh("a"), "b": fresh("b")}
    gathered = take_rounds(figures, Sampling(repeat=5, blocks=2, iterations=3), steps.append)
    assert events == ["a starts", "a ends", "b starts", "b ends"] * 2
    assert [g.block_sizes for g in gathered.values()] == [[3, 2], [3, 2]]
    assert [g.rounds for g in gathered.values()] == [3, 3]
    assert sum(steps) == 2 * (1 + 5)


def test_sampling_presets_and_their_calibration():
    full, quick = Sampling.full(), Sampling.quick()
    assert full == Sampling()
    assert (quick.repeat, quick.target_sample_s) == (15, 0.02)
    assert Sampling(iterations=7).calibration == Calibration(0.05, fixed=7)
