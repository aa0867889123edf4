"""The runner on both databases, with the clock moved by hand: journeys of weeks run
in a blink, and every step's message goes through the gate into the outbox."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from journeys_support import (
    T0,
    e164,
    enrolments,
    events,
    journey,
    run_through,
    sent,
    steps_by_phone,
    template,
)
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from echelon.audience.records import upsert_contacts
from echelon.audience.suppression import add_suppression
from echelon.compliance.policy import save_settings
from echelon.content.review import approve_template, edit_template
from echelon.db.journeys import journey_enrolments, journeys
from echelon.db.outbox import messages, replies
from echelon.db.tracking import coupons, links
from echelon.journeys.rules import split_path
from echelon.journeys.runner import JourneyRunner, advance_due
from echelon.journeys.service import (
    JourneyStateError,
    activate_journey,
    edit_journey,
    journey_stats,
    pause_journey,
)
from echelon.segments.service import create_segment
from echelon.tracking.clicks import ClickRecorder, LinkResolver
from echelon.tracking.conversions import attribute_all
from echelon.workspaces.service import Workspace

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR = timedelta(hours=1)

WELCOME = {
    "trigger": {"type": "event", "event": "signup"},
    "steps": [
        {"id": "hello", "type": "send", "template": "你好"},
        {"id": "day3", "type": "wait", "days": 3, "at": "10:00"},
        {"id": "bought", "type": "branch", "if": {"kind": "converted"}, "then": "bye"},
        {"id": "tips", "type": "send", "template": "点我"},
        {"id": "later", "type": "wait", "days": 20},
        {"id": "bye", "type": "send", "template": "再会"},
    ],
}


def test_a_thirty_day_journey_runs_in_a_blink(engine: Engine, shop: Workspace) -> None:
    journey(engine, shop, "欢迎", WELCOME)
    events(engine, shop, "signup", ["13800138000", "13800138001", "13800138002"], T0)
    events(engine, shop, "purchase", ["13800138000"], T0 + timedelta(days=1), amount="99")
    runner = JourneyRunner(engine)
    total = run_through(runner, T0, T0 + timedelta(days=30), timedelta(hours=6))

    assert total.entered == 3
    assert steps_by_phone(engine) == {
        e164("13800138000"): ["hello", "bye"],  # bought: straight to the goodbye on day 3
        e164("13800138001"): ["hello", "tips", "bye"],
        e164("13800138002"): ["hello", "tips", "bye"],
    }
    with engine.connect() as conn:
        due = {
            (phone, step): at
            for phone, step, at in conn.execute(
                select(messages.c.phone, messages.c.journey_step, messages.c.due_at)
            )
        }
    assert due[e164("13800138001"), "tips"] == T0 + timedelta(days=3)  # day 3 at 10:00
    with engine.connect() as conn:
        places = {
            tuple(row) for row in conn.execute(select(messages.c.carrier, messages.c.province))
        }
    assert places == {("china_mobile", "北京市")}  # where 138 0013 8xxx is, on every message
    assert due[e164("13800138001"), "bye"] == T0 + timedelta(days=23)
    assert enrolments(engine) == {("completed", "bye", "end"): 3}
    stats = journey_stats(engine, workspace_id=shop.id, name="欢迎")
    by_step = {s["step"]: s for s in stats["steps"]}
    assert [by_step[s]["entered"] for s in ("hello", "day3", "bought", "tips", "later", "bye")] == [
        3, 3, 3, 2, 2, 3,
    ]  # fmt: skip
    assert by_step["tips"]["pending"] == 2 and by_step["bye"]["exited"] == {"end": 3}
    assert stats["enrolments"] == {"active": 0, "completed": 3, "exited": 0}
    # The link in 点我 is each recipient's own short link, tied to its message.
    with engine.connect() as conn:
        tied = conn.execute(
            select(links.c.message_id, messages.c.text).join(
                messages, messages.c.id == links.c.message_id
            )
        ).all()
    assert len(tied) == 2 and all(re.search(r"https://s\.echelon\.cn/\w{7}", t) for _, t in tied)


CART = {
    "trigger": {
        "type": "event",
        "event": "cart_add",
        "where": [{"property": "category", "op": "equals", "value": "母婴"}],
    },
    "reentry": {"policy": "once_per", "days": 7},
    "goal": {"event": "purchase"},
    "steps": [
        {"id": "w24", "type": "wait", "hours": 24, "window": True},
        {"id": "remind", "type": "send", "template": "提醒"},
        {"id": "w48", "type": "wait", "hours": 48, "window": True},
        {"id": "offer", "type": "send", "template": "优惠"},
    ],
}


def test_a_purchase_ends_cart_abandonment_at_whatever_step(engine: Engine, shop: Workspace) -> None:
    journey(engine, shop, "购物车挽回", CART)
    night = T0 + 12 * HOUR  # 22:00 in Shanghai
    cart = ["13800138000", "13800138001", "13800138002", "13800138003"]
    events(engine, shop, "cart_add", cart, night, category="母婴")
    events(engine, shop, "cart_add", ["13800138004"], night, category="数码")  # not this one
    runner = JourneyRunner(engine)
    run_through(runner, night, night + 9 * HOUR, HOUR)
    events(engine, shop, "purchase", ["13800138001"], night + 10 * HOUR)  # before the reminder
    run_through(runner, night + 10 * HOUR, night + 39 * HOUR, HOUR)
    events(engine, shop, "purchase", ["13800138002"], night + 40 * HOUR)  # after it
    run_through(runner, night + 40 * HOUR, night + timedelta(days=5), HOUR)

    assert steps_by_phone(engine) == {
        e164("13800138000"): ["remind", "offer"],
        e164("13800138002"): ["remind"],
        e164("13800138003"): ["remind", "offer"],
    }
    with engine.connect() as conn:
        row = conn.execute(
            select(messages.c.due_at, messages.c.text).where(
                messages.c.phone == e164("13800138000"), messages.c.journey_step == "remind"
            )
        ).one()
    # 24 h after 22:00 is 22:00 again, outside the window: the reminder waits for 08:00.
    assert row.due_at.astimezone(SHANGHAI).hour == 8
    assert "您加购的母婴还在" in row.text
    assert enrolments(engine) == {
        ("completed", "offer", "end"): 2,
        ("exited", "w24", "goal"): 1,
        ("exited", "w48", "goal"): 1,
    }
    with engine.connect() as conn:
        codes = conn.execute(select(coupons.c.code, coupons.c.message_id)).all()
    assert len(codes) == 2 and all(message_id for _, message_id in codes)


RETENTION = {
    "trigger": {"type": "event", "event": "points_expiring"},
    "steps": [
        {"id": "points", "type": "send", "template": "你好"},
        {
            "id": "redeem",
            "type": "wait_for",
            "event": "points_redeemed",
            "days": 3,
            "then": "done",
            "else": "benefits",
        },
        {"id": "benefits", "type": "send", "template": "再会"},
        {"id": "done", "type": "exit"},
    ],
}


def test_wait_for_an_event_wakes_at_once_or_times_out(engine: Engine, shop: Workspace) -> None:
    journey(engine, shop, "会员关怀", RETENTION)
    events(engine, shop, "points_expiring", ["13800138000", "13800138001"], T0, points="300")
    runner = JourneyRunner(engine)
    runner.advance(T0)
    events(engine, shop, "points_redeemed", ["13800138000"], T0 + HOUR)
    woke = runner.advance(T0 + 2 * HOUR)
    assert woke.woken == 1  # woken by the event, not left until the timeout
    assert enrolments(engine)[("completed", "done", "exit_step")] == 1
    run_through(runner, T0 + 3 * HOUR, T0 + timedelta(days=3, hours=6), 3 * HOUR)
    assert steps_by_phone(engine) == {
        e164("13800138000"): ["points"],
        e164("13800138001"): ["points", "benefits"],
    }
    with engine.connect() as conn:
        due = conn.execute(
            select(messages.c.due_at).where(messages.c.journey_step == "benefits")
        ).scalar_one()
    assert T0 + timedelta(days=3) <= due <= T0 + timedelta(days=3, hours=3)


def click(
    engine: Engine, phone: str, at: datetime, *, agent: str = "Mozilla/5.0 (iPhone)", name: str
) -> None:
    """A tap on the link in the last message of journey ``name`` to ``phone``, through
    the redirect's own path (resolve the code, record the hit)."""
    with engine.connect() as conn:
        code = conn.execute(
            select(links.c.code)
            .join(messages, messages.c.id == links.c.message_id)
            .join(journeys, journeys.c.id == messages.c.journey_id)
            .where(messages.c.phone == e164(phone), journeys.c.name == name)
            .order_by(links.c.id.desc())
            .limit(1)
        ).scalar_one()
    target = LinkResolver(engine).load(code)
    assert target is not None
    recorder = ClickRecorder(engine)
    recorder.observe(target, method="GET", user_agent=agent, ip="10.0.0.1", now=at)
    recorder.close()


