"""What the segment tests share: generated worlds (contacts and everything they did),
written to a database as the application stores them, and a plain-Python evaluation
of a definition over the same world — written from the grammar's documentation, not
from the compiler, so that the two can disagree.
"""

from __future__ import annotations

import csv
import itertools
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from sqlalchemy import Connection, insert

from echelon.db.outbox import messages, replies
from echelon.db.tables import consents, contact_tags, contacts, events, suppressions
from echelon.db.tracking import clicks, links
from echelon.segments.models import definition_json
from echelon.segments.presets import PRESETS

BASE_NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
ZONE = "Asia/Shanghai"
_PLAIN_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_keys = itertools.count()


# ---------------------------------------------------------------- a small shop

SHOP_NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SHOP_MEMBERS = [
    ["手机号", "姓名", "性别", "生日", "省份", "会员等级", "积分", "标签", "营销同意"],
    ["13800138000", "张三", "男", "1990-05-17", "广东", "金卡", "1200", "VIP", "是"],
    ["13900139000", "李四", "女", "2000-11-11", "广东", "银卡", "300", "", "是"],
    ["13300133000", "王五", "女", "1985-01-01", "浙江", "金卡", "80", "VIP", "否"],
    ["18600186000", "赵六", "", "", "", "", "", "", "是"],
]
# Shanghai times: 张三 bought twice lately; 李四 added to cart at 11:00 and did not pay;
# 王五 added to cart and paid afterwards; 赵六 bought once, long ago.
SHOP_ORDERS = [
    ["手机号", "事件类型", "时间", "金额", "品类", "优惠券"],
    ["13800138000", "购买", "2026-11-01 10:00", "800", "母婴", "D11"],
    ["13800138000", "购买", "2026-11-10 21:00", "1,500", "数码", ""],
    ["13900139000", "加购", "2026-11-11 11:00", "", "母婴", ""],
    ["13300133000", "加购", "2026-11-11 09:00", "", "服饰", ""],
    ["13300133000", "购买", "2026-11-11 09:30", "199", "服饰", ""],
    ["18600186000", "购买", "2026-05-01 10:00", "99", "食品", "D11"],
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


# ---------------------------------------------------------------- the world


@dataclass
class Person:
    phone: str
    name: str | None = None
    gender: str | None = None
    birthday: date | None = None
    province: str | None = None
    city: str | None = None
    carrier: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = BASE_NOW
    tags: set[str] = field(default_factory=set)
    # purpose -> "live" | "revoked" | "regranted" (revoked once, granted again)
    consents: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Happening:
    """An event of a person (index into World.people)."""

    person: int
    type: str
    at: datetime
    amount_fen: int | None = None
    category: str | None = None
    coupon_code: str | None = None
    order_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    person: int
    status: str
    done_at: datetime | None
    submitted_at: datetime | None


@dataclass(frozen=True)
class Reply:
    person: int | None
    at: datetime


@dataclass(frozen=True)
class Click:
    person: int
    at: datetime
    human: bool


@dataclass
class World:
    now: datetime
    people: list[Person]
    suppressed: set[tuple[str, str]]  # (phone, kind)
    happenings: list[Happening]
    sent: list[Sent]
    replies: list[Reply]
    clicks: list[Click] = field(default_factory=list)


# ---------------------------------------------------------------- generating worlds

MINUTE = timedelta(minutes=1)
# Offsets before now that sit on the windows' edges (1 h, 24 h, 7 d, 30 d) and around
# them; negative offsets are events after ``now``, which every window ignores.
EDGES = [
    timedelta(0),
    timedelta(hours=1),
    timedelta(hours=24),
    timedelta(days=7),
    timedelta(days=30),
]
OFFSETS = st.one_of(
    st.sampled_from(EDGES).flatmap(
        lambda edge: st.sampled_from(
            [edge - MINUTE, edge, edge + MINUTE, edge + timedelta(microseconds=1)]
        )
    ),
    st.integers(min_value=-3 * 24 * 60, max_value=120 * 24 * 60).map(
        lambda m: timedelta(minutes=m)
    ),
)
PROVINCES = st.sampled_from(["广东省", "浙江省", None])
CITIES = st.sampled_from(["深圳", "杭州", "广州市", None])
CARRIERS = st.sampled_from(["china_mobile", "china_unicom", "china_telecom", None])
TAGS = ["VIP", "新客", "母婴"]
EVENT_TYPES = ["purchase", "cart_add", "signup", "app_open"]
CATEGORIES = st.sampled_from(["母婴", "数码", None])
LEVELS = st.sampled_from(["金卡", "银卡", "", "金卡会员"])
POINTS = st.one_of(
    st.integers(min_value=-5, max_value=500),
    st.sampled_from(["120", "3.5", "-5", "12a", "1.", "", "0300", "99"]),
    # JSON numbers and booleans as an API or a spreadsheet stores them: a float that
    # only its full spelling tells apart, a whole float, a card number beyond 64 bits.
    st.sampled_from([3.5, 120.0, 0.30000000000000004, 99.99999999999999, True, False]),
    st.sampled_from([12345678901234567890, 9007199254740993]),
)


@st.composite
def people(draw: st.DrawFn, now: datetime) -> list[Person]:
    today = now.astimezone(ZoneInfo(ZONE)).date()
    found = []
    for i in range(draw(st.integers(min_value=0, max_value=8))):
        attributes: dict[str, Any] = {}
        if draw(st.booleans()):
            attributes["等级"] = draw(LEVELS)
        if draw(st.booleans()):
            attributes["积分"] = draw(POINTS)
        years = draw(st.integers(min_value=0, max_value=70))
        birthday = draw(
            st.one_of(
                st.none(),
                st.sampled_from([-1, 0, 1]).map(
                    lambda d, y=years: _years_before(today, y) + timedelta(days=d)
                ),
                st.sampled_from([date(2000, 2, 29), date(1996, 2, 29), date(1990, 3, 1)]),
            )
        )
        found.append(
            Person(
                phone=f"+8613800{i:06d}",
                name=draw(st.sampled_from(["张三", "李小四", "", None])),
                gender=draw(st.sampled_from(["male", "female", None])),
                birthday=birthday,
                province=draw(PROVINCES),
                city=draw(CITIES),
                carrier=draw(CARRIERS),
                attributes=attributes,
                created_at=now - draw(OFFSETS),
                tags=set(draw(st.lists(st.sampled_from(TAGS), max_size=3))),
                consents={
                    purpose: state
                    for purpose in ("marketing", "service")
                    if (state := draw(st.sampled_from([None, "live", "revoked", "regranted"])))
                },
            )
        )
    return found


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return date(today.year - years, 2, 28)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    now = BASE_NOW + timedelta(hours=draw(st.sampled_from([0, 15, 16, 20])))
    crowd = draw(people(now))
    n = len(crowd)
    happenings: list[Happening] = []
    sent: list[Sent] = []
    answered: list[Reply] = []
    clicked: list[Click] = []
    if n:
        who = st.integers(min_value=0, max_value=n - 1)
        for _ in range(draw(st.integers(min_value=0, max_value=30))):
            kind = draw(st.sampled_from(EVENT_TYPES))
            priced = kind == "purchase" and draw(st.integers(0, 5)) > 0
            happenings.append(
                Happening(
                    person=draw(who),
                    type=kind,
                    at=now - draw(OFFSETS),
                    amount_fen=draw(st.sampled_from([100, 9_900, 10_000, 25_050, 50_000]))
                    if priced
                    else None,
                    category=draw(CATEGORIES),
                    coupon_code=draw(st.sampled_from(["D11", None])),
                    order_id=draw(st.sampled_from(["A1", None])),
                    properties=draw(
                        st.sampled_from(
                            [
                                {},
                                {"渠道": "app"},
                                {"渠道": "web"},
                                {"渠道": 3},
                                {"渠道": 2.0000000000000004},
                            ]
                        )
                    ),
                )
            )
        for _ in range(draw(st.integers(min_value=0, max_value=6))):
            done = now - draw(OFFSETS)
            sent.append(
                Sent(
                    person=draw(who),
                    status=draw(st.sampled_from(["delivered", "undelivered", "submitted"])),
                    done_at=draw(st.sampled_from([done, None])),
                    submitted_at=done - timedelta(minutes=2),
                )
            )
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            answered.append(Reply(draw(st.one_of(st.none(), who)), now - draw(OFFSETS)))
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            clicked.append(Click(draw(who), now - draw(OFFSETS), draw(st.booleans())))
    phones = [p.phone for p in crowd] + ["+8613999999999"]
    suppressed = set(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(phones), st.sampled_from(["opt_out", "blacklist", "dnc"])
                ),
                max_size=3,
            )
        )
    )
    return World(now, crowd, suppressed, happenings, sent, answered, clicked)


