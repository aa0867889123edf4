"""Numbers, money, times, the traffic light of a rate and word hits in a text."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.analytics.models import DEFAULT_THRESHOLDS, Judgement, Status
from echelon.console.format import highlight, light, local_time, percent, yuan
from echelon.content.words import Category, Hit, Severity


def test_numbers_as_people_read_them() -> None:
    assert percent(0.97531) == "97.5%"
    assert percent(0.0005, 2) == "0.05%"
    assert percent(None) == "—"
    assert yuan(Decimal("1234.5")) == "¥1,234.50"
    assert yuan("0.84") == "¥0.84"
    assert yuan(None) == "—"
    moment = datetime(2026, 11, 10, 16, 30, tzinfo=UTC)
    assert local_time(moment, ZoneInfo("Asia/Shanghai")) == "2026-11-11 00:30"
    assert local_time(None, ZoneInfo("Asia/Shanghai")) == "—"


def _judged(metric: str, value: float | None, status: Status) -> Judgement:
    return Judgement(metric, value, status, DEFAULT_THRESHOLDS[metric])  # type: ignore[arg-type,index]


@pytest.mark.parametrize(
    ("metric", "value", "status", "expected"),
    [
        ("delivery_rate", 0.999, Status.EXCELLENT, "green"),
        ("delivery_rate", 0.985, Status.PASS, "green"),
        ("delivery_rate", 0.97, Status.FAIL, "amber"),  # short of passing, above alert
        ("delivery_rate", 0.90, Status.FAIL, "red"),  # under the 95% alert level
        ("opt_out_rate", 0.01, Status.PASS, "green"),
        ("opt_out_rate", 0.05, Status.FAIL, "red"),  # a ceiling: above alert is red
        ("complaint_rate", 0.0, Status.INSUFFICIENT, "grey"),
        ("click_rate", None, Status.INSUFFICIENT, "grey"),
    ],
)
def test_a_rate_is_green_amber_red_or_grey(
    metric: str, value: float | None, status: Status, expected: str
) -> None:
    assert light(_judged(metric, value, status)) == expected


def _hit(start: int, end: int) -> Hit:
    return Hit("w", Category.ABSOLUTE, Severity.BLOCK, None, start, end)


def test_hits_are_marked_and_an_overlapping_one_is_left_plain() -> None:
    text = "全网最低价，快来"
    spans = highlight(text, [_hit(2, 5), _hit(0, 5)])
    assert [(s.text, s.hit is not None) for s in spans] == [("全网最低价", True), ("，快来", False)]


@given(
    st.text(max_size=60),
    st.lists(st.tuples(st.integers(0, 70), st.integers(0, 70)), max_size=8),
)
def test_highlighting_never_loses_or_reorders_text(
    text: str, bounds: list[tuple[int, int]]
) -> None:
    spans = highlight(text, [_hit(a, b) for a, b in bounds])
    assert "".join(s.text for s in spans) == text
    assert all(s.text for s in spans)
    marked = [s for s in spans if s.hit is not None]
    assert all(text[s.hit.start : s.hit.end] == s.text for s in marked if s.hit)
