"""The lunar calendar table against what is known: every Spring Festival since 2004,
the festival days the official holiday calendar marks, and round trips."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.errors import InvalidInput
from echelon.journeys.lunar import (
    LunarDate,
    LunarOutOfRange,
    leap_month,
    month_days,
    to_lunar,
    to_solar,
)

SPRING_FESTIVALS = {
    2004: (1, 22), 2005: (2, 9), 2006: (1, 29), 2007: (2, 18), 2008: (2, 7), 2009: (1, 26),
    2010: (2, 14), 2011: (2, 3), 2012: (1, 23), 2013: (2, 10), 2014: (1, 31), 2015: (2, 19),
    2016: (2, 8), 2017: (1, 28), 2018: (2, 16), 2019: (2, 5), 2020: (1, 25), 2021: (2, 12),
    2022: (2, 1), 2023: (1, 22), 2024: (2, 10), 2025: (1, 29), 2026: (2, 17), 2027: (2, 6),
    2028: (1, 26),
}  # fmt: skip


@pytest.mark.parametrize(("year", "day"), sorted(SPRING_FESTIVALS.items()))
def test_spring_festival(year: int, day: tuple[int, int]) -> None:
    assert to_solar(LunarDate(year, 1, 1)) == date(year, *day)
    assert to_lunar(date(year, *day)) == LunarDate(year, 1, 1)


@pytest.mark.parametrize("year", range(2008, 2027))
def test_festival_days_are_official_holidays(year: int) -> None:
    """Dragon Boat (5/5) and Mid-autumn (8/15) became public holidays in 2008."""
    for month, day, name in ((5, 5, "Dragon Boat Festival"), (8, 15, "Mid-autumn Festival")):
        solar = to_solar(LunarDate(year, month, day))
        holiday, detail = chinese_calendar.get_holiday_detail(solar)
        assert holiday, (year, name, solar)
        # On a weekend the calendar may not name it; in a combined week, National Day.
        assert detail in (name, "National Day", None), (year, name, solar, detail)


def test_leap_months() -> None:
    assert (leap_month(2023), leap_month(2025), leap_month(2026)) == (2, 6, 0)
    # 2033: after the 11th month (GB/T 33661-2017), not the 7th as older tables had it.
    assert leap_month(2033) == 11
    assert to_lunar(date(2033, 12, 22)) == LunarDate(2033, 11, 1, leap=True)
    with pytest.raises(InvalidInput):
        month_days(2026, 5, leap=True)
    with pytest.raises(LunarOutOfRange):
        to_lunar(date(1899, 12, 31))


@given(st.dates(min_value=date(1900, 1, 31), max_value=date(2100, 12, 31)))
def test_round_trip(day: date) -> None:
    lunar = to_lunar(day)
    assert to_solar(lunar) == day
    assert 1 <= lunar.day <= month_days(lunar.year, lunar.month, leap=lunar.leap)
    following = to_lunar(day + timedelta(days=1)) if day < date(2100, 12, 31) else None
    assert (
        following is None
        or following > lunar
        or (following.month == 1 and following.day == 1)
        or (following.leap != lunar.leap)
    )
