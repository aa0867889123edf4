"""The journey rules, pure: waits, steps, splits, re-entry, dates and holidays, event
filters — tables of known cases and Hypothesis properties."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.compliance.rules import QuietHours
from echelon.journeys.models import HolidayTrigger, Reentry, parse_journey
from echelon.journeys.rules import (
    EventFacts,
    Go,
    HolidayCalendarMissing,
    Leave,
    Send,
    Wait,
    anniversary_years,
    decide,
    event_matches,
    holiday_occurrence,
    holiday_trigger_day,
    lunar_birthday_keys,
    may_enter,
    next_holiday_trigger,
    scheduled_day,
    solar_birthday_keys,
    split_path,
    wait_until,
)
from echelon.segments.models import EventFilter

ZONE = "Asia/Shanghai"
SHANGHAI = ZoneInfo(ZONE)
QUIET = QuietHours(time(8, 0), time(21, 0), ZONE)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def until(start: str, **wait: Any) -> str:
    moment = wait_until(
        local(start),
        span=timedelta(days=wait.get("days", 0), hours=wait.get("hours", 0)),
        at=wait.get("at"),
        weekday=wait.get("weekday"),
        window=wait.get("window", False),
        timezone=ZONE,
        quiet_hours=QUIET,
    )
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"


@pytest.mark.parametrize(
    ("start", "wait", "expected"),
    [
        ("2026-03-02 10:00", {"days": 3}, "2026-03-05 10:00"),
        ("2026-03-02 10:00", {"days": 3, "at": time(9, 30)}, "2026-03-06 09:30"),
        ("2026-03-02 09:00", {"at": time(9, 30)}, "2026-03-02 09:30"),
        ("2026-03-02 09:30", {"at": time(9, 30)}, "2026-03-02 09:30"),
        ("2026-03-02 09:31", {"at": time(9, 30)}, "2026-03-03 09:30"),
        ("2026-03-02 10:00", {"weekday": 5, "at": time(20, 0)}, "2026-03-06 20:00"),  # a Monday
        ("2026-03-06 21:00", {"weekday": 5, "at": time(20, 0)}, "2026-03-13 20:00"),
        ("2026-03-02 10:00", {"weekday": 1}, "2026-03-09 00:00"),
        ("2026-03-02 22:00", {"hours": 24, "window": True}, "2026-03-04 08:00"),
        ("2026-03-02 12:00", {"window": True}, "2026-03-02 12:00"),
        ("2026-03-02 07:00", {"weekday": 1, "window": True}, "2026-03-09 08:00"),
    ],
)
def test_waits(start: str, wait: dict[str, Any], expected: str) -> None:
    assert until(start, **wait) == expected


moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)


@given(
    moments,
    st.integers(0, 30 * 24 * 60),
    st.none() | st.times(),
    st.none() | st.integers(1, 7),
    st.booleans(),
)
def test_a_wait_ends_at_the_first_moment_that_fits(
    start: datetime, minutes: int, at: time | None, weekday: int | None, window: bool
) -> None:
    end = wait_until(
        start,
        span=timedelta(minutes=minutes),
        at=at,
        weekday=weekday,
        window=window,
        timezone=ZONE,
        quiet_hours=QUIET,
    )
    earliest = start + timedelta(minutes=minutes)
    assert end >= earliest and end.tzinfo is UTC
    local_end = end.astimezone(SHANGHAI)
    if window:
        assert QUIET.allows(end)
    else:
        if at is not None:
            assert local_end.time() == at
        if weekday is not None:
            assert local_end.isoweekday() == weekday
        limit = timedelta(days=7) if weekday is not None else timedelta(days=1)
        assert end - earliest < limit or (at is None and weekday is None and end == earliest)


JOURNEY = parse_journey(
    {
        "trigger": {"type": "event", "event": "signup"},
        "steps": [
            {"id": "hello", "type": "send", "template": "你好"},
            {"id": "pause", "type": "wait", "days": 1},
            {"id": "tap", "type": "wait_for", "click": True, "hours": 48, "else": "nudge"},
            {"id": "which", "type": "branch", "if": {"kind": "converted"}, "then": "done"},
            {"id": "nudge", "type": "send", "template": "提醒", "next": "done"},
            {
                "id": "ab",
                "type": "split",
                "paths": [{"percent": 50, "next": "done"}, {"percent": 50, "next": "done"}],
            },
            {"id": "done", "type": "exit"},
        ],
    }
)
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def step(step_id: str, *, waiting: datetime | None = None, happened: bool = False) -> object:
    return decide(
        JOURNEY,
        step_id,
        enrolment_id=7,
        waiting_since=waiting,
        happened=happened,
        now=NOW,
        timezone=ZONE,
        quiet_hours=QUIET,
    )


def test_what_each_step_does() -> None:
    assert step("hello") == Send("你好", "pause")
    assert step("pause") == Wait(NOW + timedelta(days=1))
    assert step("pause", waiting=NOW - timedelta(days=1)) == Go("tap")
    assert step("tap") == Wait(NOW + timedelta(hours=48))
    assert step("tap", waiting=NOW - timedelta(hours=1), happened=True) == Go("which")
    assert step("tap", waiting=NOW - timedelta(hours=1)) == Wait(NOW + timedelta(hours=47))
    assert step("tap", waiting=NOW - timedelta(hours=48)) == Go("nudge")
    assert step("which", happened=True) == Go("done")
    assert step("which") == Go("nudge")
    assert step("nudge") == Send("提醒", "done")
    assert step("ab") == Go("done")
    assert step("done") == Leave("exit_step")


@given(
    st.integers(1, 10**12),
    st.text(min_size=1, max_size=8),
    st.lists(st.integers(1, 60), min_size=2, max_size=5),
)
def test_a_split_draw_is_fixed_and_in_range(
    enrolment_id: int, step_id: str, weights: list[int]
) -> None:
    path = split_path(enrolment_id, step_id, weights)
    assert 0 <= path < len(weights)
    assert split_path(enrolment_id, step_id, weights) == path


def test_a_split_keeps_its_shares() -> None:
    drawn = Counter(split_path(i, "ab", [20, 30, 50]) for i in range(1, 20_001))
    for path, share in enumerate((0.2, 0.3, 0.5)):
        assert abs(drawn[path] / 20_000 - share) < 0.015


@pytest.mark.parametrize(
    ("policy", "active", "last_days_ago", "expected"),
    [
        (Reentry(), False, None, True),
        (Reentry(), False, 400, False),
        (Reentry(), True, None, False),
        (Reentry(policy="once_per", days=7), False, 6, False),
        (Reentry(policy="once_per", days=7), False, 7, True),
        (Reentry(policy="every_time"), False, 0, True),
        (Reentry(policy="every_time"), True, 0, False),
    ],
)
def test_reentry(policy: Reentry, active: bool, last_days_ago: int | None, expected: bool) -> None:
    last = None if last_days_ago is None else NOW - timedelta(days=last_days_ago)
    assert may_enter(policy, active=active, last_entered=last, now=NOW) is expected


def test_daily_checks_run_once_a_day_from_their_time() -> None:
    ten = time(10, 0)
    assert scheduled_day(local("2026-03-02 09:59"), ten, ZONE, None) is None
    assert scheduled_day(local("2026-03-02 10:00"), ten, ZONE, None) == date(2026, 3, 2)
    assert scheduled_day(local("2026-03-02 23:00"), ten, ZONE, date(2026, 3, 2)) is None
    assert scheduled_day(local("2026-03-05 11:00"), ten, ZONE, date(2026, 3, 2)) == date(2026, 3, 5)


def test_birthdays() -> None:
    assert solar_birthday_keys(date(2026, 2, 28)) == [(2, 28), (2, 29)]
    assert solar_birthday_keys(date(2028, 2, 28)) == [(2, 28)]
    assert solar_birthday_keys(date(2028, 2, 29)) == [(2, 29)]
    assert lunar_birthday_keys(date(2026, 2, 17)) == (2026, [(1, 1)])  # Spring Festival
    # 2025 has a leap 6th month: birthdays are kept in the regular one.
    assert lunar_birthday_keys(date(2025, 7, 25)) == (2025, [])  # 闰六月初一
    # The 12th month of lunar 2025 has 29 days: the 30th is kept on the 29th.
    assert lunar_birthday_keys(date(2026, 2, 16)) == (2025, [(12, 29), (12, 30)])
    assert anniversary_years(date(2024, 2, 29), date(2026, 2, 28)) == 2
    assert anniversary_years(date(2025, 3, 5), date(2026, 3, 5)) == 1
    assert anniversary_years(date(2026, 3, 5), date(2026, 3, 5)) is None


def holiday(**fields: Any) -> HolidayTrigger:
    return HolidayTrigger(type="holiday", **fields)


def test_holiday_offsets_use_the_official_calendar() -> None:
    mid_autumn = holiday(holiday="中秋节", offset_days=-3)
    assert holiday_trigger_day(mid_autumn, 2026) == date(2026, 9, 22)
    # 2025's Mid-autumn day falls inside the National Day holiday; the calendar names it.
    assert holiday_trigger_day(mid_autumn, 2025) == date(2025, 10, 3)
    # Saturday 14 Feb 2026 is a make-up workday: two working days before the Spring
    # Festival holiday (from the 15th) is Friday the 13th, not Thursday the 12th.
    spring = holiday(holiday="春节", offset_days=-2, workdays=True)
    assert holiday_trigger_day(spring, 2026) == date(2026, 2, 13)
    after_national_day = holiday(holiday="国庆节", anchor="end", offset_days=1, workdays=True)
    assert holiday_trigger_day(after_national_day, 2025) == date(2025, 10, 9)
    assert holiday_occurrence(mid_autumn, date(2026, 9, 22)) == 2026
    assert holiday_occurrence(mid_autumn, date(2026, 9, 23)) is None
    assert next_holiday_trigger(mid_autumn, date(2026, 9, 23)) is None  # 2027 not published
    with pytest.raises(HolidayCalendarMissing, match="2027"):
        holiday_trigger_day(mid_autumn, 2027)


def facts(**fields: Any) -> EventFacts:
    base: dict[str, Any] = {
        "type": "purchase",
        "amount_fen": 12_345,
        "order_id": "A1",
        "category": "母婴",
        "coupon_code": None,
        "properties": {"sku": "X-1", "qty": 3, "vip": True},
    }
    return EventFacts(**(base | fields))


def where(**fields: Any) -> list[EventFilter]:
    return [EventFilter.model_validate(fields)]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (where(property="category", op="equals", value="母婴"), True),
        (where(property="category", op="in", values=["数码", "服饰"]), False),
        (where(property="amount", op="range", min=100, max=123.45), True),
        (where(property="amount", op="range", min=123.46), False),
        (where(property="amount", op="equals", value="123.45"), True),
        (where(property="qty", op="range", min=2), True),
        (where(property="sku", op="range", min=2), False),  # not a number
        (where(property="sku", op="contains", value="X-"), True),
        (where(property="vip", op="equals", value="true"), True),
        (where(property="coupon_code", op="exists"), False),
        (where(property="colour", op="exists"), False),
        ([], True),
    ],
)
def test_event_filters(filters: list[EventFilter], expected: bool) -> None:
    assert event_matches(filters, facts()) is expected
