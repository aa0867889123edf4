"""Cost estimates: tiers over the month, peak windows, and exact Decimal arithmetic."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.content.pricing import (
    InvalidPricePlan,
    InvalidSendItem,
    NoPricePlan,
    PeakSurcharge,
    PriceBook,
    PricePlan,
    Tier,
    TierLine,
    estimate,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIERED = PricePlan(price_per_part=Decimal("0.055"), tiers=(Tier(50_000, Decimal("0.06")),))
PEAK = PeakSurcharge(time(20), time(21), Decimal("15"))


def at(text: str) -> datetime:
    """A Shanghai wall-clock time."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


NOON = at("2025-11-11 12:00")
NOW = at("2025-11-11 08:00")


@pytest.mark.parametrize(
    ("items", "already", "cost", "exact"),
    [
        ([], 0, "0.00", "0"),
        ([(1, NOON)], 0, "0.06", "0.06"),
        ([(50_000, NOON)], 0, "3000.00", "3000.00"),
        ([(50_001, NOON)], 0, "3000.06", "3000.055"),
        ([(3, NOON)], 49_999, "0.17", "0.17"),
        ([(3, NOON)], 50_000, "0.17", "0.165"),
        ([(2, NOON), (0, NOON), (1, NOON)], 0, "0.18", "0.18"),
    ],
)
def test_known_tiered_costs(
    items: list[tuple[int, datetime]], already: int, cost: str, exact: str
) -> None:
    result = estimate(TIERED, items, now=NOW, parts_already_this_month=already)
    assert result.cost == Decimal(cost)
    assert result.exact_cost == Decimal(exact)


def test_breakdown_by_tier() -> None:
    result = estimate(TIERED, [(49_990, NOON), (20, NOON)], now=NOW)
    assert result.parts == 50_010
    assert result.by_tier == (
        TierLine(price=Decimal("0.06"), parts=50_000, peak_parts=0, cost=Decimal("3000.00")),
        TierLine(price=Decimal("0.055"), parts=10, peak_parts=0, cost=Decimal("0.550")),
    )


def test_peak_surcharge_is_quantised_per_part() -> None:
    plan = PricePlan(price_per_part=Decimal("0.055"), peak=PEAK)
    assert plan.unit_price(0, peak=True) == Decimal("0.0633")  # 0.06325 rounded half up
    items = [(10, at("2025-11-11 20:30")), (10, at("2025-11-11 21:00"))]
    result = estimate(plan, items, now=NOW)
    assert result.peak_parts == 10
    assert result.exact_cost == Decimal("0.633") + Decimal("0.55")
    assert result.cost == Decimal("1.18")


@pytest.mark.parametrize(
    ("clock", "covered"),
    [("22:59", False), ("23:00", True), ("00:30", True), ("00:59:59", True), ("01:00", False)],
)
def test_peak_window_across_midnight(clock: str, covered: bool) -> None:
    window = PeakSurcharge(time(23), time(1), Decimal("10"))
    assert window.covers(time.fromisoformat(clock)) is covered


def test_peak_is_judged_in_the_plans_time_zone() -> None:
    plan = PricePlan(price_per_part=Decimal("0.05"), peak=PEAK)
    # 12:30 UTC is 20:30 in Shanghai.
    utc = datetime(2025, 11, 11, 12, 30, tzinfo=UTC)
    assert estimate(plan, [(1, utc)], now=utc).peak_parts == 1
    london = PricePlan(price_per_part=Decimal("0.05"), peak=PEAK, timezone="Europe/London")
    assert estimate(london, [(1, utc)], now=utc).peak_parts == 0


