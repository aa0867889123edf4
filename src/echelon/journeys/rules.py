"""The journey rules, pure: what a step does, when a wait ends, who a date or holiday
trigger enters today, whether a contact may enter again, and which path a split takes.

Nothing here reads a clock or a database: ``now`` and every fact (did the event
happen, did they click) are passed in, so a 30-day journey is tested in
milliseconds and the runner stays a thin set-based layer around these functions.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

from echelon.compliance.rules import QuietHours
from echelon.journeys.lunar import LunarOutOfRange, month_days, to_lunar
from echelon.journeys.models import (
    BranchStep,
    ExitStep,
    HolidayTrigger,
    JourneyDefinition,
    Reentry,
    SendStep,
    SplitStep,
    WaitForStep,
    WaitStep,
)
from echelon.segments.models import EventFilter

# ---------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Go:
    """Move on now to ``step`` (None: the journey is complete)."""

    step: str | None


@dataclass(frozen=True, slots=True)
class Send:
    """Plan ``template``; then move on to ``step`` once the message is due."""

    template: str
    step: str | None


@dataclass(frozen=True, slots=True)
class Wait:
    """Stay on the step until ``until`` (or until woken by what it waits for)."""

    until: datetime


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the journey here (an ``exit`` step)."""

    reason: str


Outcome = Go | Send | Wait | Leave


def decide(
    definition: JourneyDefinition,
    step_id: str,
    *,
    enrolment_id: int,
    waiting_since: datetime | None,
    happened: bool,
    now: datetime,
    timezone: str,
    quiet_hours: QuietHours,
) -> Outcome:
    """What the enrolment at ``step_id`` does at ``now``.

    ``waiting_since``: when it began waiting at this step (None: it just arrived).
    ``happened``: for ``wait_for``, whether what it waits for happened since then; for
    ``branch``, whether the condition holds."""
    step = definition.step(step_id)
    if isinstance(step, SendStep):
        return Send(step.template, definition.next_of(step.id, step.next))
    if isinstance(step, WaitStep):
        if waiting_since is None:
            until = wait_until(
                now,
                span=step.span,
                at=step.at,
                weekday=step.weekday,
                window=step.window,
                timezone=timezone,
                quiet_hours=quiet_hours,
            )
            if until > now:
                return Wait(until)
        return Go(definition.next_of(step.id, step.next))
    if isinstance(step, WaitForStep):
        if waiting_since is None:
            return Wait(now + step.span)
        if happened:
            return Go(definition.next_of(step.id, step.then))
        deadline = waiting_since + step.span
        if now >= deadline:
            return Go(definition.next_of(step.id, step.otherwise))
        return Wait(deadline)
    if isinstance(step, BranchStep):
        chosen = step.then if happened else step.otherwise
        return Go(definition.next_of(step.id, chosen))
    if isinstance(step, SplitStep):
        path = split_path(enrolment_id, step.id, [p.percent for p in step.paths])
        return Go(step.paths[path].next)
    assert isinstance(step, ExitStep)
    return Leave("exit_step")


def wait_until(
    start: datetime,
    *,
    span: timedelta,
    at: time | None,
    weekday: int | None,
    window: bool,
    timezone: str,
    quiet_hours: QuietHours,
) -> datetime:
    """The end of a wait begun at ``start``: after ``span``, then the first moment at
    or after that which is on ``weekday`` (1 = Monday) at ``at`` (00:00 if only the
    weekday is given) in the workspace's time zone, then — with ``window`` — the
    first moment sending is allowed (quiet hours)."""
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    moment = start + span
    if at is not None or weekday is not None:
        zone = ZoneInfo(timezone)
        day = moment.astimezone(zone).date()
        clock = at or time(0, 0)
        candidate = datetime.combine(day, clock, tzinfo=zone)
        while candidate < moment or (weekday is not None and day.isoweekday() != weekday):
            day += timedelta(days=1)
            candidate = datetime.combine(day, clock, tzinfo=zone)
        moment = candidate
    if window:
        moment = quiet_hours.next_allowed(moment)
    return moment.astimezone(UTC)