CLICKS = {
    "trigger": {"type": "event", "event": "signup"},
    "steps": [
        {"id": "new", "type": "send", "template": "点我"},
        {"id": "tap", "type": "wait_for", "click": True, "hours": 48, "then": "thanks"},
        {"id": "nudge", "type": "send", "template": "提醒", "next": "end"},
        {"id": "thanks", "type": "send", "template": "再会"},
        {"id": "end", "type": "exit"},
    ],
}


def test_a_click_moves_a_waiting_contact_on(engine: Engine, shop: Workspace) -> None:
    journey(engine, shop, "点击", CLICKS)
    events(engine, shop, "signup", ["13800138000", "13800138001", "13800138002"], T0)
    runner = JourneyRunner(engine)
    runner.advance(T0)
    click(engine, "13800138000", T0 + HOUR, name="点击")
    preview = "WhatsApp/2.23 link preview"  # not a person
    click(engine, "13800138001", T0 + HOUR, agent=preview, name="点击")
    assert runner.advance(T0 + 2 * HOUR).woken == 1
    run_through(runner, T0 + 3 * HOUR, T0 + timedelta(days=3), 6 * HOUR)
    assert steps_by_phone(engine) == {
        e164("13800138000"): ["new", "thanks"],
        e164("13800138001"): ["new", "nudge"],
        e164("13800138002"): ["new", "nudge"],
    }
    by_step = {
        s["step"]: s for s in journey_stats(engine, workspace_id=shop.id, name="点击")["steps"]
    }
    assert by_step["new"]["clicked"] == 1 and by_step["new"]["converted"] == 0
    # A purchase after the click is credited to the clicked message (tracking's
    # attribution): the step's conversions count it.
    events(engine, shop, "purchase", ["13800138000"], T0 + timedelta(days=3, hours=1), amount="99")
    attribute_all(engine, now=T0 + timedelta(days=3, hours=2))
    by_step = {
        s["step"]: s for s in journey_stats(engine, workspace_id=shop.id, name="点击")["steps"]
    }
    assert by_step["new"]["converted"] == 1
    assert by_step["thanks"]["converted"] == by_step["nudge"]["converted"] == 0