# ---------------------------------------------------------------- generating definitions


def _window(draw: st.DrawFn) -> dict[str, int]:
    return draw(
        st.sampled_from([{}, {"days": 1}, {"days": 7}, {"days": 30}, {"hours": 1}, {"hours": 24}])
    )


@st.composite
def event_filters(draw: st.DrawFn) -> list[dict[str, Any]]:
    choices = [
        {"property": "category", "op": "equals", "value": "母婴"},
        {"property": "category", "op": "in", "values": ["母婴", "数码"]},
        {"property": "category", "op": "exists"},
        {"property": "coupon_code", "op": "exists"},
        {"property": "amount", "op": "range", "min": 99, "max": 250.5},
        {"property": "amount", "op": "equals", "value": "100"},
        {"property": "amount", "op": "exists"},
        {"property": "amount", "op": "in", "values": [1, "250.5"]},
        {"property": "渠道", "op": "equals", "value": "app"},
        {"property": "渠道", "op": "range", "min": 2},
        {"property": "order_id", "op": "contains", "value": "A"},
    ]
    return draw(st.lists(st.sampled_from(choices), max_size=2))


@st.composite
def conditions(draw: st.DrawFn, saved: list[str]) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "attribute",
                "tag",
                "gender",
                "age",
                "new_contact",
                "consent",
                "suppressed",
                "purchases",
                "event",
                "event_not_followed",
                "engagement",
                "preset",
                *(["segment"] if saved else []),
            ]
        )
    )
    if kind == "preset":
        return draw(presets())
    if kind == "attribute":
        return draw(attributes())
    if kind == "tag":
        return {
            "kind": "tag",
            "tags": draw(st.lists(st.sampled_from(TAGS), min_size=1, max_size=3)),
            "match": draw(st.sampled_from(["any", "all"])),
        }
    if kind == "gender":
        return {
            "kind": "gender",
            "value": draw(st.sampled_from(["male", "female", "unknown", "女"])),
        }
    if kind == "age":
        low = draw(st.one_of(st.none(), st.integers(0, 40)))
        high = draw(st.one_of(st.none(), st.integers(low or 0, 70)))
        if low is None and high is None:
            low = 18
        return {"kind": "age", "min": low, "max": high}
    if kind == "new_contact":
        return {"kind": "new_contact", "days": draw(st.sampled_from([1, 7, 30]))}
    if kind == "consent":
        return {
            "kind": "consent",
            "purpose": draw(st.sampled_from(["marketing", "service"])),
            "state": draw(st.sampled_from(["granted", "revoked", "never"])),
        }
    if kind == "suppressed":
        kinds = draw(
            st.one_of(
                st.none(), st.lists(st.sampled_from(["opt_out", "dnc", "blacklist"]), min_size=1)
            )
        )
        return {"kind": "suppressed", "kinds": kinds}
    if kind == "purchases":
        return draw(purchases())
    if kind == "event":
        low = draw(st.integers(0, 3))
        high = draw(st.one_of(st.none(), st.integers(max(low, 1), 4)))
        return {
            "kind": "event",
            "event": draw(st.sampled_from([*EVENT_TYPES, "*", "购买"])),
            "min": low,
            "max": high if high is not None or low else 2,
            **_window(draw),
            "where": draw(event_filters()),
        }
    if kind == "event_not_followed":
        window = _window(draw) or {"hours": 24}
        return {
            "kind": "event_not_followed",
            "event": draw(st.sampled_from(["cart_add", "app_open"])),
            "then_not": draw(st.sampled_from(["purchase", "*"])),
            "within_hours": draw(st.sampled_from([None, 1, 24])),
            **window,
            "where": draw(event_filters()),
            "then_where": draw(event_filters()),
        }
    if kind == "engagement":
        low = draw(st.integers(0, 2))
        return {
            "kind": "engagement",
            "action": draw(st.sampled_from(["received", "clicked", "replied"])),
            "min": low,
            "max": draw(st.one_of(st.none(), st.integers(max(low, 1), 3))) if low else 1,
            **_window(draw),
        }
    return {"kind": "segment", "segment": draw(st.sampled_from(saved))}