def split_path(enrolment_id: int, step_id: str, percents: Sequence[int]) -> int:
    """The path (index) an enrolment takes at a split: a fixed draw per enrolment and
    step, uniform over 0–99, so the shares hold and a retry takes the same path."""
    digest = hashlib.blake2b(f"{enrolment_id}:{step_id}".encode(), digest_size=8).digest()
    draw = int.from_bytes(digest, "big") % 100
    total = 0
    for i, percent in enumerate(percents):
        total += percent
        if draw < total:
            return i
    return len(percents) - 1


# ---------------------------------------------------------------- entering


def may_enter(
    policy: Reentry, *, active: bool, last_entered: datetime | None, now: datetime
) -> bool:
    """Whether a contact enters again: never while inside; then by the policy."""
    if active:
        return False
    if last_entered is None or policy.policy == "every_time":
        return True
    if policy.policy == "once":
        return False
    assert policy.window is not None
    return now - last_entered >= policy.window


def scheduled_day(now: datetime, at: time, timezone: str, last_day: date | None) -> date | None:
    """The workspace's date whose daily check is due at ``now`` (its time ``at`` has
    come and that day was not checked yet); None if none is. A day the runner did not
    run through is not made up later: a birthday greeting days late is worse than none."""
    local = now.astimezone(ZoneInfo(timezone))
    if local.time() < at or (last_day is not None and last_day >= local.date()):
        return None
    return local.date()


def solar_birthday_keys(day: date) -> list[tuple[int, int]]:
    """The (month, day) birthdays celebrated on ``day``: 29 Feb on 28 Feb in other years."""
    keys = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not _leap_year(day.year):
        keys.append((2, 29))
    return keys


def lunar_birthday_keys(day: date) -> tuple[int, list[tuple[int, int]]]:
    """The lunar year of ``day`` and the lunar (month, day) birthdays celebrated on it.

    Birthdays are kept in the regular month (none in a leap month); a 30th falls on
    the 29th in a month of 29 days."""
    lunar = to_lunar(day)
    if lunar.leap:
        return lunar.year, []
    keys = [(lunar.month, lunar.day)]
    if lunar.day == 29 and month_days(lunar.year, lunar.month) == 29:
        keys.append((lunar.month, 30))
    return lunar.year, keys


def anniversary_years(joined: date, day: date) -> int | None:
    """Whole years since ``joined`` if ``day`` is an anniversary of it, else None."""
    if day.year <= joined.year:
        return None
    if (joined.month, joined.day) in solar_birthday_keys(day):
        return day.year - joined.year
    return None


# ---------------------------------------------------------------- holidays


class HolidayCalendarMissing(Exception):
    """The official calendar of that year is not known (not yet published)."""


def holiday_period(calendar_name: str, year: int) -> tuple[date, date] | None:
    """First and last day of the official holiday named ``calendar_name`` in ``year``
    (None if it has none that year), from the published calendar."""
    known = _holiday_days()
    if year > max(y for y, _ in known) or year < min(y for y, _ in known):
        raise HolidayCalendarMissing(f"{year} 年的法定节假日安排尚未收录")
    days = known.get((year, calendar_name))
    return None if not days else (days[0], days[-1])


def holiday_trigger_day(trigger: HolidayTrigger, year: int) -> date | None:
    """The day a holiday trigger enters its audience for the holiday of ``year``."""
    period = holiday_period(trigger.calendar_name, year)
    if period is None:
        return None
    anchor = period[0] if trigger.anchor == "start" else period[1]
    if not trigger.workdays:
        return anchor + timedelta(days=trigger.offset_days)
    step = 1 if trigger.offset_days > 0 else -1
    day, left = anchor, abs(trigger.offset_days)
    while left:
        day += timedelta(days=step)
        try:
            if chinese_calendar.is_workday(day):
                left -= 1
        except NotImplementedError as exc:
            raise HolidayCalendarMissing(f"{day.year} 年的法定节假日安排尚未收录") from exc
    return day