def branch_journey(condition: dict[str, object]) -> dict[str, object]:
    return {
        "trigger": {"type": "event", "event": "signup"},
        "steps": [
            {"id": "first", "type": "send", "template": "点我"},
            {"id": "pause", "type": "wait", "hours": 2},
            {"id": "which", "type": "branch", "if": condition, "then": "yes", "else": "no"},
            {"id": "no", "type": "send", "template": "提醒", "next": "end"},
            {"id": "yes", "type": "send", "template": "再会"},
            {"id": "end", "type": "exit"},
        ],
    }


def test_branches_on_clicks_replies_segments_and_conditions(
    engine: Engine, shop: Workspace
) -> None:
    upsert_contacts(
        engine,
        workspace_id=shop.id,
        records=[
            {"phone": "13800138003", "tags": ["VIP"]},
            {"phone": "13800138004", "tags": ["VIP"]},
        ],
        consent_source=None,
        list_name=None,
        now=T0,
    )
    create_segment(
        engine,
        workspace_id=shop.id,
        name="贵宾",
        definition={"kind": "tag", "tags": ["VIP"]},
        now=T0,
    )
    journey(engine, shop, "点击分支", branch_journey({"kind": "clicked"}))
    journey(engine, shop, "回复分支", branch_journey({"kind": "replied"}))
    journey(engine, shop, "分群分支", branch_journey({"kind": "segment", "segment": "贵宾"}))
    journey(
        engine,
        shop,
        "条件分支",
        branch_journey({"kind": "condition", "condition": {"kind": "tag", "tags": ["VIP"]}}),
    )
    everyone = [f"1380013800{i}" for i in range(5)]
    events(engine, shop, "signup", everyone, T0)
    runner = JourneyRunner(engine)
    runner.advance(T0)
    click(engine, "13800138001", T0 + HOUR, name="点击分支")
    with engine.begin() as conn:
        message_id, contact_id = conn.execute(
            select(messages.c.id, messages.c.contact_id)
            .join(journeys, journeys.c.id == messages.c.journey_id)
            .where(messages.c.phone == e164("13800138002"), journeys.c.name == "回复分支")
        ).one()
        conn.execute(
            insert(replies).values(
                workspace_id=shop.id, phone=e164("13800138002"), contact_id=contact_id,
                message_id=message_id, text="好的", received_at=T0 + HOUR,
            )
        )  # fmt: skip
    run_through(runner, T0 + HOUR, T0 + 4 * HOUR, HOUR)
    m, e = messages.c, journey_enrolments.c
    with engine.connect() as conn:
        took = {
            (name, phone)
            for name, phone in conn.execute(
                select(journeys.c.name, m.phone)
                .join(journeys, journeys.c.id == m.journey_id)
                .where(m.journey_step == "yes")
            )
        }
        assert conn.execute(select(e.status).distinct()).scalars().all() == ["completed"]
    assert took == {
        ("点击分支", e164("13800138001")),
        ("回复分支", e164("13800138002")),
        ("分群分支", e164("13800138003")),
        ("分群分支", e164("13800138004")),
        ("条件分支", e164("13800138003")),
        ("条件分支", e164("13800138004")),
    }


