"""Per-message cost as messages are planned, in send order: the running form of
``content.pricing.estimate`` (the sum over a batch equals its ``exact_cost``)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from echelon.content.pricing import PricePlan

E4 = Decimal(10_000)
_SLOTS = 4_096


class Meter:
    """Bills one message at a time against the month's running part count."""

    def __init__(self, plan: PricePlan, *, month: tuple[int, int], used_this_month: int) -> None:
        self._plan = plan
        self._zone = ZoneInfo(plan.timezone)
        self._bounds = [tier.up_to_parts for tier in plan.tiers]
        self._used = {month: used_this_month}
        # Unit prices are quantised to 0.0001 yuan, so in ten-thousandths they are whole
        # numbers and the sum is exact in integers (what Decimal summing then gives).
        self._price_e4 = {
            (tier, peak): int(plan.unit_price(tier, peak=peak) * E4)
            for tier in range(len(plan.tiers) + 1)
            for peak in (False, True)
        }
        # Messages of a plan share a few send times; each is placed in its month once.
        self._slots: dict[datetime, tuple[tuple[int, int], bool]] = {}

    def cost_e4(self, parts: int, at: datetime) -> int:
        """Cost of ``parts`` sent at ``at``, in ten-thousandths of a yuan, and count them."""
        return self.costs_e4([(parts, at)])[0]

    def costs_e4(self, sends: Iterable[tuple[int, datetime]]) -> list[int]:
        """``cost_e4`` of each send (parts, at) in turn: a plan's page at once."""
        bounds, prices = self._bounds, self._price_e4
        past_tiers = len(bounds)
        costs: list[int] = []
        current: datetime | None = None
        month, peak, used = (0, 0), False, 0
        for parts, at in sends:
            if at != current:
                if current is not None:
                    self._used[month] = used
                month, peak = self._slot(at)
                used, current = self._used.get(month, 0), at
            cost = 0
            while parts:
                tier = bisect_right(bounds, used)
                take = parts if tier == past_tiers else min(parts, bounds[tier] - used)
                cost += take * prices[tier, peak]
                used += take
                parts -= take
            costs.append(cost)
        if current is not None:
            self._used[month] = used
        return costs

    def _slot(self, at: datetime) -> tuple[tuple[int, int], bool]:
        """The local month of ``at`` and whether it is in the peak window."""
        slot = self._slots.get(at)
        if slot is None:
            if len(self._slots) >= _SLOTS:
                self._slots.clear()
            local = at.astimezone(self._zone)
            peak = self._plan.peak is not None and self._plan.peak.covers(local.time())
            slot = self._slots[at] = ((local.year, local.month), peak)
        return slot


def yuan(e4: int) -> Decimal:
    """Ten-thousandths of a yuan as yuan, exactly."""
    return Decimal(e4) / E4
