"""Price plans and cost estimates, in ``Decimal`` yuan — never float.

A plan bills per part. Volume tiers count parts within a calendar month of the
plan's time zone, so parts already sent this month move a batch up the tiers and
a batch that crosses into a new month starts again at the first tier. A peak
surcharge raises the price of parts sent inside a local-time window (which may
cross midnight). Unit prices are quantised to 0.0001 yuan, as carriers quote
them; the total is rounded to the fen only at the end.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from echelon.errors import InvalidInput

PRICE_QUANTUM = Decimal("0.0001")
COST_QUANTUM = Decimal("0.01")
DEFAULT_TIMEZONE = "Asia/Shanghai"


class InvalidPricePlan(InvalidInput):
    code = "invalid_price_plan"

    def __init__(self, problem: str) -> None:
        super().__init__(f"价格方案无效：{problem}")
        self.problem = problem


class InvalidSendItem(InvalidInput):
    code = "invalid_send_item"

    def __init__(self, problem: str) -> None:
        super().__init__(f"无法估算费用：{problem}")
        self.problem = problem


class NoPricePlan(InvalidInput):
    code = "no_price_plan"

    def __init__(self, channel: str) -> None:
        super().__init__(f"通道 {channel} 没有价格方案，请先配置")
        self.channel = channel


def _check_price(price: object, what: str) -> None:
    if not isinstance(price, Decimal) or not price.is_finite():
        raise InvalidPricePlan(f"{what}必须是 Decimal 金额（不接受浮点数），收到 {price!r}")
    if price < 0:
        raise InvalidPricePlan(f"{what}不能为负数：{price}")
    if price != price.quantize(PRICE_QUANTUM):
        raise InvalidPricePlan(f"{what}最多四位小数（0.0001 元）：{price}")


@dataclass(frozen=True, slots=True)
class Tier:
    """Parts numbered up to ``up_to_parts`` in the month (past the previous tier's
    bound) cost ``price`` each."""

    up_to_parts: int
    price: Decimal

    def __post_init__(self) -> None:
        if isinstance(self.up_to_parts, bool) or not isinstance(self.up_to_parts, int):
            raise InvalidPricePlan(f"阶梯上限必须是整数条数：{self.up_to_parts!r}")
        if self.up_to_parts <= 0:
            raise InvalidPricePlan(f"阶梯上限必须大于 0：{self.up_to_parts}")
        _check_price(self.price, "阶梯单价")


@dataclass(frozen=True, slots=True)
class PeakSurcharge:
    """``percent`` more for parts sent in ``[start, end)`` local time; a window with
    ``end <= start`` crosses midnight (20:00–01:00)."""

    start: time
    end: time
    percent: Decimal

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise InvalidPricePlan("高峰时段的开始和结束时间不能相同")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise InvalidPricePlan("高峰时段用方案时区的本地时间，不带时区")
        if not isinstance(self.percent, Decimal) or not 0 <= self.percent <= 1000:
            raise InvalidPricePlan(f"高峰加价比例须为 0–1000 的 Decimal 百分数：{self.percent!r}")

    def covers(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class PricePlan:
    """``price_per_part`` after every tier (the whole price when there are none);
    ``tiers`` in ascending ``up_to_parts``."""

    price_per_part: Decimal
    tiers: tuple[Tier, ...] = ()
    peak: PeakSurcharge | None = None
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        _check_price(self.price_per_part, "单价")
        bounds = [tier.up_to_parts for tier in self.tiers]
        if any(low >= high for low, high in pairwise(bounds)):
            raise InvalidPricePlan(f"阶梯上限必须递增：{bounds}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Asia" is a directory
            raise InvalidPricePlan(f"未知时区 {self.timezone!r}") from None

    def unit_price(self, tier: int, *, peak: bool) -> Decimal:
        """Price of one part in tier index ``tier`` (``len(tiers)`` = past all tiers)."""
        base = self.tiers[tier].price if tier < len(self.tiers) else self.price_per_part
        if not peak or self.peak is None:
            return base
        surcharged = base * (1 + self.peak.percent / 100)
        return surcharged.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class PriceBook:
    """The plan for each channel, with a fallback for channels not listed."""

    default: PricePlan | None = None
    by_channel: Mapping[str, PricePlan] = field(default_factory=dict)

    def plan_for(self, channel: str) -> PricePlan:
        plan = self.by_channel.get(channel, self.default)
        if plan is None:
            raise NoPricePlan(channel)
        return plan


@dataclass(frozen=True, slots=True)
class TierLine:
    """Parts billed in one tier; ``price`` is the tier's base price and ``cost``
    includes any peak surcharge."""

    price: Decimal
    parts: int
    peak_parts: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class Estimate:
    """``exact_cost`` is the unrounded sum (a multiple of 0.0001); ``cost`` is it
    rounded half-up to the fen. ``by_tier`` lists used tiers in tier order."""

    parts: int
    cost: Decimal
    exact_cost: Decimal
    by_tier: tuple[TierLine, ...]
    peak_parts: int


def estimate(
    plan: PricePlan,
    items: Iterable[tuple[int, datetime]],
    *,
    now: datetime,
    parts_already_this_month: int = 0,
) -> Estimate:
    """Cost of sending ``items`` — (parts, send_at) pairs, in any order — on ``plan``.

    Parts are billed in send order. ``parts_already_this_month`` have been sent in
    the month of ``now`` (in the plan's time zone): items in that month continue
    from there; items in any other month start from zero. Estimating a batch in
    two halves, passing on the first half's parts this month, gives the same
    ``exact_cost``.
    """
    if parts_already_this_month < 0:
        raise InvalidSendItem(f"本月已发送条数不能为负数：{parts_already_this_month}")
    zone = ZoneInfo(plan.timezone)
    current = _aware(now).astimezone(zone)
    dated = sorted(_validated(items, zone), key=lambda item: item[0])
    bounds = [tier.up_to_parts for tier in plan.tiers]
    billed: Counter[tuple[int, bool]] = Counter()  # (tier index, peak) -> parts
    used_by_month = {(current.year, current.month): parts_already_this_month}
    for local, parts in dated:
        month = (local.year, local.month)
        used = used_by_month.get(month, 0)
        used_by_month[month] = used + parts
        peak = plan.peak is not None and plan.peak.covers(local.time())
        while parts:
            tier = bisect_right(bounds, used)
            take = parts if tier == len(bounds) else min(parts, bounds[tier] - used)
            billed[tier, peak] += take
            used += take
            parts -= take
    return _summarise(plan, billed)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidSendItem(f"时间必须带时区：{moment.isoformat()}")
    return moment


def _validated(
    items: Iterable[tuple[int, datetime]], zone: ZoneInfo
) -> Iterable[tuple[datetime, int]]:
    for parts, send_at in items:
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 0:
            raise InvalidSendItem(f"条数必须是非负整数：{parts!r}")
        yield _aware(send_at).astimezone(zone), parts


def _summarise(plan: PricePlan, billed: Counter[tuple[int, bool]]) -> Estimate:
    lines = []
    for tier in sorted({tier for tier, _ in billed}):
        normal, peak = billed[tier, False], billed[tier, True]
        base = plan.unit_price(tier, peak=False)
        cost = normal * base + peak * plan.unit_price(tier, peak=True)
        lines.append(TierLine(price=base, parts=normal + peak, peak_parts=peak, cost=cost))
    exact = sum((line.cost for line in lines), Decimal(0))
    return Estimate(
        parts=sum(line.parts for line in lines),
        cost=exact.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP),
        exact_cost=exact,
        by_tier=tuple(lines),
        peak_parts=sum(line.peak_parts for line in lines),
    )
