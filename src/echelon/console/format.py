"""Pure helpers of the pages: numbers, money and times as people read them, the
traffic light of a judged rate, and word hits marked in a text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from echelon.analytics.models import Judgement, Status
from echelon.content.words import Hit

Light = Literal["green", "amber", "red", "grey"]
DASH = "—"


def percent(value: float | None, digits: int = 1) -> str:
    """0.9753 → 97.5%; None (nothing to divide by) → —."""
    if value is None:
        return DASH
    return f"{value * 100:.{digits}f}%"


def yuan(value: Decimal | str | int | None) -> str:
    """¥1,234.56; None → —."""
    if value is None:
        return DASH
    amount = Decimal(value)
    return f"¥{amount:,.2f}"


def number(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def seconds(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.1f}s" if value < 100 else f"{value / 60:.0f}min"


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """A stored (UTC) time in the workspace's zone, to the minute."""
    if moment is None:
        return DASH
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def utc_time(moment: datetime | None) -> str:
    return local_time(moment, ZoneInfo("UTC"))


def light(judgement: Judgement) -> Light:
    """Green when the rate passes (or excels), red past its alert level, amber when it
    fails short of that, grey when there are too few messages to judge."""
    if judgement.status is Status.INSUFFICIENT or judgement.value is None:
        return "grey"
    if judgement.status in (Status.EXCELLENT, Status.PASS):
        return "green"
    level = judgement.threshold
    breached = (
        judgement.value > level.alert if level.lower_is_better else judgement.value < level.alert
    )
    return "red" if breached else "amber"


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of a text: plain (``hit`` None) or a listed word as found."""

    text: str
    hit: Hit | None = None


def highlight(text: str, hits: Iterable[Hit]) -> list[Span]:
    """``text`` cut into plain pieces and hits, in order; joined they give ``text``
    back. A hit overlapping one already marked is left unmarked."""
    spans: list[Span] = []
    at = 0
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        if hit.start < at or hit.end > len(text) or hit.start >= hit.end:
            continue
        if hit.start > at:
            spans.append(Span(text[at : hit.start]))
        spans.append(Span(text[hit.start : hit.end], hit))
        at = hit.end
    if at < len(text):
        spans.append(Span(text[at:]))
    return spans
