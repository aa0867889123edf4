"""The meter bills messages one by one, in send order, exactly as the estimate of the
whole batch does — in integer ten-thousandths of a yuan."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from echelon.campaigns.metering import E4, Meter
from echelon.content.pricing import PeakSurcharge, PricePlan, Tier, estimate

NOW = datetime(2026, 1, 31, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, the month's last day
PLANS = (
    PricePlan(price_per_part=Decimal("0.055")),
    PricePlan(
        price_per_part=Decimal("0.0415"),
        tiers=(Tier(5, Decimal("0.0637")), Tier(12, Decimal("0.0501"))),
        peak=PeakSurcharge(time(20), time(1), Decimal("12.5")),
    ),
)
# Sends from now to two months on, in whole hours: peaks, month ends, tiers.
items = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 24 * 60).map(lambda h: NOW + timedelta(hours=h))),
    max_size=40,
).map(lambda sends: sorted(sends, key=lambda send: send[1]))


@given(st.sampled_from(PLANS), items, st.integers(0, 20))
def test_running_cost_is_the_estimate(
    plan: PricePlan, sends: list[tuple[int, datetime]], used: int
) -> None:
    one_by_one = Meter(plan, month=(2026, 1), used_this_month=used)
    singly = [one_by_one.cost_e4(parts, at) for parts, at in sends]
    at_once = Meter(plan, month=(2026, 1), used_this_month=used).costs_e4(sends)
    expected = estimate(plan, sends, now=NOW, parts_already_this_month=used).exact_cost
    assert singly == at_once
    assert sum(singly) == expected * E4


def test_known_costs() -> None:
    tiered = PLANS[1]
    meter = Meter(tiered, month=(2026, 1), used_this_month=3)
    # Parts 4-5 of the month in the first tier, 6 in the second; 20:30 local is peak.
    assert meter.cost_e4(3, NOW) == 2 * 637 + 501
    peak = datetime(2026, 1, 31, 12, 30, tzinfo=UTC)
    assert meter.cost_e4(1, peak) == round(501 * 1.125)
    # February starts again at the first tier.
    assert meter.cost_e4(1, datetime(2026, 2, 1, 4, tzinfo=UTC)) == 637