def test_a_split_sends_each_contact_down_its_drawn_path(engine: Engine, shop: Workspace) -> None:
    definition = {
        "trigger": {"type": "event", "event": "signup"},
        "steps": [
            {
                "id": "ab",
                "type": "split",
                "paths": [{"percent": 30, "next": "a"}, {"percent": 70, "next": "b"}],
            },
            {"id": "a", "type": "send", "template": "你好", "next": "end"},
            {"id": "b", "type": "send", "template": "再会"},
            {"id": "end", "type": "exit"},
        ],
    }
    journey(engine, shop, "拆分", definition)
    phones = [f"1380013800{i}" for i in range(10)]
    events(engine, shop, "signup", phones, T0)
    advance_due(engine, T0)
    with engine.connect() as conn:
        chosen = {
            eid: step
            for eid, step in conn.execute(select(messages.c.enrolment_id, messages.c.journey_step))
        }
    assert len(chosen) == 10
    assert all(chosen[eid] == ("a", "b")[split_path(eid, "ab", [30, 70])] for eid in chosen)
    stats = journey_stats(engine, workspace_id=shop.id, name="拆分")["steps"]
    assert [(s["step"], s["entered"]) for s in stats] == [
        ("ab", 10),
        ("a", list(chosen.values()).count("a")),
        ("b", list(chosen.values()).count("b")),
        ("end", 10),
    ]


