"""Per-message cost as messages are planned, in send order: the running form of
``content.pricing.estimate`` (the sum over a batch equals its ``exact_cost``)."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from echelon.content.pricing import PricePlan

E4 = Decimal(10_000)


class Meter:
    """Bills one message at a time against the month's running part count."""

    def __init__(self, plan: PricePlan, *, month: tuple[int, int], used_this_month: int) -> None:
        self._plan = plan
        self._zone = ZoneInfo(plan.timezone)
        self._bounds = [tier.up_to_parts for tier in plan.tiers]
        self._used = {month: used_this_month}

    def cost_e4(self, parts: int, at: datetime) -> int:
        """Cost of ``parts`` sent at ``at``, in ten-thousandths of a yuan, and count them."""
        local = at.astimezone(self._zone)
        month = (local.year, local.month)
        used = self._used.get(month, 0)
        self._used[month] = used + parts
        peak = self._plan.peak is not None and self._plan.peak.covers(local.time())
        cost = Decimal(0)
        while parts:
            tier = bisect_right(self._bounds, used)
            take = parts if tier == len(self._bounds) else min(parts, self._bounds[tier] - used)
            cost += take * self._plan.unit_price(tier, peak=peak)
            used += take
            parts -= take
        return int(cost * E4)


def yuan(e4: int) -> Decimal:
    """Ten-thousandths of a yuan as yuan, exactly."""
    return Decimal(e4) / E4