# Parameters that make each built-in preset discriminate in a generated world (prices
# of ¥1–¥500, events up to 120 days back); None keeps the preset's default.
PRESET_PARAMS: dict[str, dict[str, list[str | None]]] = {
    "dormant": {"days": [None, "1", "7", "30"]},
    "inactive_6m": {"days": [None, "1", "7", "30"]},
    "active": {"days": [None, "7"], "times": [None, "1", "3"]},
    "high_value": {"threshold": [None, "1", "99", "250.5", "600"], "days": [None, "30"]},
    "cart_abandon": {"hours": [None, "1", "720"]},
    "price_sensitive": {"share": [None, "0.25", "1"], "days": [None, "30"]},
    "new_signups": {"days": [None, "1", "30"]},
}


@st.composite
def presets(draw: st.DrawFn) -> dict[str, Any]:
    """A built-in preset's definition, as ``segments create --preset`` copies it."""
    key = draw(st.sampled_from(sorted(PRESETS)))
    chosen = {
        name: value
        for name, values in PRESET_PARAMS[key].items()
        if (value := draw(st.sampled_from(values))) is not None
    }
    return definition_json(PRESETS[key].definition(chosen))


@st.composite
def attributes(draw: st.DrawFn) -> dict[str, Any]:
    field_ = draw(
        st.sampled_from(
            [
                "name",
                "province",
                "city",
                "carrier",
                "phone",
                "birthday",
                "attributes.等级",
                "attributes.积分",
                "attributes.无",
            ]
        )
    )
    ops = {
        "name": ["equals", "in", "contains", "exists"],
        "province": ["equals", "in", "exists"],
        "city": ["equals", "in", "contains", "exists"],
        "carrier": ["equals", "in", "exists"],
        "phone": ["equals", "contains", "exists"],
        "birthday": ["range", "equals", "exists"],
    }.get(field_, ["equals", "in", "contains", "exists", "range"])
    op = draw(st.sampled_from(ops))
    samples = {
        "name": ["张三", "李小四", "小"],
        "province": ["广东", "浙江省"],
        "city": ["深圳", "广州", "杭州"],
        "carrier": ["china_mobile", "中国联通"],
        "phone": ["13800000001", "+8613800000002", "800"],
        "birthday": ["2000-02-29", "1990-03-01", "1980-01-01"],
        "attributes.等级": ["金卡", "银卡", "卡"],
        "attributes.积分": ["120", "3.5", "99", 120, "-5", "0.30000000000000004", "true"],
        "attributes.无": ["x"],
    }[field_]
    if op == "contains":
        return {
            "kind": "attribute",
            "field": field_,
            "op": op,
            "value": draw(st.sampled_from([str(s) for s in samples])),
        }
    if field_ == "phone":
        samples = samples[:2]
    if op == "equals":
        return {
            "kind": "attribute",
            "field": field_,
            "op": op,
            "value": draw(st.sampled_from(samples)),
        }
    if op == "in":
        return {
            "kind": "attribute",
            "field": field_,
            "op": op,
            "values": draw(st.lists(st.sampled_from(samples), min_size=1, max_size=3)),
        }
    if op == "exists":
        return {"kind": "attribute", "field": field_, "op": op}
    if field_ == "birthday" or (draw(st.booleans()) and field_ != "attributes.积分"):
        text_bounds = (
            ["1990-01-01", "2000-02-29", "2010-12-31"]
            if field_ == "birthday"
            else ["0", "3", "金", "银卡", "1"]
        )
        low, high = sorted(draw(st.lists(st.sampled_from(text_bounds), min_size=2, max_size=2)))
        bounds = draw(st.sampled_from([{"min": low}, {"max": high}, {"min": low, "max": high}]))
    else:
        low_n, high_n = sorted(
            draw(
                st.lists(
                    st.sampled_from([-5, 0, 0.3, 3.5, 99, 100, 120, 400]), min_size=2, max_size=2
                )
            )
        )
        bounds = draw(
            st.sampled_from([{"min": low_n}, {"max": high_n}, {"min": low_n, "max": high_n}])
        )
    return {"kind": "attribute", "field": field_, "op": "range", **bounds}


