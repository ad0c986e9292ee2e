"""ostoolkit.units: numbers with units as text, for table cells and for sentences."""

import pytest

from ostoolkit.units import (
    format_kib,
    format_range,
    format_size,
    format_times,
    format_us,
    format_value,
)


def test_format_value():
    assert format_value(2.5, "us") == "2.50 µs"
    assert format_value(0.1234, "us") == "0.123 µs"
    assert format_value(123.4, "ms") == "123.4 ms"
    assert format_value(2048, "bytes") == "2.0 KiB"
    assert format_value(3.0, "count") == "3"
    assert format_value(1.0, "number") == "1.00"
    assert format_value(None, "us") == ""


def test_format_value_factor_and_percent():
    # a ratio between hosts: two decimals around 1, so 1.00× and 0.99× line up in a column
    assert format_value(1.0654, "factor") == "1.07×"
    assert format_value(0.9996, "factor") == "1.00×"
    assert format_value(0.837, "factor") == "0.84×"
    assert format_value(0.0312, "factor") == "0.031×"
    assert format_value(12.34, "factor") == "12.3×"
    assert format_value(1234.0, "factor") == "1,234×"
    assert format_value(1.031, "factor_bound") == "1.03"
    assert format_value(0.05, "percent") == "5 %"
    assert format_value(0.025, "percent") == "2.5 %"
    assert format_value(0.123, "percent") == "12 %"


def test_format_value_bytes_in_binary_units():
    assert format_value(512, "bytes") == "512 B"
    assert format_value(5 * 2**20, "bytes") == "5.0 MiB"
    assert format_value(3 * 2**40, "bytes") == "3,072.0 GiB"
    assert format_value(2.5, "bool") == "2.50"  # not a whole number: a figure, bare
    assert format_value(1500.0, "per_s") == "1,500/s"


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (2000.0, "2,000×"),
        (30.4, "30×"),
        (1.44, "1.4×"),
        (100.0, "100×"),
        (4.46, "4.5×"),
        (0.8, "0.8×"),
    ],
)
def test_format_times(ratio, text):
    assert format_times(ratio) == text


def test_sentence_sizes_and_durations():
    assert [format_us(us) for us in (2.345, 140.4, 1234.0)] == ["2.3 µs", "140 µs", "1.2 ms"]
    assert [format_kib(kib) for kib in (84, 2156)] == ["84 KiB", "2.1 MiB"]
    assert [format_size(size) for size in (135_000, 1.5 * 2**20, -(2**21))] == [
        "132 KiB",
        "1.50 MiB",
        "-2.00 MiB",
    ]


def test_a_range_says_its_unit_once_where_both_ends_share_it():
    assert format_range(1.98, 2.21, "us") == "1.98–2.21 µs"
    assert format_range(1.0, 1.0, "us") == "1.00 µs"
    assert format_range(100, 1200, "per_s") == "100.0–1,200/s"
    assert format_range(512.0, 2 * 2**20, "bytes") == "512 B–2.0 MiB"
    assert format_range(None, 2.0, "us") == "?–2.00 µs"
