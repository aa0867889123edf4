"""Price plans as stored and as typed: JSON documents and short text specs (pure).

Stored JSON keeps every amount as a decimal *string* (``"0.055"``), never a JSON
number, so no float ever touches money on the way in or out:

    {"price_per_part": "0.055",
     "tiers": [{"up_to_parts": 50000, "price": "0.06"}],
     "peak": {"start": "20:00", "end": "21:00", "percent": "15"},
     "timezone": "Asia/Shanghai"}

Typed specs (the CLI's ``--tier`` and ``--peak``): a tier is ``UP_TO=PRICE``
(``50000=0.06``: parts up to the 50,000th of the month at ¥0.06), and a bare
``PRICE`` as the last tier is the price beyond every bound; a peak is
``HH:MM-HH:MM=PERCENT`` (``20:00-21:00=15``). ``off`` clears either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from echelon.content.pricing import InvalidPricePlan, PeakSurcharge, PricePlan, Tier
from echelon.db.tables import DEFAULT_PRICE_PLAN_JSON

OFF: Final = "off"


def plan_to_json(plan: PricePlan) -> dict[str, Any]:
    """The stored form of ``plan``; ``plan_from_json`` reads it back equal."""
    return {
        "price_per_part": str(plan.price_per_part),
        "tiers": [{"up_to_parts": t.up_to_parts, "price": str(t.price)} for t in plan.tiers],
        "peak": None
        if plan.peak is None
        else {
            "start": _clock(plan.peak.start),
            "end": _clock(plan.peak.end),
            "percent": str(plan.peak.percent),
        },
        "timezone": plan.timezone,
    }


def plan_from_json(document: Mapping[str, Any]) -> PricePlan:
    """A validated plan from its stored form; ``InvalidPricePlan`` if it is malformed."""
    try:
        peak = document.get("peak")
        return PricePlan(
            price_per_part=parse_price(document["price_per_part"]),
            tiers=tuple(
                Tier(int(tier["up_to_parts"]), parse_price(tier["price"]))
                for tier in document.get("tiers", ())
            ),
            peak=None
            if peak is None
            else PeakSurcharge(
                _parse_clock(peak["start"]), _parse_clock(peak["end"]), _decimal(peak["percent"])
            ),
            timezone=document["timezone"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPricePlan(f"保存的价格方案格式不对（{exc!r}）") from None


def parse_price(text: object) -> Decimal:
    """Yuan as typed or stored: ``0.06``, ``¥0.06``, ``0.06元``; never via float."""
    if isinstance(text, float | bool) or not isinstance(text, str | int | Decimal):
        raise InvalidPricePlan(f"金额必须写成文字或整数，例如 0.06（收到 {text!r}）")
    cleaned = str(text).strip().lstrip("¥￥").removesuffix("元").strip()
    return _decimal(cleaned)


def parse_tiers(specs: Sequence[str]) -> tuple[tuple[Tier, ...], Decimal | None]:
    """Tiers from ``UP_TO=PRICE`` specs, and the price beyond them if the last spec
    is a bare ``PRICE``; ``["off"]`` means no tiers. Bounds must increase."""
    if [spec.strip().lower() for spec in specs] == [OFF]:
        return (), None
    tiers: list[Tier] = []
    beyond: Decimal | None = None
    for index, spec in enumerate(specs):
        bound, sep, price = spec.partition("=")
        if not sep:
            if index != len(specs) - 1:
                raise InvalidPricePlan(f"阶梯 {spec!r}：不带条数的单价只能写在最后一档")
            beyond = parse_price(bound)
            continue
        try:
            up_to = int(bound.strip().replace(",", "").replace("_", ""))
        except ValueError:
            raise InvalidPricePlan(f"阶梯 {spec!r} 应写作 条数=单价，例如 50000=0.06") from None
        tiers.append(Tier(up_to, parse_price(price)))
    # PricePlan checks the order too, but naming the specs here is clearer.
    bounds = [tier.up_to_parts for tier in tiers]
    if bounds != sorted(set(bounds)):
        raise InvalidPricePlan(f"阶梯条数必须从小到大且不重复：{bounds}")
    return tuple(tiers), beyond


def parse_peak(spec: str) -> PeakSurcharge | None:
    """A surcharge from ``HH:MM-HH:MM=PERCENT``; ``off`` for none."""
    if spec.strip().lower() == OFF:
        return None
    window, sep, percent = spec.partition("=")
    start, dash, end = window.partition("-")
    if not sep or not dash:
        raise InvalidPricePlan(
            f"高峰时段 {spec!r} 应写作 开始-结束=加价百分比，例如 20:00-21:00=15"
        )
    return PeakSurcharge(
        _parse_clock(start), _parse_clock(end), _decimal(percent.strip().removesuffix("%"))
    )


def _decimal(text: object) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InvalidPricePlan(f"{text!r} 不是数字") from None
    if not value.is_finite():
        raise InvalidPricePlan(f"{text!r} 不是有限数字")
    return value


def _parse_clock(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise InvalidPricePlan(f"时间 {text!r} 应写作 20:00") from None


def _clock(moment: time) -> str:
    return moment.isoformat("minutes" if moment.second == 0 else "seconds")


DEFAULT_PRICE_PLAN: Final = plan_from_json(json.loads(DEFAULT_PRICE_PLAN_JSON))
"""¥0.06 a part for the first 50,000 parts of a month, ¥0.055 beyond, +15% 20:00–21:00."""
