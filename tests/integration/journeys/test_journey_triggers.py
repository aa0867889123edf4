"""Triggers other than events: entering a segment, birthdays (solar and lunar),
membership anniversaries, inactivity, and the official holiday calendar."""

from __future__ import annotations

from datetime import timedelta

from journeys_support import PHONES, T0, entered, events, journey, local
from sqlalchemy import Engine

from echelon.audience.records import upsert_contacts
from echelon.journeys.runner import JourneyRunner
from echelon.journeys.service import show_journey
from echelon.segments.service import create_segment
from echelon.workspaces.service import Workspace

SEND = [{"id": "hello", "type": "send", "template": "你好"}]


def contacts(engine: Engine, ws: Workspace, records: list[dict[str, object]], at=T0) -> None:  # type: ignore[no-untyped-def]
    upsert_contacts(
        engine,
        workspace_id=ws.id,
        records=[{"consent": True, **r} for r in records],
        consent_source="test",
        list_name=None,
        now=at,
    )


def test_entering_a_segment_enters_the_journey(engine: Engine, shop: Workspace) -> None:
    contacts(engine, shop, [{"phone": PHONES[0], "tags": ["VIP"]}])
    create_segment(
        engine,
        workspace_id=shop.id,
        name="贵宾",
        definition={"kind": "tag", "tags": ["VIP"]},
        now=T0,
    )
    trigger = {"type": "segment", "segment": "贵宾"}
    journey(engine, shop, "新贵宾", {"trigger": trigger, "steps": SEND})
    journey(
        engine, shop, "全部贵宾", {"trigger": {**trigger, "include_existing": True}, "steps": SEND}
    )
    runner = JourneyRunner(engine)
    assert runner.advance(T0).entered == 1  # only 全部贵宾 takes those already in
    contacts(engine, shop, [{"phone": PHONES[1], "tags": ["VIP"]}], at=T0 + timedelta(seconds=10))
    assert runner.advance(T0 + timedelta(seconds=30)).entered == 0  # scanned once a minute
    assert runner.advance(T0 + timedelta(minutes=2)).entered == 2  # both journeys
    assert runner.advance(T0 + timedelta(minutes=4)).entered == 0
    assert [phone for phone, _ in entered(engine)] == [PHONES[0], PHONES[1], PHONES[1]]


def test_birthdays_solar_lunar_and_the_29th_of_february(engine: Engine, shop: Workspace) -> None:
    contacts(
        engine,
        shop,
        [
            {"phone": PHONES[0], "birthday": "1990-03-05"},
            # 2026-03-05 is the 17th of the 1st lunar month.
            {"phone": PHONES[1], "birthday": "1988-01-17", "birthday_lunar": True},
            {"phone": PHONES[2], "birthday": "1992-02-29"},
            {"phone": PHONES[3], "birthday": "1990-01-17"},  # solar 17 Jan: not today
        ],
    )
    trigger = {"type": "date", "field": "birthday", "at": "09:30"}
    journey(
        engine, shop, "生日", {"trigger": trigger, "steps": SEND}, at=local("2026-02-27", "12:00")
    )
    runner = JourneyRunner(engine)
    assert runner.advance(local("2026-02-28", "09:00")).entered == 0  # not 09:30 yet
    assert runner.advance(local("2026-02-28", "09:31")).entered == 1  # 29 Feb, kept on the 28th
    assert runner.advance(local("2026-02-28", "18:00")).entered == 0  # once a day
    assert runner.advance(local("2026-03-05", "10:00")).entered == 2
    assert entered(engine) == [
        (PHONES[0], "birthday:2026:" + key(engine, PHONES[0])),
        (PHONES[1], "birthday:L2026:" + key(engine, PHONES[1])),
        (PHONES[2], "birthday:2026:" + key(engine, PHONES[2])),
    ]


def key(engine: Engine, phone: str) -> str:
    from sqlalchemy import select

    from echelon.db.tables import contacts as table

    with engine.connect() as conn:
        return str(
            conn.execute(select(table.c.id).where(table.c.phone == f"+86{phone}")).scalar_one()
        )