def test_a_new_month_restarts_the_tiers() -> None:
    # 16:30 UTC on 31 January is already 1 February in Shanghai.
    january = datetime(2025, 1, 31, 15, 0, tzinfo=UTC)
    february = datetime(2025, 1, 31, 16, 30, tzinfo=UTC)
    items = [(10, february), (50_000, january)]
    result = estimate(TIERED, items, now=january, parts_already_this_month=49_995)
    # January: 5 at 0.06, 49,995 at 0.055; February starts again at 0.06.
    assert result.exact_cost == Decimal("0.30") + Decimal("2749.725") + Decimal("0.60")
    # Parts already sent belong to the month of ``now``, whatever the batch's months.
    later = estimate(TIERED, items, now=february, parts_already_this_month=49_995)
    assert later.exact_cost == Decimal("3000.00") + Decimal("0.30") + Decimal("0.275")


def test_items_are_billed_in_send_order_whatever_their_order() -> None:
    plan = PricePlan(price_per_part=Decimal("0.05"), tiers=(Tier(100, Decimal("0.07")),), peak=PEAK)
    items = [
        (60, at("2025-11-11 09:00")),
        (60, at("2025-11-11 20:10")),
        (5, at("2025-11-12 20:15")),
    ]
    shuffled = items[::-1]
    assert estimate(plan, items, now=NOW) == estimate(plan, shuffled, now=NOW)
    # The morning batch takes the first 60 tier-one parts; the evening peak batch
    # gets 40 at the tier-one peak price and 20 at the tier-two peak price.
    assert estimate(plan, items, now=NOW).exact_cost == (
        60 * Decimal("0.07") + 40 * Decimal("0.0805") + 25 * Decimal("0.0575")
    )


def test_price_book_picks_the_channels_plan() -> None:
    cheap = PricePlan(price_per_part=Decimal("0.03"))
    book = PriceBook(default=TIERED, by_channel={"cmpp-sh": cheap})
    assert book.plan_for("cmpp-sh") is cheap
    assert book.plan_for("http-aliyun") is TIERED
    with pytest.raises(NoPricePlan) as caught:
        PriceBook(by_channel={"cmpp-sh": cheap}).plan_for("http-aliyun")
    assert "http-aliyun" in caught.value.message


@pytest.mark.parametrize(
    "build",
    [
        lambda: PricePlan(price_per_part=0.055),  # type: ignore[arg-type]
        lambda: PricePlan(price_per_part=Decimal("0.00001")),
        lambda: PricePlan(price_per_part=Decimal("-0.01")),
        lambda: PricePlan(price_per_part=Decimal("NaN")),
        lambda: PricePlan(
            Decimal("0.05"), tiers=(Tier(100, Decimal("0.06")), Tier(100, Decimal("0.05")))
        ),
        lambda: PricePlan(Decimal("0.05"), timezone="Mars/Olympus"),
        lambda: PricePlan(Decimal("0.05"), timezone="Asia"),
        lambda: Tier(0, Decimal("0.06")),
        lambda: Tier(True, Decimal("0.06")),
        lambda: PeakSurcharge(time(20), time(20), Decimal("15")),
        lambda: PeakSurcharge(time(20), time(21), 15),  # type: ignore[arg-type]
        lambda: PeakSurcharge(time(20, tzinfo=UTC), time(21), Decimal("15")),
    ],
)
def test_bad_plans_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidPricePlan) as caught:
        build()
    assert caught.value.code == "invalid_price_plan"


@pytest.mark.parametrize(
    ("items", "already"),
    [
        ([(1, datetime(2025, 11, 11, 12))], 0),
        ([(-1, NOON)], 0),
        ([(1.5, NOON)], 0),
        ([(1, NOON)], -1),
    ],
)
def test_bad_items_are_refused(items: list[tuple[int, datetime]], already: int) -> None:
    with pytest.raises(InvalidSendItem) as caught:
        estimate(TIERED, items, now=NOW, parts_already_this_month=already)
    assert caught.value.code == "invalid_send_item"


def test_now_must_be_aware() -> None:
    with pytest.raises(InvalidSendItem):
        estimate(TIERED, [], now=datetime(2025, 11, 11))