@st.composite
def purchases(draw: st.DrawFn) -> dict[str, Any]:
    measure = draw(
        st.sampled_from(["days_since_last", "count", "total", "average", "coupon_share"])
    )
    where = draw(event_filters())
    if measure == "days_since_last":
        low = draw(st.one_of(st.none(), st.sampled_from([0, 1, 7, 30])))
        high = draw(st.one_of(st.none(), st.sampled_from([1, 7, 30, 90])))
        if low is None and high is None:
            low = 7
        if low is not None and high is not None and low > high:
            low, high = high, low
        return {"kind": "purchases", "measure": measure, "min": low, "max": high, "where": where}
    scale = {
        "count": [0, 1, 2, 3],
        "total": [0, 1, 99, "100", 250.5, 600],
        "average": [0, 1, 99, 100, 250.5],
        "coupon_share": [0, 0.25, 0.5, 1],
    }[measure]
    low, high = sorted(draw(st.lists(st.sampled_from(scale), min_size=2, max_size=2)), key=Decimal)
    bounds = draw(st.sampled_from([{"min": low}, {"max": high}, {"min": low, "max": high}]))
    if (
        measure in ("count", "total")
        and not Decimal(str(bounds.get("min", 0)))
        and "max" not in bounds
    ):
        bounds["max"] = high
    return {"kind": "purchases", "measure": measure, **_window(draw), **bounds, "where": where}


