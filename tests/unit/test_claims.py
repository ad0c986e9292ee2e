from ostoolkit.claims import CLAIMS, judge_speedup, judge_time


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
