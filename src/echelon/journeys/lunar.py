"""The Chinese lunar calendar, 1900–2100, without a dependency: solar date ⇄ lunar date.

Each lunar year is one number of the widely used table (bits 4–15: months 1–12 of 30
days or 29; bits 0–3: the leap month, 0 for none; bit 16: a leap month of 30 days),
counted from lunar 1900-01-01 = 1900-01-31. 2033 is written with its leap month after
the 11th (GB/T 33661-2017), as corrected tables have it; the old value put it after
the 7th. The table is checked against the official holiday calendar's festival days
(``chinese_calendar``, 2004 onwards) in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from echelon.errors import InvalidInput

FIRST_YEAR = 1900
LAST_YEAR = 2100
_EPOCH = date(1900, 1, 31)  # lunar 1900-01-01

_YEARS = (
    0x04BD8, 0x04AE0, 0x0A570, 0x054D5, 0x0D260, 0x0D950, 0x16554, 0x056A0, 0x09AD0, 0x055D2,
    0x04AE0, 0x0A5B6, 0x0A4D0, 0x0D250, 0x1D255, 0x0B540, 0x0D6A0, 0x0ADA2, 0x095B0, 0x14977,
    0x04970, 0x0A4B0, 0x0B4B5, 0x06A50, 0x06D40, 0x1AB54, 0x02B60, 0x09570, 0x052F2, 0x04970,
    0x06566, 0x0D4A0, 0x0EA50, 0x06E95, 0x05AD0, 0x02B60, 0x186E3, 0x092E0, 0x1C8D7, 0x0C950,
    0x0D4A0, 0x1D8A6, 0x0B550, 0x056A0, 0x1A5B4, 0x025D0, 0x092D0, 0x0D2B2, 0x0A950, 0x0B557,
    0x06CA0, 0x0B550, 0x15355, 0x04DA0, 0x0A5B0, 0x14573, 0x052B0, 0x0A9A8, 0x0E950, 0x06AA0,
    0x0AEA6, 0x0AB50, 0x04B60, 0x0AAE4, 0x0A570, 0x05260, 0x0F263, 0x0D950, 0x05B57, 0x056A0,
    0x096D0, 0x04DD5, 0x04AD0, 0x0A4D0, 0x0D4D4, 0x0D250, 0x0D558, 0x0B540, 0x0B6A0, 0x195A6,
    0x095B0, 0x049B0, 0x0A974, 0x0A4B0, 0x0B27A, 0x06A50, 0x06D40, 0x0AF46, 0x0AB60, 0x09570,
    0x04AF5, 0x04970, 0x064B0, 0x074A3, 0x0EA50, 0x06B58, 0x055C0, 0x0AB60, 0x096D5, 0x092E0,
    0x0C960, 0x0D954, 0x0D4A0, 0x0DA50, 0x07552, 0x056A0, 0x0ABB7, 0x025D0, 0x092D0, 0x0CAB5,
    0x0A950, 0x0B4A0, 0x0BAA4, 0x0AD50, 0x055D9, 0x04BA0, 0x0A5B0, 0x15176, 0x052B0, 0x0A930,
    0x07954, 0x06AA0, 0x0AD50, 0x05B52, 0x04B60, 0x0A6E6, 0x0A4E0, 0x0D260, 0x0EA65, 0x0D530,
    0x05AA0, 0x076A3, 0x096D0, 0x04AFB, 0x04AD0, 0x0A4D0, 0x1D0B6, 0x0D250, 0x0D520, 0x0DD45,
    0x0B5A0, 0x056D0, 0x055B2, 0x049B0, 0x0A577, 0x0A4B0, 0x0AA50, 0x1B255, 0x06D20, 0x0ADA0,
    0x14B63, 0x09370, 0x049F8, 0x04970, 0x064B0, 0x168A6, 0x0EA50, 0x06B20, 0x1A6C4, 0x0AAE0,
    0x092E0, 0x0D2E3, 0x0C960, 0x0D557, 0x0D4A0, 0x0DA50, 0x05D55, 0x056A0, 0x0A6D0, 0x055D4,
    0x052D0, 0x0A9B8, 0x0A950, 0x0B4A0, 0x0B6A6, 0x0AD50, 0x055A0, 0x0ABA4, 0x0A5B0, 0x052B0,
    0x0B273, 0x06930, 0x07337, 0x06AA0, 0x0AD50, 0x14B55, 0x04B60, 0x0A570, 0x054E4, 0x0D160,
    0x0E968, 0x0D520, 0x0DAA0, 0x16AA6, 0x056D0, 0x04AE0, 0x0A9D4, 0x0A2D0, 0x0D150, 0x0F252,
    0x0D520,
)  # fmt: skip


class LunarOutOfRange(InvalidInput):
    code = "lunar_out_of_range"

    def __init__(self, what: object) -> None:
        super().__init__(f"农历换算只支持 {FIRST_YEAR}–{LAST_YEAR} 年：{what}")


@dataclass(frozen=True, slots=True, order=True)
class LunarDate:
    year: int
    month: int
    day: int
    leap: bool = False

    def __str__(self) -> str:
        return f"农历{self.year}年{'闰' if self.leap else ''}{self.month}月{self.day}日"


def leap_month(year: int) -> int:
    """The month the year's leap month follows (0: none)."""
    return _info(year) & 0xF


def month_days(year: int, month: int, *, leap: bool = False) -> int:
    """Days of lunar ``month`` of ``year`` (29 or 30), or of its leap month."""
    info = _info(year)
    if leap:
        if info & 0xF != month:
            raise InvalidInput(f"农历{year}年没有闰{month}月")
        return 30 if info & 0x10000 else 29
    if not 1 <= month <= 12:
        raise InvalidInput(f"农历月份须为 1–12，而不是 {month}")
    return 30 if info & (0x10000 >> month) else 29


def year_months(year: int) -> list[tuple[int, bool, int]]:
    """The year's months in order: (month, leap, days)."""
    months: list[tuple[int, bool, int]] = []
    leap = leap_month(year)
    for month in range(1, 13):
        months.append((month, False, month_days(year, month)))
        if month == leap:
            months.append((month, True, month_days(year, month, leap=True)))
    return months


def to_lunar(day: date) -> LunarDate:
    """The lunar date of solar ``day``."""
    offset = (day - _EPOCH).days
    if offset < 0:
        raise LunarOutOfRange(day)
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        days = _year_days(year)
        if offset < days:
            for month, leap, length in year_months(year):
                if offset < length:
                    return LunarDate(year, month, offset + 1, leap)
                offset -= length
        offset -= days
    raise LunarOutOfRange(day)


def to_solar(lunar: LunarDate) -> date:
    """The solar date of ``lunar`` (which must exist: day 30 only in a 30-day month)."""
    start = _year_start(lunar.year)
    for month, leap, length in year_months(lunar.year):
        if (month, leap) == (lunar.month, lunar.leap):
            if not 1 <= lunar.day <= length:
                raise InvalidInput(f"{lunar} 不存在（该月只有 {length} 天）")
            return start + timedelta(days=lunar.day - 1)
        start += timedelta(days=length)
    raise InvalidInput(f"{lunar} 不存在")


def _info(year: int) -> int:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise LunarOutOfRange(f"{year} 年")
    return _YEARS[year - FIRST_YEAR]


@cache
def _year_days(year: int) -> int:
    return sum(length for _, _, length in year_months(year))


@cache
def _year_start(year: int) -> date:
    _info(year)
    return _EPOCH + timedelta(days=sum(_year_days(y) for y in range(FIRST_YEAR, year)))