def definitions(saved: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        conditions(saved),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=4).map(lambda nodes: {"and": nodes}),
            st.lists(inner, min_size=1, max_size=3).map(lambda nodes: {"or": nodes}),
            inner.map(lambda node: {"not": node}),
        ),
        max_leaves=6,
    )


# ---------------------------------------------------------------- writing worlds


def write_world(conn: Connection, workspace_id: int, world: World) -> list[int]:
    """Store ``world`` in the workspace as the application would; the contact ids."""
    ids = []
    for person in world.people:
        ids.append(
            conn.execute(
                insert(contacts)
                .values(
                    workspace_id=workspace_id,
                    phone=person.phone,
                    name=person.name,
                    gender=person.gender,
                    birthday=person.birthday,
                    province=person.province,
                    city=person.city,
                    carrier=person.carrier,
                    attributes=person.attributes,
                    created_at=person.created_at,
                    updated_at=person.created_at,
                )
                .returning(contacts.c.id)
            ).scalar_one()
        )
    for contact_id, person in zip(ids, world.people, strict=True):
        for tag in person.tags:
            conn.execute(
                insert(contact_tags).values(
                    contact_id=contact_id, tag=tag, workspace_id=workspace_id
                )
            )
        for purpose, state in person.consents.items():
            grant = {
                "workspace_id": workspace_id,
                "contact_id": contact_id,
                "purpose": purpose,
                "source": "test",
            }
            if state in ("revoked", "regranted"):
                conn.execute(
                    insert(consents).values(
                        **grant,
                        granted_at=world.now - timedelta(days=9),
                        revoked_at=world.now - timedelta(days=8),
                    )
                )
            if state in ("live", "regranted"):
                conn.execute(
                    insert(consents).values(**grant, granted_at=world.now - timedelta(days=1))
                )
    for phone, kind in world.suppressed:
        conn.execute(
            insert(suppressions).values(
                workspace_id=workspace_id,
                phone=phone,
                kind=kind,
                source="test",
                created_at=world.now,
            )
        )
    for h in world.happenings:
        conn.execute(
            insert(events).values(
                workspace_id=workspace_id,
                contact_id=ids[h.person],
                type=h.type,
                occurred_at=h.at,
                amount_fen=h.amount_fen,
                order_id=h.order_id,
                category=h.category,
                coupon_code=h.coupon_code,
                properties=h.properties,
                event_key=f"k{next(_keys)}",
                created_at=world.now,
            )
        )
    for s in world.sent:
        conn.execute(
            insert(messages).values(
                workspace_id=workspace_id,
                contact_id=ids[s.person],
                phone=world.people[s.person].phone,
                kind="marketing",
                text="hi",
                text_hash="h",
                parts=1,
                cost_e4=0,
                status=s.status,
                due_at=world.now - timedelta(days=200),
                submitted_at=s.submitted_at,
                done_at=s.done_at,
                created_at=world.now,
                updated_at=world.now,
            )
        )
    for r in world.replies:
        conn.execute(
            insert(replies).values(
                workspace_id=workspace_id,
                phone="+8613800000000" if r.person is None else world.people[r.person].phone,
                contact_id=None if r.person is None else ids[r.person],
                text="好",
                received_at=r.at,
            )
        )
    for c in world.clicks:
        link_id = conn.execute(
            insert(links)
            .values(
                workspace_id=workspace_id,
                code=uuid.uuid4().hex[:8],
                contact_id=ids[c.person],
                target_url="https://shop.example/",
                created_at=world.now,
            )
            .returning(links.c.id)
        ).scalar_one()
        conn.execute(
            insert(clicks).values(
                workspace_id=workspace_id,
                link_id=link_id,
                contact_id=ids[c.person],
                clicked_at=c.at,
                human=c.human,
                bot_reason=None if c.human else "agent",
            )
        )
    return ids


