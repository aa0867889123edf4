"""Analytics rules: latency histogram, metrics from a tally, thresholds and alerts."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.analytics.models import DEFAULT_THRESHOLDS, Status, Tally, Threshold, Thresholds
from echelon.analytics.rules import (
    LATENCY_EDGES,
    alerts,
    bucket_ceiling,
    check_level,
    judge,
    latency_bucket,
    metrics_of,
    percentile,
)
from echelon.errors import InvalidInput

latencies = st.floats(min_value=0, max_value=86_399, allow_nan=False)


@given(latencies)
def test_a_latency_is_within_its_buckets_ceiling_and_past_the_one_before(seconds: float) -> None:
    bucket = latency_bucket(seconds)
    assert seconds < bucket_ceiling(bucket)
    if bucket:
        assert seconds >= bucket_ceiling(bucket - 1)


@given(latencies, latencies)
def test_buckets_keep_order(a: float, b: float) -> None:
    if a <= b:
        assert latency_bucket(a) <= latency_bucket(b)


@pytest.mark.parametrize(
    ("seconds", "ceiling"),
    [(0, 0.1), (0.55, 0.6), (2.95, 3.0), (9.99, 10.0), (10, 11.0), (599.5, 600.0), (600, 660.0)],
)
def test_bucket_resolution(seconds: float, ceiling: float) -> None:
    assert bucket_ceiling(latency_bucket(seconds)) == ceiling


@given(st.lists(latencies, min_size=1, max_size=200), st.floats(min_value=0.01, max_value=1))
def test_a_percentile_covers_its_share_of_messages(values: list[float], fraction: float) -> None:
    histogram = Counter(latency_bucket(v) for v in values)
    within = percentile(histogram, fraction)
    assert within is not None
    assert sum(1 for v in values if v < within) >= fraction * len(values)
    # ... and it is the tightest bucket ceiling that does.
    below = [bucket_ceiling(b) for b in histogram if bucket_ceiling(b) < within]
    for ceiling in below:
        assert sum(1 for v in values if v < ceiling) < fraction * len(values)


def test_beyond_a_day_is_one_bucket() -> None:
    assert latency_bucket(86_400) == latency_bucket(10 * 86_400) == len(LATENCY_EDGES)
    assert bucket_ceiling(latency_bucket(3 * 86_400)) == 86_400


def test_no_latency_no_percentile() -> None:
    assert percentile(Counter(), 0.5) is None


def tally(**counts: int) -> Tally:
    found = Tally()
    found.by_status.update(counts)
    return found


def test_metrics_of_a_tally() -> None:
    t = tally(delivered=90, undelivered=5, submitted=5, blocked=7, queued=3, failed=1)
    t.blocked.update({"opt_out": 4, "no_consent": 3})
    t.failed.update({"MK:0001": 5, "no_route": 1})
    t.cost_e4, t.revenue_fen = 6_000 * 100, 12_345
    t.clicks, t.conversions, t.opt_outs, t.complaints = 30, 9, 2, 1
    m = metrics_of(t)
    assert (m.planned, m.waiting, m.blocked, m.sent, m.delivered, m.failed) == (
        111,
        3,
        7,
        100,
        90,
        6,
    )
    assert m.delivery_rate == 0.9 and m.click_rate == pytest.approx(1 / 3)
    assert m.conversion_rate == 0.1 and m.opt_out_rate == pytest.approx(2 / 90)
    assert (m.revenue, m.cost, m.roi) == (Decimal("123.45"), Decimal("60.00"), Decimal("2.06"))
    assert m.blocked_by_reason == {"opt_out": 4, "no_consent": 3}


def test_nothing_sent_has_no_rates() -> None:
    m = metrics_of(tally(blocked=3))
    assert (m.delivery_rate, m.click_rate, m.roi, m.latency_p50_s) == (None, None, None, None)


def judged(delivered: int, sent: int, **extra: int) -> dict[str, Status]:
    t = tally(delivered=delivered, undelivered=sent - delivered)
    for name, value in extra.items():
        setattr(t, name, value)
    return {j.metric: j.status for j in judge(metrics_of(t), Thresholds())}


@pytest.mark.parametrize(
    ("delivered", "status"),
    [(995, Status.EXCELLENT), (994, Status.PASS), (980, Status.PASS), (979, Status.FAIL)],
)
def test_delivery_rate_statuses(delivered: int, status: Status) -> None:
    assert judged(delivered, 1000)["delivery_rate"] is status


@pytest.mark.parametrize(
    ("complaints", "status"),
    [(0, Status.EXCELLENT), (1, Status.EXCELLENT), (2, Status.PASS), (3, Status.FAIL)],
)
def test_complaint_rate_statuses_are_ceilings(complaints: int, status: Status) -> None:
    assert judged(2000, 2000, complaints=complaints)["complaint_rate"] is status


def test_opt_outs_have_no_excellent_level() -> None:
    assert judged(1000, 1000, opt_outs=0)["opt_out_rate"] is Status.PASS
    assert judged(1000, 1000, opt_outs=21)["opt_out_rate"] is Status.FAIL


def test_small_samples_are_not_judged() -> None:
    assert set(judged(50, 99).values()) == {Status.INSUFFICIENT}


def test_alerts_name_the_advice_of_the_issue() -> None:
    t = tally(delivered=940, undelivered=60)
    t.clicks, t.conversions, t.opt_outs = 400, 80, 25
    raised = {a.metric: a for a in alerts(judge(metrics_of(t), Thresholds()))}
    assert set(raised) == {"delivery_rate", "opt_out_rate"}
    assert (
        "号码质量" in raised["delivery_rate"].advice and raised["delivery_rate"].threshold == 0.95
    )
    assert "频率" in raised["opt_out_rate"].advice
    # Delivery between the alert level and passing fails but raises nothing.
    t = tally(delivered=960, undelivered=40)
    t.clicks, t.conversions = 400, 80
    assert alerts(judge(metrics_of(t), Thresholds())) == []


def test_thresholds_are_checked() -> None:
    assert check_level(DEFAULT_THRESHOLDS["click_rate"]) == DEFAULT_THRESHOLDS["click_rate"]
    with pytest.raises(InvalidInput):
        check_level(Threshold(0.5, 0.4, 0.5, False, ""))
    with pytest.raises(InvalidInput):
        check_level(Threshold(0.001, 0.002, 0.001, True, ""))
    with pytest.raises(InvalidInput):
        check_level(Threshold(1.2, None, 0.5, False, ""))
    custom = Thresholds().with_level("click_rate", passing=0.3)
    assert custom.levels["click_rate"].passing == 0.3
    assert custom.levels["click_rate"].excellent == 0.38
    assert Thresholds().levels["click_rate"].passing == 0.25
