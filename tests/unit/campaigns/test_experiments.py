"""A/B rules: stable assignment, sound winners, honest "no difference"."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.campaigns.experiments import Arm, Split, decide, p_better, wilson


@given(campaign=st.integers(1, 10**6), contact=st.integers(1, 10**9))
def test_assignment_is_stable(campaign: int, contact: int) -> None:
    split = Split((50, 50), holdout=5, test=20)
    assert split.assign(campaign, contact) == split.assign(campaign, contact)


def test_assignment_follows_the_shares() -> None:
    split = Split((60, 40), holdout=5, test=20)
    seen = Counter(split.assign(7, contact) for contact in range(100_000))
    assert abs(seen[("holdout", None)] / 100_000 - 0.05) < 0.005
    tested = seen[("test", 0)] + seen[("test", 1)]
    assert abs(tested / 100_000 - 0.95 * 0.20) < 0.006
    assert abs(seen[("test", 0)] / tested - 0.6) < 0.02
    assert abs(seen[("rollout", None)] / 100_000 - 0.95 * 0.80) < 0.006


def test_splits_are_validated() -> None:
    with pytest.raises(ValueError, match="2 to 5"):
        Split((100,))
    with pytest.raises(ValueError, match="positive"):
        Split((50, 0))


def simulate(rates: list[float], n: int, rng: random.Random) -> list[Arm]:
    return [
        Arm(f"v{i}", n, sum(rng.random() < rate for _ in range(n))) for i, rate in enumerate(rates)
    ]


@pytest.mark.parametrize("variants", [2, 3, 5])
def test_identical_variants_rarely_produce_a_winner(variants: int) -> None:
    """The stated level holds: with equal true rates a winner appears ≤ 5% of runs."""
    rng = random.Random(variants)
    runs = 300
    false_winners = sum(
        decide(simulate([0.05] * variants, 1000, rng), "click_rate", draws=0).winner is not None
        for _ in range(runs)
    )
    assert false_winners / runs <= 0.05 + 0.02  # 0.05 plus sampling slack (≈2 s.e.)


def test_a_real_difference_is_found_and_named() -> None:
    rng = random.Random(1)
    found = [decide(simulate([0.05, 0.08], 3000, rng), "click_rate", draws=0) for _ in range(50)]
    assert sum(d.winner == 1 for d in found) >= 45  # power ≈ 0.98 at these sizes
    assert all(d.winner in (None, 1) for d in found)
    assert "显著更好" in next(d for d in found if d.winner == 1).reason


def test_no_difference_sends_the_fallback_and_says_so() -> None:
    decision = decide([Arm("A", 1000, 50), Arm("B", 1000, 52)], "click_rate", fallback=0)
    assert decision.winner is None and decision.chosen == 0
    assert "无显著差异" in decision.reason


def test_too_few_messages_decide_nothing() -> None:
    decision = decide([Arm("A", 50, 1), Arm("B", 50, 20)], "click_rate", min_trials=100)
    assert decision.winner is None and "样本不足" in decision.reason


def test_revenue_per_message_uses_the_spread() -> None:
    steady = Arm("A", 1000, total=10_000, total_sq=1000 * 10**2 + 999 * 1)  # ≈ 10 ± 1
    better = Arm("B", 1000, total=10_500, total_sq=1000 * 10.5**2 + 999 * 1)
    assert p_better(better, steady, "revenue_per_message") < 0.001
    assert decide([steady, better], "revenue_per_message").winner == 1


@given(successes=st.integers(0, 500), extra=st.integers(0, 500))
def test_wilson_interval_holds_the_observed_rate(successes: int, extra: int) -> None:
    trials = successes + extra
    interval = wilson(successes, trials)
    observed = successes / trials if trials else 0.5
    assert 0 <= interval.low <= observed <= interval.high <= 1