def test_membership_anniversaries(engine: Engine, shop: Workspace) -> None:
    contacts(engine, shop, [{"phone": "13900139000"}], at=local("2024-03-05", "20:00"))
    template_years = {"id": "hello", "type": "send", "template": "你好"}
    journey(
        engine,
        shop,
        "入会纪念",
        {"trigger": {"type": "date", "field": "anniversary"}, "steps": [template_years]},
        at=local("2026-03-01", "12:00"),
    )
    journey(
        engine,
        shop,
        "入会纪念（属性）",
        {
            "trigger": {"type": "date", "field": "anniversary", "attribute": "入会日期"},
            "steps": [template_years],
        },
        at=local("2026-03-01", "12:00"),
    )
    upsert_contacts(
        engine,
        workspace_id=shop.id,
        records=[{"phone": PHONES[0], "attributes": {"入会日期": "2025-03-05"}}],
        consent_source=None,
        list_name=None,
        now=T0,
    )
    runner = JourneyRunner(engine)
    assert runner.advance(local("2026-03-04", "10:30")).entered == 0
    assert runner.advance(local("2026-03-05", "10:30")).entered == 2
    from sqlalchemy import select

    from echelon.db.journeys import journey_enrolments

    with engine.connect() as conn:
        years = sorted(
            c["years"] for c in conn.execute(select(journey_enrolments.c.context)).scalars()
        )
    assert years == [1, 2]


def test_inactivity_enters_once_when_the_days_have_passed(engine: Engine, shop: Workspace) -> None:
    events(engine, shop, "purchase", [PHONES[0]], T0 - timedelta(days=100))
    events(engine, shop, "purchase", [PHONES[1]], T0 - timedelta(days=10))
    events(engine, shop, "purchase", [PHONES[3]], T0 - timedelta(days=89))
    trigger = {"type": "inactivity", "days": 90, "events": ["purchase"], "at": "10:00"}
    journey(engine, shop, "沉睡", {"trigger": trigger, "steps": SEND})
    runner = JourneyRunner(engine)
    first = runner.advance(T0)  # 10:00: everyone quiet for 90 days, never-buyers by joining
    assert first.entered == 8
    assert PHONES[1] not in {p for p, _ in entered(engine)}
    assert runner.advance(T0 + timedelta(days=1)).entered == 1  # 13800138003 crossed the line
    assert runner.advance(T0 + timedelta(days=2)).entered == 0


def test_holiday_offsets_follow_the_official_calendar(engine: Engine, shop: Workspace) -> None:
    mid_autumn = {"type": "holiday", "holiday": "中秋", "offset_days": -3, "at": "10:00"}
    # 2026's Spring Festival holiday starts on Sunday 15 Feb; Saturday the 14th is a
    # make-up workday (调休), so two working days before is Friday the 13th.
    spring = {
        "type": "holiday",
        "holiday": "春节",
        "offset_days": -2,
        "workdays": True,
        "at": "10:00",
    }
    at = local("2026-02-01", "12:00")
    journey(engine, shop, "中秋", {"trigger": mid_autumn, "steps": SEND}, at=at)
    journey(engine, shop, "春节", {"trigger": spring, "steps": SEND}, at=at)
    shown = show_journey(engine, workspace_id=shop.id, name="中秋", now=at)
    assert shown["next_trigger"] == "2026-09-22 10:00"
    runner = JourneyRunner(engine)
    assert runner.advance(local("2026-02-12", "10:30")).entered == 0
    assert runner.advance(local("2026-02-13", "10:30")).entered == len(PHONES)
    assert runner.advance(local("2026-02-14", "10:30")).entered == 0
    assert runner.advance(local("2026-09-21", "10:30")).entered == 0
    assert runner.advance(local("2026-09-22", "09:59")).entered == 0
    assert runner.advance(local("2026-09-22", "10:00")).entered == len(PHONES)
    keys = {k.rsplit(":", 1)[0] for _, k in entered(engine)}
    assert keys == {"holiday:2026"}
