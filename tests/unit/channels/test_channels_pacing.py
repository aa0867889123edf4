"""Token bucket and reconnect backoff, with time passed in."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.channels.pacing import TokenBucket, backoff_delay


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [bucket.reserve(0.0) for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])


def test_try_take_never_goes_into_debt() -> None:
    bucket = TokenBucket(rate=2, burst=1, now=0.0)
    assert bucket.try_take(0.0)
    assert not bucket.try_take(0.1)
    assert bucket.try_take(0.5)


@given(st.floats(1, 5000), st.integers(1, 50), st.integers(1, 400))
def test_reserved_starts_never_exceed_rate_plus_burst(rate: float, burst: int, n: int) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    starts = [bucket.reserve(0.0) for _ in range(n)]
    assert starts == sorted(starts)
    # By time t at most burst + rate·t messages may have started.
    for index, start in enumerate(starts):
        assert index + 1 <= burst + rate * start + 1e-6


@given(st.integers(0, 100), st.integers(0, 2**32))
def test_backoff_is_bounded_and_jittered(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, initial=0.5, cap=30.0, rng=random.Random(seed))
    ceiling = min(30.0, 0.5 * 2**attempt)
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    rng = random.Random(1)
    lows = [backoff_delay(n, initial=0.5, cap=30.0, rng=rng) for n in range(10)]
    assert lows[3] >= 2.0  # ≥ half of 4 s
    assert lows[9] <= 30.0