# ---------------------------------------------------------------- the plain evaluation


class Evaluation:
    """Who is a member of a definition, person by person, in plain Python."""

    def __init__(self, world: World, saved: dict[int | str, dict[str, Any]]) -> None:
        self.world = world
        self.now = world.now
        self.today = world.now.astimezone(ZoneInfo(ZONE)).date()
        self.saved = saved

    def members(self, node: dict[str, Any]) -> set[int]:
        return {i for i in range(len(self.world.people)) if self.holds(node, i)}

    def holds(self, node: dict[str, Any], i: int) -> bool:
        if "and" in node:
            return all(self.holds(n, i) for n in node["and"])
        if "or" in node:
            return any(self.holds(n, i) for n in node["or"])
        if "not" in node:
            return not self.holds(node["not"], i)
        person = self.world.people[i]
        kind = node["kind"]
        if kind == "attribute":
            return _passes(_attribute_of(person, node["field"]), node)
        if kind == "tag":
            wanted = set(node["tags"])
            return (
                wanted <= person.tags if node.get("match") == "all" else bool(wanted & person.tags)
            )
        if kind == "gender":
            value = {"女": "female", "unknown": None}.get(node["value"], node["value"])
            return person.gender == value
        if kind == "age":
            if person.birthday is None:
                return False
            b, t = person.birthday, self.today
            age = t.year - b.year - ((t.month, t.day) < (b.month, b.day))
            return _between(age, node.get("min"), node.get("max"))
        if kind == "new_contact":
            return self.now - timedelta(days=node["days"]) < person.created_at <= self.now
        if kind == "consent":
            state = person.consents.get(node.get("purpose", "marketing"))
            return {
                "granted": state in ("live", "regranted"),
                "revoked": state == "revoked",
                "never": state is None,
            }[node.get("state", "granted")]
        if kind == "suppressed":
            kinds = node.get("kinds")
            return any(
                p == person.phone and (kinds is None or k in kinds)
                for p, k in self.world.suppressed
            )
        if kind == "purchases":
            return self._purchases(node, i)
        if kind == "event":
            rows = self._events(i, node["event"], node.get("where", []), _window_of(node))
            return _between(len(rows), node.get("min", 1), node.get("max"))
        if kind == "event_not_followed":
            return self._not_followed(node, i)
        if kind == "engagement":
            return _between(self._engagements(node, i), node.get("min", 1), node.get("max"))
        if kind == "segment":
            return self.holds(self.saved[node["segment"]], i)
        raise AssertionError(kind)

    def _in_window(self, at: datetime, window: timedelta | None) -> bool:
        return at <= self.now and (window is None or at > self.now - window)

    def _events(
        self, i: int, event: str, where: list[dict[str, Any]], window: timedelta | None
    ) -> list[Happening]:
        event = {"购买": "purchase", "加购": "cart_add"}.get(event, event)
        return [
            h
            for h in self.world.happenings
            if h.person == i
            and (event == "*" or h.type == event)
            and self._in_window(h.at, window)
            and all(_event_passes(h, f) for f in where)
        ]

    def _purchases(self, node: dict[str, Any], i: int) -> bool:
        rows = self._events(i, "purchase", node.get("where", []), _window_of(node))
        low, high = _fraction(node.get("min")), _fraction(node.get("max"))
        measure = node["measure"]
        if measure == "count":
            return _between(len(rows), low, high)
        amounts = [h.amount_fen for h in rows if h.amount_fen is not None]
        if measure == "total":
            return _between(sum(amounts), _times(low, 100), _times(high, 100))
        if measure == "average":
            if not amounts:
                return False
            return _between(
                Fraction(sum(amounts), len(amounts)), _times(low, 100), _times(high, 100)
            )
        if measure == "coupon_share":
            if not rows:
                return False
            return _between(
                Fraction(sum(h.coupon_code is not None for h in rows), len(rows)), low, high
            )
        if not rows:
            return False
        since = self.now - max(h.at for h in rows)
        return (low is None or since >= timedelta(days=int(low))) and (
            high is None or since <= timedelta(days=int(high))
        )

    def _not_followed(self, node: dict[str, Any], i: int) -> bool:
        within = node.get("within_hours")
        for first in self._events(i, node["event"], node.get("where", []), _window_of(node)):
            later = self._events(i, node["then_not"], node.get("then_where", []), None)
            if not any(
                first.at < h.at and (within is None or h.at <= first.at + timedelta(hours=within))
                for h in later
            ):
                return True
        return False

    def _engagements(self, node: dict[str, Any], i: int) -> int:
        window = _window_of(node)
        if node["action"] == "received":
            return sum(
                1
                for s in self.world.sent
                if s.person == i
                and s.status == "delivered"
                and (at := s.done_at or s.submitted_at) is not None
                and self._in_window(at, window)
            )
        if node["action"] == "clicked":
            return sum(
                1
                for c in self.world.clicks
                if c.person == i and c.human and self._in_window(c.at, window)
            )
        return sum(1 for r in self.world.replies if r.person == i and self._in_window(r.at, window))


