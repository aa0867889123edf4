"""Analytics rules, pure: metrics from a tally, latency percentiles from a histogram,
rates judged against thresholds, and the alerts a judgement raises.

Latency is kept as a histogram the database fills: bucket ``i`` holds latencies from
``LATENCY_EDGES[i - 1]`` up to ``LATENCY_EDGES[i]`` — 0.1 s wide below 10 s, 1 s below
10 min, 1 min up to a day, and one bucket beyond — so a percentile over millions of
messages costs a GROUP BY, not a sort, and reads as "within X s".
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from echelon.analytics.models import (
    FAILED,
    RATE_METRICS,
    SENT,
    WAITING,
    AlertDraft,
    Judgement,
    Metrics,
    Status,
    Tally,
    Threshold,
    Thresholds,
)
from echelon.errors import InvalidInput

FINE_LIMIT_S: Final = 10
"""Below this many seconds, latency buckets are 0.1 s wide."""
MEDIUM_LIMIT_S: Final = 600
"""Below this many seconds, 1 s wide; beyond, 1 min wide up to a day."""
LATENCY_EDGES: Final[tuple[float, ...]] = (
    *(i / 10 for i in range(1, FINE_LIMIT_S * 10 + 1)),
    *(float(s) for s in range(FINE_LIMIT_S + 1, MEDIUM_LIMIT_S + 1)),
    *(float(s) for s in range(MEDIUM_LIMIT_S + 60, 86_400 + 1, 60)),
)
"""Upper edges of the latency buckets; PostgreSQL's ``width_bucket`` takes them as is."""

_CENT: Final = Decimal("0.01")


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a latency: how many edges it has reached."""
    return bisect.bisect_right(LATENCY_EDGES, seconds)


def bucket_ceiling(bucket: int) -> float:
    """The latency every message of ``bucket`` was delivered within, in seconds (the
    last bucket, beyond a day, reads as its lower edge)."""
    return LATENCY_EDGES[min(bucket, len(LATENCY_EDGES) - 1)]


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """The latency within which ``fraction`` of the messages were delivered."""
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = fraction * total
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= wanted:
            return bucket_ceiling(bucket)
    return bucket_ceiling(max(histogram))


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _by_count(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def metrics_of(tally: Tally) -> Metrics:
    """The metrics of a tally of messages."""
    counts = tally.by_status
    sent = sum(counts[s] for s in SENT)
    delivered = counts["delivered"]
    revenue = (Decimal(tally.revenue_fen) / 100).quantize(_CENT)
    cost = (Decimal(tally.cost_e4) / 10_000).quantize(_CENT)
    exact_cost = Decimal(tally.cost_e4) / 10_000
    return Metrics(
        planned=sum(counts.values()),
        waiting=sum(counts[s] for s in WAITING),
        blocked=counts["blocked"],
        blocked_by_reason=_by_count(tally.blocked),
        cancelled=counts["cancelled"],
        sent=sent,
        delivered=delivered,
        failed=sum(counts[s] for s in FAILED),
        failed_by_reason=_by_count(tally.failed),
        delivery_rate=_ratio(delivered, sent),
        latency_p50_s=percentile(tally.latency, 0.5),
        latency_p95_s=percentile(tally.latency, 0.95),
        clicks=tally.clicks,
        click_rate=_ratio(tally.clicks, delivered),
        conversions=tally.conversions,
        conversion_rate=_ratio(tally.conversions, delivered),
        revenue=revenue,
        cost=cost,
        roi=(Decimal(tally.revenue_fen) / 100 / exact_cost).quantize(_CENT) if exact_cost else None,
        opt_outs=tally.opt_outs,
        opt_out_rate=_ratio(tally.opt_outs, delivered),
        complaints=tally.complaints,
        complaint_rate=_ratio(tally.complaints, delivered),
    )


def judge(metrics: Metrics, thresholds: Thresholds) -> list[Judgement]:
    """Each rate with its status: excellent, pass, fail — or insufficient when it is
    taken over fewer than ``thresholds.min_sample`` messages."""
    judged = []
    for metric in RATE_METRICS:
        level = thresholds.levels[metric]
        value = metrics.rate(metric)
        if value is None or metrics.sample(metric) < thresholds.min_sample:
            status = Status.INSUFFICIENT
        elif _reaches(value, level.excellent, level.lower_is_better):
            status = Status.EXCELLENT
        elif _reaches(value, level.passing, level.lower_is_better):
            status = Status.PASS
        else:
            status = Status.FAIL
        judged.append(Judgement(metric, value, status, level))
    return judged


def _reaches(value: float, level: float | None, lower_is_better: bool) -> bool:
    if level is None:
        return False
    return value <= level if lower_is_better else value >= level


def alerts(judgements: list[Judgement]) -> list[AlertDraft]:
    """The rates past their alert level (judged ones only), each with its advice."""
    raised = []
    for j in judgements:
        if j.status is Status.INSUFFICIENT or j.value is None:
            continue
        level = j.threshold
        breached = j.value > level.alert if level.lower_is_better else j.value < level.alert
        if breached:
            raised.append(AlertDraft(j.metric, j.value, level.alert, level.advice))
    return raised


def check_level(threshold: Threshold) -> Threshold:
    """``threshold`` if its levels are rates and excellent is no worse than passing."""
    for level in (threshold.passing, threshold.excellent, threshold.alert):
        if level is not None and not 0 <= level <= 1:
            raise InvalidInput("阈值须在 0 到 100% 之间")
    excellent = threshold.excellent
    if excellent is not None and (
        excellent > threshold.passing
        if threshold.lower_is_better
        else excellent < threshold.passing
    ):
        raise InvalidInput("“优秀”标准不能比“达标”标准更宽松")
    return threshold