SERVICE = {
    "trigger": {"type": "event", "event": "signup"},
    "steps": [
        {"id": "wait", "type": "wait", "days": 1},
        {"id": "notice", "type": "send", "template": "通知"},
    ],
}


def test_an_opt_out_ends_every_journey(engine: Engine, shop: Workspace) -> None:
    template(engine, shop, "通知", "您的会员卡已激活", kind="service")
    journey(engine, shop, "欢迎", WELCOME)
    journey(engine, shop, "通知", SERVICE)
    events(engine, shop, "signup", ["13800138000", "13800138001"], T0)
    runner = JourneyRunner(engine)
    runner.advance(T0)
    add_suppression(
        engine,
        workspace_id=shop.id,
        phone="13800138000",
        kind="opt_out",
        source="reply",
        reason="TD",
        now=T0 + HOUR,
    )
    done = runner.advance(T0 + 2 * HOUR)
    assert done.exited["opt_out"] == 2  # both journeys, the service one too
    run_through(runner, T0 + 3 * HOUR, T0 + timedelta(days=25), timedelta(hours=12))
    assert steps_by_phone(engine)[e164("13800138000")] == ["hello"]
    assert steps_by_phone(engine)[e164("13800138001")] == ["hello", "notice", "tips", "bye"]


def test_the_gate_applies_consent_quiet_hours_and_caps(engine: Engine, shop: Workspace) -> None:
    upsert_contacts(
        engine,
        workspace_id=shop.id,
        records=[{"phone": "13900139000", "name": "路人"}],  # no consent
        consent_source=None,
        list_name=None,
        now=T0,
    )
    with engine.begin() as conn:  # back to the default marketing caps: 24 h apart
        save_settings(conn, shop.id, {"marketing_min_gap_hours": 24})
    twice = {
        "trigger": {"type": "event", "event": "signup"},
        "steps": [
            {"id": "one", "type": "send", "template": "你好"},
            {"id": "two", "type": "send", "template": "再会"},
        ],
    }
    journey(engine, shop, "两条", twice)
    late = T0 + 13 * HOUR  # 23:00 in Shanghai
    events(engine, shop, "signup", ["13800138000", "13900139000"], late)
    advance_due(engine, late)
    assert sent(engine) == [
        (e164("13800138000"), "one", "queued", None),
        (e164("13900139000"), "one", "blocked", "no_consent"),
        (e164("13900139000"), "two", "blocked", "no_consent"),
    ]
    with engine.connect() as conn:
        due = conn.execute(
            select(messages.c.due_at).where(messages.c.status == "queued")
        ).scalar_one()
    assert due.astimezone(SHANGHAI).hour == 8  # moved out of quiet hours
    advance_due(engine, due)  # the second step runs when the first message goes
    assert sent(engine)[-1] == (e164("13800138000"), "two", "blocked", "min_gap")