def _window_of(node: dict[str, Any]) -> timedelta | None:
    if node.get("days"):
        return timedelta(days=node["days"])
    if node.get("hours"):
        return timedelta(hours=node["hours"])
    return None


def _fraction(value: Any) -> Fraction | None:
    return None if value is None else Fraction(Decimal(str(value)))


def _times(value: Fraction | None, factor: int) -> Fraction | None:
    return None if value is None else value * factor


def _between(value: Any, low: Any, high: Any) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_PROVINCES = {"广东": "广东省", "浙江": "浙江省"}
_CARRIER_LABELS = {
    "中国移动": "china_mobile",
    "中国联通": "china_unicom",
    "中国电信": "china_telecom",
}


def _normalised(field_: str, value: Any) -> Any:
    if not isinstance(value, str):
        return str(value)
    if field_ == "province":
        return _PROVINCES.get(value, value)
    if field_ == "carrier":
        return _CARRIER_LABELS.get(value, value)
    if field_ == "phone":
        return value if value.startswith("+") else "+86" + value
    return value


def _attribute_of(person: Person, field_: str) -> str | None:
    if field_.startswith("attributes."):
        return _json_text(person.attributes.get(field_.removeprefix("attributes.")))
    value = getattr(person, field_)
    return value.isoformat() if isinstance(value, date) else value


def _passes(value: str | None, node: dict[str, Any], field_: str | None = None) -> bool:
    field_ = field_ or node.get("field", "")
    op = node["op"]
    if op == "exists":
        return value is not None and value != ""
    if value is None:
        return False
    if op == "equals":
        return value == _normalised(field_, node["value"])
    if op == "in":
        return value in {_normalised(field_, v) for v in node["values"]}
    if op == "contains":
        return str(node["value"]) in value
    low, high = node.get("min"), node.get("max")
    if isinstance(low if low is not None else high, str):
        return _between(value, low, high)
    if not _PLAIN_NUMBER.match(value):
        return False
    return _between(Fraction(Decimal(value)), _fraction(low), _fraction(high))


def _event_passes(h: Happening, node: dict[str, Any]) -> bool:
    name = node["property"]
    if name == "amount":
        if node["op"] == "exists":
            return h.amount_fen is not None
        if h.amount_fen is None:
            return False
        fen = Fraction(h.amount_fen, 100)
        if node["op"] == "equals":
            return fen == _fraction(node["value"])
        if node["op"] == "in":
            return fen in {_fraction(v) for v in node["values"]}
        return _between(fen, _fraction(node.get("min")), _fraction(node.get("max")))
    if name in ("category", "coupon_code", "order_id"):
        return _passes(getattr(h, name), node, name)
    return _passes(_json_text(h.properties.get(name)), node, name)
