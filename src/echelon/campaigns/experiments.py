"""Pure rules of A/B tests: who gets which variant, and whether a winner is real.

Assignment is a hash of (campaign, contact) onto 10,000 buckets, so planning again never
moves a person between variants, and the holdout, the test share and each variant's
split are bucket ranges. The winner is chosen only when the data say so: the best
variant must beat every other one in a one-sided test at the stated confidence, with
the level divided among the comparisons (two-sided, Bonferroni), so that with k identical variants
a "winner" is declared by chance at most ``1 - confidence`` of the time. Otherwise the
decision is "no significant difference" and the configured fallback is sent.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

BUCKETS = 10_000
Metric = Literal["click_rate", "conversion_rate", "revenue_per_message", "delivery_rate"]
_NORMAL = NormalDist()


def bucket(campaign_id: int, contact_id: int) -> int:
    """A contact's stable bucket in [0, 10000) for this campaign."""
    digest = hashlib.blake2b(f"{campaign_id}:{contact_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True, slots=True)
class Split:
    """Shares in percent: ``holdout`` gets nothing; ``test`` (of the rest, when testing
    before a roll-out; 100 for a pure split) receives the variants by ``weights``."""

    weights: tuple[float, ...]
    holdout: float = 0.0
    test: float = 100.0

    def __post_init__(self) -> None:
        if not 2 <= len(self.weights) <= 5:
            raise ValueError("an A/B test has 2 to 5 variants")
        if any(w <= 0 for w in self.weights):
            raise ValueError("every variant needs a positive share")
        if not 0 <= self.holdout < 50 or not 0 < self.test <= 100:
            raise ValueError("holdout must be 0–50% and the test share 0–100%")

    def assign(self, campaign_id: int, contact_id: int) -> tuple[str, int | None]:
        """("holdout", None) | ("test", variant index) | ("rollout", None): the rest,
        who get the winner once it is chosen."""
        b = bucket(campaign_id, contact_id)
        holdout = round(self.holdout * BUCKETS / 100)
        if b < holdout:
            return "holdout", None
        rest = BUCKETS - holdout
        position = b - holdout
        tested = round(rest * self.test / 100)
        if position >= tested:
            return "rollout", None
        total = sum(self.weights)
        edge = 0.0
        for index, weight in enumerate(self.weights):
            edge += tested * weight / total
            if position < edge:
                return "test", index
        return "test", len(self.weights) - 1


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant's outcome on the metric: ``successes`` of ``trials`` for a rate;
    for revenue per message, ``total`` and ``total_sq`` (sum of squares) of ``trials``."""

    name: str
    trials: int
    successes: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def mean(self, metric: Metric) -> float:
        if self.trials == 0:
            return 0.0
        if metric == "revenue_per_message":
            return self.total / self.trials
        return self.successes / self.trials

    def variance(self, metric: Metric) -> float:
        """The variance of the mean."""
        if self.trials < 2:
            return math.inf
        if metric == "revenue_per_message":
            mean = self.total / self.trials
            sample = max(0.0, (self.total_sq - self.trials * mean * mean) / (self.trials - 1))
            return sample / self.trials
        p = self.successes / self.trials
        return p * (1 - p) / self.trials


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval of a proportion (sound at small counts and 0%)."""
    if trials == 0:
        return Interval(0.0, 1.0)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # Clamped to the observed rate: rounding must not put 100% outside its own interval.
    return Interval(max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def interval(arm: Arm, metric: Metric, confidence: float = 0.95) -> Interval:
    if metric != "revenue_per_message":
        return wilson(arm.successes, arm.trials, confidence)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(arm.variance(metric)) if arm.trials >= 2 else math.inf
    mean = arm.mean(metric)
    return Interval(mean - half, mean + half)


def p_better(a: Arm, b: Arm, metric: Metric) -> float:
    """One-sided p-value that ``a`` is better than ``b`` (two-proportion z-test with the
    pooled variance for rates; Welch's z for revenue)."""
    if a.trials == 0 or b.trials == 0:
        return 1.0
    diff = a.mean(metric) - b.mean(metric)
    if metric == "revenue_per_message":
        se = math.sqrt(a.variance(metric) + b.variance(metric))
    else:
        pooled = (a.successes + b.successes) / (a.trials + b.trials)
        se = math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials))
    if se == 0 or math.isinf(se):
        return 1.0 if diff <= 0 else 0.0
    return 1 - _NORMAL.cdf(diff / se)


def probability_to_beat_all(
    arms: Sequence[Arm], metric: Metric, *, draws: int = 4000, seed: int = 0
) -> list[float]:
    """Bayesian companion figure: the chance each arm is the best, from Beta(1+s, 1+f)
    posteriors for rates or normal posteriors for revenue, by simulation."""
    rng = random.Random(seed)
    wins = [0] * len(arms)
    for _ in range(draws):
        if metric == "revenue_per_message":
            samples = [
                rng.gauss(arm.mean(metric), math.sqrt(arm.variance(metric)))
                if arm.trials >= 2
                else -math.inf
                for arm in arms
            ]
        else:
            samples = [
                rng.betavariate(1 + arm.successes, 1 + arm.trials - arm.successes) for arm in arms
            ]
        wins[max(range(len(arms)), key=samples.__getitem__)] += 1
    return [w / draws for w in wins]


@dataclass(frozen=True, slots=True)
class Decision:
    winner: int | None  # index of the winning arm, None: no significant difference
    chosen: int  # what is sent to the rest: the winner, else the fallback
    p_value: float  # the largest adjusted one-sided p of the best against the others
    confidence: float
    probability_best: tuple[float, ...]
    reason: str


def decide(
    arms: Sequence[Arm],
    metric: Metric,
    *,
    confidence: float = 0.95,
    fallback: int = 0,
    min_trials: int = 100,
    draws: int = 2000,
) -> Decision:
    """Pick the winner, or say there is none. ``fallback`` (default the control, arm 0)
    is what the rest receive when nothing wins."""
    if len(arms) < 2:
        raise ValueError("a decision needs at least two arms")
    chances = tuple(probability_to_beat_all(arms, metric, draws=draws)) if draws else ()
    best = max(range(len(arms)), key=lambda i: arms[i].mean(metric))
    comparisons = len(arms) - 1
    if any(arm.trials < min_trials for arm in arms):
        return Decision(
            None, fallback, 1.0, confidence, chances,
            f"样本不足：每个版本至少需要 {min_trials} 条，无法判断，按预设发送版本 {fallback + 1}",
        )  # fmt: skip
    # The best arm is picked after looking, so each comparison is two-sided (× 2), and
    # Bonferroni spreads the level over the k − 1 comparisons.
    worst_p = max(
        min(1.0, 2 * p_better(arms[best], arms[other], metric) * comparisons)
        for other in range(len(arms))
        if other != best
    )
    if worst_p <= 1 - confidence:
        return Decision(
            best, best, worst_p, confidence, chances,
            f"版本 {best + 1}（{arms[best].name}）显著更好：校正后 p = {worst_p:.4f}，"
            f"置信度 {confidence:.0%}",
        )  # fmt: skip
    return Decision(
        None, fallback, worst_p, confidence, chances,
        f"无显著差异（校正后 p = {worst_p:.3f} > {1 - confidence:.2f}），"
        f"按预设发送版本 {fallback + 1}（{arms[fallback].name}）",
    )  # fmt: skip