def test_reentry_policies(engine: Engine, shop: Workspace) -> None:
    once = {"trigger": {"type": "event", "event": "signup"}, "steps": WELCOME["steps"][:1]}
    weekly = {**CART, "steps": [{"id": "remind", "type": "send", "template": "提醒"}]}
    every = {
        "trigger": {"type": "event", "event": "purchase"},
        "reentry": {"policy": "every_time"},
        "goal": {"event": "purchase"},
        "steps": [
            {"id": "wait", "type": "wait", "days": 30},
            {"id": "nudge", "type": "send", "template": "提醒"},
        ],
    }
    journey(engine, shop, "一次", once)
    journey(engine, shop, "每周", weekly)
    journey(engine, shop, "每次", every)
    runner = JourneyRunner(engine)
    phone = ["13800138000"]
    for day in (0, 3, 8):
        at = T0 + timedelta(days=day)
        events(engine, shop, "signup", phone, at, event_id=f"s{day}")
        events(engine, shop, "cart_add", phone, at, category="母婴")
        events(engine, shop, "purchase", phone, at + HOUR, event_id=f"p{day}")
        runner.advance(at + 2 * HOUR)
    with engine.connect() as conn:
        rows = conn.execute(
            select(journeys.c.name, journey_enrolments.c.status, journey_enrolments.c.exit_reason)
            .join(journeys, journeys.c.id == journey_enrolments.c.journey_id)
            .order_by(journey_enrolments.c.id)
        ).all()
    by_journey: dict[str, list[tuple[str, str | None]]] = {}
    for name, status, reason in rows:
        by_journey.setdefault(name, []).append((status, reason))
    assert by_journey["一次"] == [("completed", "end")]
    assert len(by_journey["每周"]) == 2  # day 0 and day 8, not day 3
    # Each purchase ends the running nudge (its goal) and starts a new one.
    assert by_journey["每次"] == [("exited", "goal"), ("exited", "goal"), ("active", None)]


def test_contacts_finish_on_the_version_they_entered(engine: Engine, shop: Workspace) -> None:
    v1 = {
        "trigger": {"type": "event", "event": "signup"},
        "steps": [
            {"id": "hello", "type": "send", "template": "你好"},
            {"id": "wait", "type": "wait", "days": 2},
            {"id": "bye", "type": "send", "template": "再会"},
        ],
    }
    journey(engine, shop, "版本", v1)
    events(engine, shop, "signup", ["13800138000"], T0)
    runner = JourneyRunner(engine)
    runner.advance(T0)
    v2 = {**v1, "steps": [v1["steps"][0], {"id": "soon", "type": "wait", "days": 1},
                          {"id": "remind", "type": "send", "template": "提醒"}]}  # fmt: skip
    edited = edit_journey(engine, workspace_id=shop.id, name="版本", definition=v2, now=T0 + HOUR)
    assert edited.version == 2
    events(engine, shop, "signup", ["13800138001"], T0 + 2 * HOUR)
    run_through(runner, T0 + 2 * HOUR, T0 + timedelta(days=3), 6 * HOUR)
    assert steps_by_phone(engine) == {
        e164("13800138000"): ["hello", "bye"],
        e164("13800138001"): ["hello", "remind"],
    }


def test_pause_holds_everything_and_resume_releases_it(engine: Engine, shop: Workspace) -> None:
    journey(engine, shop, "欢迎", WELCOME)
    events(engine, shop, "signup", ["13800138000"], T0)
    runner = JourneyRunner(engine)
    runner.advance(T0)
    assert pause_journey(engine, workspace_id=shop.id, name="欢迎", now=T0 + HOUR) == 1
    assert sent(engine) == [(e164("13800138000"), "hello", "planned", None)]
    with pytest.raises(JourneyStateError):
        pause_journey(engine, workspace_id=shop.id, name="欢迎", now=T0 + HOUR)
    events(engine, shop, "signup", ["13800138001"], T0 + 2 * HOUR)  # while paused: ignored
    assert runner.advance(T0 + timedelta(days=4)).work == 0
    activate_journey(engine, workspace_id=shop.id, name="欢迎", now=T0 + timedelta(days=4))
    assert sent(engine)[0][2] == "queued"
    done = runner.advance(T0 + timedelta(days=4, hours=1))
    assert done.entered == 0 and done.messages["queued"] == 1  # day 3 tips, late but sent


