"""Compliance rules: tables of known cases and properties over generated schedules."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echelon.compliance.rules import (
    BlockReason,
    Caps,
    History,
    QuietHours,
    Sent,
    cap_check,
    eligibility,
)

T0 = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


@pytest.mark.parametrize(
    ("kind", "consent", "suppressions", "expected"),
    [
        ("marketing", True, set(), None),
        ("marketing", False, set(), BlockReason.NO_CONSENT),
        ("marketing", True, {"opt_out"}, BlockReason.OPT_OUT),
        ("marketing", True, {"dnc"}, BlockReason.DNC),
        ("marketing", False, {"blacklist", "opt_out"}, BlockReason.BLACKLIST),
        ("service", False, {"opt_out", "dnc"}, None),
        ("service", False, {"blacklist"}, BlockReason.BLACKLIST),
        ("service", True, {"invalid"}, BlockReason.INVALID),
        ("verification", False, {"blacklist", "opt_out", "dnc"}, None),
        ("verification", False, {"invalid"}, BlockReason.INVALID),
    ],
)
def test_eligibility(
    kind: str, consent: bool, suppressions: set[str], expected: BlockReason | None
) -> None:
    result = eligibility(kind, marketing_consent=consent, suppressions=suppressions)  # type: ignore[arg-type]
    assert result is expected


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.mark.parametrize(
    ("window", "moment", "expected"),
    [
        ((time(8), time(21)), shanghai(5, 12), shanghai(5, 12)),
        ((time(8), time(21)), shanghai(5, 21), shanghai(6, 8)),
        ((time(8), time(21)), shanghai(5, 7, 59), shanghai(5, 8)),
        ((time(8), time(21)), shanghai(5, 23, 30), shanghai(6, 8)),
        ((time(22), time(6)), shanghai(5, 23), shanghai(5, 23)),
        ((time(22), time(6)), shanghai(5, 3), shanghai(5, 3)),
        ((time(22), time(6)), shanghai(5, 6), shanghai(5, 22)),
        ((time(22), time(6)), shanghai(5, 12), shanghai(5, 22)),
        ((time(0), time(0)), shanghai(5, 3), shanghai(5, 3)),
    ],
)
def test_quiet_hours_move_a_message_to_the_next_window(
    window: tuple[time, time], moment: datetime, expected: datetime
) -> None:
    assert QuietHours(*window).next_allowed(moment) == expected


times_of_day = st.times().map(lambda t: t.replace(second=0, microsecond=0))
moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@given(times_of_day, times_of_day, moments)
def test_next_allowed_is_allowed_and_never_earlier(
    start: time, end: time, moment: datetime
) -> None:
    hours = QuietHours(start, end)
    shifted = hours.next_allowed(moment)
    assert hours.allows(shifted)
    assert moment <= shifted < moment + timedelta(days=1, minutes=1)
    if hours.allows(moment):
        assert shifted == moment


def test_caps_table() -> None:
    caps = Caps()
    history = History([Sent(T0, "marketing", "a")])
    assert cap_check("marketing", T0 + timedelta(hours=23), "b", history, caps) is (
        BlockReason.MIN_GAP
    )
    assert cap_check("marketing", T0 + timedelta(hours=24), "b", history, caps) is None
    assert cap_check("service", T0 + timedelta(seconds=10), "a", history, caps) is (
        BlockReason.DUPLICATE
    )
    assert cap_check("service", T0 + timedelta(seconds=40), "b", history, caps) is (
        BlockReason.RATE_LIMIT
    )
    assert cap_check("service", T0 + timedelta(seconds=61), "b", history, caps) is None
    busy = History([Sent(T0 + timedelta(minutes=i * 2), "service", str(i)) for i in range(5)])
    assert cap_check("service", T0 + timedelta(minutes=11), "x", busy, caps) is (
        BlockReason.RATE_LIMIT
    )
    assert cap_check("service", T0 + timedelta(minutes=70), "x", busy, caps) is None
    month = History([Sent(T0 + timedelta(days=7 * i), "marketing", str(i)) for i in range(4)])
    assert cap_check("marketing", T0 + timedelta(days=29), "x", month, caps) is (
        BlockReason.FREQUENCY_CAP
    )
    assert cap_check("marketing", T0 + timedelta(days=30), "x", month, caps) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=120 * 24 * 60), min_size=1, max_size=60),
    st.sampled_from([(time(8), time(21)), (time(22), time(6)), (time(9, 30), time(9, 45))]),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=0, max_value=72),
)
def test_no_schedule_breaks_quiet_hours_or_caps(
    minutes: list[int], window: tuple[time, time], cap: int, gap_hours: int
) -> None:
    """Messages planned in any order: what the rules accept never sends in quiet hours,
    never exceeds the cap in any rolling 30 days, and keeps the minimum gap."""
    hours = QuietHours(*window)
    caps = Caps(marketing_max=cap, marketing_min_gap=timedelta(hours=gap_hours))
    history = History()
    accepted: list[datetime] = []
    for i, minute in enumerate(minutes):
        due = hours.next_allowed(T0 + timedelta(minutes=minute))
        if cap_check("marketing", due, f"text-{i}", history, caps) is None:
            history.add(Sent(due, "marketing", f"text-{i}"))
            accepted.append(due)
    accepted.sort()
    assert accepted
    assert all(hours.allows(at) for at in accepted)
    for i, start in enumerate(accepted):
        inside = [at for at in accepted[i:] if at - start < caps.marketing_window]
        assert len(inside) <= cap
        if i:
            assert start - accepted[i - 1] >= caps.marketing_min_gap