prices = st.integers(min_value=0, max_value=2000).map(lambda n: Decimal(n) / 10_000)
clock = st.times().map(lambda value: value.replace(microsecond=0))
windows = (
    st.tuples(clock, clock, st.integers(min_value=0, max_value=100).map(Decimal))
    .filter(lambda window: window[0] != window[1])
    .map(lambda window: PeakSurcharge(*window))
)


@st.composite
def plans(draw: st.DrawFn) -> PricePlan:
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=300), max_size=3)))
    peak = draw(st.none() | windows)
    tiers = tuple(Tier(bound, draw(prices)) for bound in bounds)
    return PricePlan(price_per_part=draw(prices), tiers=tiers, peak=peak)


november = st.integers(min_value=0, max_value=30 * 24 * 3600 - 1).map(
    lambda seconds: at("2025-11-01 00:00") + timedelta(seconds=seconds)
)
year = st.integers(min_value=0, max_value=365 * 24 * 3600).map(
    lambda seconds: datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
)
parts = st.integers(min_value=0, max_value=120)
MIDYEAR = datetime(2025, 6, 15, tzinfo=UTC)


@given(plans(), st.lists(st.tuples(parts, year), max_size=12), st.integers(0, 400))
def test_cost_is_exact_and_rounded_once(
    plan: PricePlan, items: list[tuple[int, datetime]], already: int
) -> None:
    result = estimate(plan, items, now=MIDYEAR, parts_already_this_month=already)
    assert isinstance(result.exact_cost, Decimal)
    assert isinstance(result.cost, Decimal)
    assert result.exact_cost == result.exact_cost.quantize(Decimal("0.0001"))
    assert result.cost == result.exact_cost.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert result.parts == sum(count for count, _ in items)
    assert result.exact_cost == sum((line.cost for line in result.by_tier), Decimal(0))


@given(
    plans(),
    st.lists(st.tuples(parts, year), max_size=12),
    st.tuples(parts, year),
    st.integers(0, 400),
)
def test_more_parts_never_cost_less(
    plan: PricePlan, items: list[tuple[int, datetime]], extra: tuple[int, datetime], already: int
) -> None:
    """Without a peak surcharge, one more part never lowers the bill.

    With one it can, and carriers bill so: an earlier part can push a surcharged
    peak part from a dear tier into a cheaper one, saving more than it costs.
    """
    plan = replace(plan, peak=None)

    def cost(batch: list[tuple[int, datetime]]) -> Decimal:
        return estimate(plan, batch, now=MIDYEAR, parts_already_this_month=already).exact_cost

    before = cost(items)
    assert cost([*items, extra]) >= before
    if items:
        assert cost([(items[0][0] + 1, items[0][1]), *items[1:]]) >= before


@given(plans(), st.lists(st.tuples(parts, november), max_size=12), st.integers(0, 400), st.data())
def test_estimating_in_two_halves_costs_the_same(
    plan: PricePlan, items: list[tuple[int, datetime]], already: int, data: st.DataObject
) -> None:
    items = sorted(items, key=lambda item: item[1])
    split = data.draw(st.integers(min_value=0, max_value=len(items)))
    first, second = items[:split], items[split:]
    whole = estimate(plan, items, now=NOW, parts_already_this_month=already)
    head = estimate(plan, first, now=NOW, parts_already_this_month=already)
    tail = estimate(plan, second, now=NOW, parts_already_this_month=already + head.parts)
    assert head.exact_cost + tail.exact_cost == whole.exact_cost
    assert head.peak_parts + tail.peak_parts == whole.peak_parts


@given(plans(), st.lists(st.tuples(parts, year), max_size=12), st.randoms())
def test_order_of_items_does_not_matter(
    plan: PricePlan, items: list[tuple[int, datetime]], rng: random.Random
) -> None:
    shuffled = items[:]
    rng.shuffle(shuffled)
    assert estimate(plan, shuffled, now=MIDYEAR) == estimate(plan, items, now=MIDYEAR)