def holiday_occurrence(trigger: HolidayTrigger, day: date) -> int | None:
    """The year of the holiday whose trigger day is ``day``, if any."""
    for year in (day.year - 1, day.year, day.year + 1):
        try:
            if holiday_trigger_day(trigger, year) == day:
                return year
        except HolidayCalendarMissing:
            continue
    return None


def next_holiday_trigger(trigger: HolidayTrigger, today: date) -> date | None:
    """The next trigger day on or after ``today`` that the published calendar knows."""
    for year in (today.year, today.year + 1):
        try:
            day = holiday_trigger_day(trigger, year)
        except HolidayCalendarMissing:
            return None
        if day is not None and day >= today:
            return day
    return None


@cache
def _holiday_days() -> dict[tuple[int, str], list[date]]:
    found: dict[tuple[int, str], list[date]] = {}
    for day, name in sorted(chinese_calendar.holidays.items()):
        found.setdefault((day.year, str(name)), []).append(day)
    return found


def _leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


# ---------------------------------------------------------------- event filters


@dataclass(frozen=True, slots=True)
class EventFacts:
    """One event as a filter sees it."""

    type: str
    amount_fen: int | None
    order_id: str | None
    category: str | None
    coupon_code: str | None
    properties: Mapping[str, Any]

    def value(self, name: str) -> object:
        if name in ("order_id", "category", "coupon_code"):
            return getattr(self, name)
        return self.properties.get(name)


def event_matches(filters: Sequence[EventFilter], event: EventFacts) -> bool:
    """Whether ``event`` passes every filter, as the segments compiler reads them:
    ``amount`` in yuan against whole fen; other properties as text (numbers when a
    range has number bounds); a missing value fails every test."""
    return all(_passes(f, event) for f in filters)


# What the databases read as a number (segments.expressions.as_number).
_PLAIN_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def _passes(node: EventFilter, event: EventFacts) -> bool:
    if node.property == "amount":
        return _amount_passes(node, event.amount_fen)
    value = event.value(node.property)
    if value is None:
        return False
    text = _as_text(value)
    if node.op == "exists":
        return text != ""
    if node.op in ("equals", "in"):
        return text in node.texts()
    if node.op == "contains":
        return str(node.value) in text
    bound = node.min if node.min is not None else node.max
    if isinstance(bound, Decimal):
        if not _PLAIN_NUMBER.match(text):
            return False
        number = Decimal(text)
        return (node.min is None or number >= Decimal(str(node.min))) and (
            node.max is None or number <= Decimal(str(node.max))
        )
    low, high = node.min, node.max
    return (low is None or text >= str(low)) and (high is None or text <= str(high))


def _amount_passes(node: EventFilter, fen: int | None) -> bool:
    if fen is None:
        return False
    if node.op == "exists":
        return True
    if node.op in ("equals", "in"):
        return any(fen == _fen(v, up=True) for v in node.texts())
    low = None if node.min is None else _fen(node.min, up=True)
    high = None if node.max is None else _fen(node.max, up=False)
    return (low is None or fen >= low) and (high is None or fen <= high)


def _fen(yuan: object, *, up: bool) -> int:
    fen = Decimal(str(yuan)) * 100
    return int(fen.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))


def _as_text(value: object) -> str:
    # As the databases give a JSON property as text: true/false, numbers as written.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


__all__ = [
    "EventFacts",
    "Go",
    "HolidayCalendarMissing",
    "Leave",
    "LunarOutOfRange",
    "Outcome",
    "Send",
    "Wait",
    "anniversary_years",
    "decide",
    "event_matches",
    "holiday_occurrence",
    "holiday_period",
    "holiday_trigger_day",
    "lunar_birthday_keys",
    "may_enter",
    "next_holiday_trigger",
    "scheduled_day",
    "solar_birthday_keys",
    "split_path",
    "wait_until",
]