def test_an_unapproved_template_holds_its_step(engine: Engine, shop: Workspace) -> None:
    journey(engine, shop, "欢迎", WELCOME)
    edit_template(
        engine, workspace_id=shop.id, name="你好", body="{{ name }}，欢迎！", actor="运营", now=T0
    )  # back to pending review
    events(engine, shop, "signup", ["13800138000"], T0)
    runner = JourneyRunner(engine)
    assert runner.advance(T0).messages == {"held": 1}
    assert sent(engine) == []
    approve_template(engine, workspace_id=shop.id, name="你好", actor="审核", now=T0 + HOUR)
    assert runner.advance(T0 + 30 * timedelta(minutes=1)).messages["queued"] == 1


def test_a_step_never_gets_a_second_message(engine: Engine, shop: Workspace) -> None:
    journey(engine, shop, "欢迎", WELCOME)
    events(engine, shop, "signup", ["13800138000"], T0)
    advance_due(engine, T0)
    with engine.begin() as conn:
        row = conn.execute(select(messages).where(messages.c.journey_step == "hello")).one()
        values = {k: v for k, v in row._mapping.items() if k != "id"}
        # A stale runner's view: the enrolment is back at the step it already sent.
        conn.execute(
            update(journey_enrolments).values(step="hello", waiting_since=None, next_run_at=T0)
        )
    done = JourneyRunner(engine).advance(T0 + HOUR)
    assert done.messages == {"existing": 1}
    assert len(sent(engine)) == 1
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(messages).values(**values))


def test_work_is_idle_until_something_is_due(engine: Engine, shop: Workspace) -> None:
    journey(engine, shop, "欢迎", WELCOME)
    runner = JourneyRunner(engine)
    assert runner.advance(T0).work == 0
    events(engine, shop, "signup", ["13800138000"], T0)
    assert runner.advance(T0 + timedelta(seconds=1)).entered == 1
    assert runner.advance(T0 + timedelta(seconds=2)).work == 0
    with pytest.raises(ValueError, match="aware"):
        runner.advance(datetime(2026, 3, 2))


def test_events_before_activation_are_not_replayed(engine: Engine, shop: Workspace) -> None:
    events(engine, shop, "signup", ["13800138000"], T0 - timedelta(days=1))
    journey(engine, shop, "欢迎", WELCOME)
    assert advance_due(engine, T0) == 0


def test_the_worker_loop_enters_an_event_within_seconds(engine: Engine, shop: Workspace) -> None:
    import asyncio

    from echelon.journeys.runner import run_journeys

    journey(engine, shop, "欢迎", WELCOME)
    clock = [T0]

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_journeys(engine, stop, lambda: clock[0], poll_interval=0.05))
        await asyncio.sleep(0.2)
        events(engine, shop, "signup", ["13800138000"], T0)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if sent(engine):
                break
        stop.set()
        total = await task
        assert total.entered == 1

    asyncio.run(scenario())
    assert sent(engine) == [(e164("13800138000"), "hello", "queued", None)]


def test_a_late_committing_event_is_not_skipped(engine: Engine, shop: Workspace) -> None:
    """PostgreSQL commits ids out of order: an event whose transaction is still open
    holds the cursor back until it commits, so it is read, not jumped over."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: ids commit in order")
    from echelon.db.tables import contacts as contact_table
    from echelon.db.tables import events as event_table

    journey(engine, shop, "欢迎", WELCOME)
    runner = JourneyRunner(engine)
    runner.advance(T0)
    with engine.connect() as slow:
        transaction = slow.begin()
        contact_id = slow.execute(
            select(contact_table.c.id).where(contact_table.c.phone == e164("13800138000"))
        ).scalar_one()
        slow.execute(
            insert(event_table).values(
                workspace_id=shop.id, contact_id=contact_id, type="signup", occurred_at=T0,
                properties={}, event_key="late", created_at=T0,
            )
        )  # fmt: skip
        events(engine, shop, "signup", ["13800138001"], T0)  # a higher id, committed first
        assert runner.advance(T0 + HOUR).entered == 0  # held back while one may be missing
        transaction.commit()
    assert runner.advance(T0 + 2 * HOUR).entered == 2
