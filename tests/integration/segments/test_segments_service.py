"""Segments through the service, on both databases, with contacts and events imported
the way a shop imports them."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from segments_support import SHOP_NOW
from sqlalchemy import Engine, func, select

from echelon.audience.consent import revoke_consent
from echelon.audience.records import upsert_contacts
from echelon.audience.suppression import add_suppression
from echelon.db.segments import segments
from echelon.errors import InvalidInput
from echelon.segments.models import InvalidDefinition
from echelon.segments.service import (
    SegmentNotFound,
    count_segment,
    create_from_preset,
    create_segment,
    edit_segment,
    export_members,
    get_segment,
    list_members,
    list_segments,
)
from echelon.workspaces.service import Workspace

NOW = SHOP_NOW


def phones(engine: Engine, ws: Workspace, definition: object, now: datetime = NOW) -> list[str]:
    found = list_members(engine, workspace_id=ws.id, definition=definition, now=now)
    return [m.phone[3:] for m in found]


def test_rfm_and_behaviour_conditions_on_imported_data(engine: Engine, shop: Workspace) -> None:
    bought_twice = {"kind": "purchases", "measure": "count", "days": 30, "min": 2}
    assert phones(engine, shop, bought_twice) == ["13800138000"]
    big = {"kind": "purchases", "measure": "total", "days": 365, "min": 2000}
    assert phones(engine, shop, big) == ["13800138000"]
    dormant = {"kind": "purchases", "measure": "days_since_last", "min": 90}
    assert phones(engine, shop, dormant) == ["18600186000"]
    baby = {
        "kind": "event",
        "event": "purchase",
        "days": 30,
        "where": [{"property": "category", "op": "equals", "value": "母婴"}],
    }
    assert phones(engine, shop, baby) == ["13800138000"]
    coupons = {"kind": "purchases", "measure": "coupon_share", "days": 365, "min": 0.5}
    assert phones(engine, shop, coupons) == ["13800138000", "18600186000"]
    cart = {"kind": "event_not_followed", "event": "cart_add", "hours": 24, "then_not": "purchase"}
    assert phones(engine, shop, cart) == ["13900139000"]
    gold_women = {
        "and": [
            {"kind": "attribute", "field": "attributes.会员等级", "op": "equals", "value": "金卡"},
            {"kind": "gender", "value": "女"},
        ]
    }
    assert phones(engine, shop, gold_women) == ["13300133000"]
    points = {
        "kind": "attribute",
        "field": "attributes.积分",
        "op": "range",
        "min": 100,
        "max": 1000,
    }
    assert phones(engine, shop, points) == ["13900139000"]
    # 李四 turns 26 on 2026-11-11 (Shanghai): it is her birthday today.
    assert phones(engine, shop, {"kind": "age", "min": 26, "max": 30}) == ["13900139000"]
    no_vip = {"not": {"kind": "tag", "tags": ["VIP"]}}
    assert phones(engine, shop, no_vip) == ["13900139000", "18600186000"]


def test_time_comes_from_now_never_the_database_clock(engine: Engine, shop: Workspace) -> None:
    cart = {"kind": "event_not_followed", "event": "cart_add", "hours": 24, "then_not": "purchase"}
    # At 09:15 Shanghai 李四 had not added to cart yet, and 王五 had not paid yet.
    assert phones(engine, shop, cart, NOW - timedelta(hours=2, minutes=45)) == ["13300133000"]
    # Two days later the 24-hour window has passed for both.
    assert phones(engine, shop, cart, NOW + timedelta(days=2)) == []
    dormant = {"kind": "purchases", "measure": "days_since_last", "min": 90}
    assert phones(engine, shop, dormant, NOW + timedelta(days=365)) == [
        "13800138000",
        "13300133000",
        "18600186000",
    ]


def test_consent_and_suppression_conditions(engine: Engine, shop: Workspace) -> None:
    add_suppression(
        engine,
        workspace_id=shop.id,
        phone="13800138000",
        kind="opt_out",
        source="reply",
        reason=None,
        now=NOW,
    )
    revoke_consent(
        engine,
        workspace_id=shop.id,
        phone="13900139000",
        purpose="marketing",
        source="reply",
        now=NOW,
    )
    assert phones(engine, shop, {"kind": "suppressed"}) == ["13800138000"]
    assert phones(engine, shop, {"kind": "suppressed", "kinds": ["dnc"]}) == []
    assert phones(engine, shop, {"kind": "consent", "state": "revoked"}) == ["13900139000"]
    assert phones(engine, shop, {"kind": "consent", "state": "never"}) == ["13300133000"]
    reachable = {"and": [{"kind": "consent"}, {"not": {"kind": "suppressed"}}]}
    assert phones(engine, shop, reachable) == ["18600186000"]


def test_count_gives_the_breakdown(engine: Engine, shop: Workspace) -> None:
    counted = count_segment(
        engine,
        workspace_id=shop.id,
        definition={"kind": "purchases", "measure": "count", "min": 1},
        now=NOW,
    )
    assert counted.total == 3
    assert counted.by_carrier == {"china_mobile": 1, "china_telecom": 1, "china_unicom": 1}
    assert sum(counted.by_province.values()) == 3
    assert counted.by_province["广东省"] == 1


def test_create_show_list_edit(engine: Engine, shop: Workspace) -> None:
    created = create_segment(
        engine,
        workspace_id=shop.id,
        name="  广东金卡 ",
        definition={"kind": "attribute", "field": "province", "op": "equals", "value": "广东"},
        description="华南大促",
        now=NOW,
    )
    assert created.name == "广东金卡"
    assert created.definition["value"] == "广东省"
    assert get_segment(engine, workspace_id=shop.id, segment=str(created.id)) == created
    with pytest.raises(InvalidInput, match="已存在"):
        create_segment(
            engine, workspace_id=shop.id, name="广东金卡", definition={"kind": "consent"}, now=NOW
        )
    # A segment may not contain itself.
    with pytest.raises(InvalidDefinition, match="循环引用"):
        edit_segment(
            engine,
            workspace_id=shop.id,
            segment="广东金卡",
            definition={"or": [{"kind": "segment", "segment": created.id}]},
            now=NOW,
        )
    later = NOW + timedelta(hours=1)
    edited = edit_segment(
        engine,
        workspace_id=shop.id,
        segment="广东金卡",
        definition={
            "and": [
                {"kind": "attribute", "field": "province", "op": "equals", "value": "广东"},
                {
                    "kind": "attribute",
                    "field": "attributes.会员等级",
                    "op": "equals",
                    "value": "金卡",
                },
            ]
        },
        now=later,
    )
    assert (edited.updated_at, edited.created_at) == (later, NOW)
    assert phones(engine, shop, {"kind": "segment", "segment": "广东金卡"}) == ["13800138000"]
    assert [s.name for s in list_segments(engine, workspace_id=shop.id)] == ["广东金卡"]


def test_references_are_resolved_and_circles_refused(engine: Engine, shop: Workspace) -> None:
    gold = create_segment(
        engine,
        workspace_id=shop.id,
        name="金卡",
        definition={
            "kind": "attribute",
            "field": "attributes.会员等级",
            "op": "equals",
            "value": "金卡",
        },
        now=NOW,
    )
    southern = create_segment(
        engine,
        workspace_id=shop.id,
        name="广东金卡",
        definition={
            "and": [
                {"kind": "segment", "segment": "金卡"},
                {"kind": "attribute", "field": "province", "op": "equals", "value": "广东"},
            ]
        },
        now=NOW,
    )
    # Stored by id: renaming the referenced segment does not break it.
    assert southern.definition["and"][0] == {"kind": "segment", "segment": gold.id}
    edit_segment(engine, workspace_id=shop.id, segment="金卡", name="金卡会员", now=NOW)
    assert phones(engine, shop, {"kind": "segment", "segment": "广东金卡"}) == ["13800138000"]
    with pytest.raises(InvalidDefinition, match="循环引用"):
        edit_segment(
            engine,
            workspace_id=shop.id,
            segment=gold.id,
            definition={"kind": "segment", "segment": "广东金卡"},
            now=NOW,
        )
    with pytest.raises(InvalidDefinition, match="引用的分群「不存在的」不存在"):
        create_segment(
            engine,
            workspace_id=shop.id,
            name="x",
            definition={"kind": "segment", "segment": "不存在的"},
            now=NOW,
        )
    with pytest.raises(SegmentNotFound):
        get_segment(engine, workspace_id=shop.id, segment="x")


def test_bad_input_changes_nothing(engine: Engine, shop: Workspace) -> None:
    with pytest.raises(InvalidDefinition):
        create_segment(
            engine, workspace_id=shop.id, name="坏", definition={"and": [{"kind": "age"}]}, now=NOW
        )
    create_segment(engine, workspace_id=shop.id, name="好", definition={"kind": "consent"}, now=NOW)
    with pytest.raises(InvalidDefinition):
        edit_segment(
            engine,
            workspace_id=shop.id,
            segment="好",
            name="新名字",
            definition={"or": []},
            now=NOW,
        )
    with engine.connect() as conn:
        assert conn.execute(select(segments.c.name, segments.c.definition)).all() == [
            ("好", {"kind": "consent"})
        ]
        assert conn.execute(select(func.count()).select_from(segments)).scalar_one() == 1


def test_presets_are_editable_copies(engine: Engine, shop: Workspace) -> None:
    copied = create_from_preset(
        engine, workspace_id=shop.id, preset="high_value", params={"threshold": "1000"}, now=NOW
    )
    assert (copied.name, copied.preset) == ("高价值客户", "high_value")
    assert phones(engine, shop, {"kind": "segment", "segment": copied.id}) == ["13800138000"]
    edit_segment(
        engine,
        workspace_id=shop.id,
        segment="高价值客户",
        definition={"kind": "purchases", "measure": "total", "days": 365, "min": 50},
        now=NOW,
    )
    assert len(phones(engine, shop, {"kind": "segment", "segment": copied.id})) == 3
    assert get_segment(engine, workspace_id=shop.id, segment=copied.id).preset == "high_value"
    # The preset itself is untouched: a second copy has the original definition.
    again = create_from_preset(
        engine, workspace_id=shop.id, preset="high_value", name="高价值2", now=NOW
    )
    assert again.definition["min"] == 2000
    cart = create_from_preset(engine, workspace_id=shop.id, preset="cart_abandon", now=NOW)
    assert count_segment(engine, workspace_id=shop.id, segment=cart.name, now=NOW).total == 1


def test_members_page_by_id_and_export(engine: Engine, shop: Workspace, tmp_path: Path) -> None:
    everyone = {"kind": "consent", "state": "granted"}
    first = list_members(engine, workspace_id=shop.id, definition=everyone, now=NOW, limit=2)
    rest = list_members(
        engine, workspace_id=shop.id, definition=everyone, now=NOW, after_id=first[-1].id, limit=2
    )
    ids = [m.id for m in first + rest]
    assert ids == sorted(ids) and len(ids) == 3
    create_segment(engine, workspace_id=shop.id, name="同意", definition=everyone, now=NOW)
    path = tmp_path / "members.csv"
    assert export_members(engine, workspace_id=shop.id, segment="同意", path=path, now=NOW) == 3
    with path.open(encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["phone", "name", "gender"]
    assert rows[1][:3] == ["+8613800138000", "张三", "男"]
    with pytest.raises(InvalidInput, match="每页人数"):
        list_members(engine, workspace_id=shop.id, definition=everyone, now=NOW, limit=0)


@pytest.mark.parametrize(
    ("preset", "at", "expected"),
    [
        # 赵六 last bought on 2026-05-01: 194 days before.
        ("dormant", NOW, ["18600186000"]),
        # Everyone joined 30 days ago, so nobody is inactive yet (new contacts are not).
        ("inactive_6m", NOW, []),
        # 175 days on, only 赵六 has done nothing for 180 days.
        ("inactive_6m", NOW + timedelta(days=175), ["18600186000"]),
        ("active", NOW, ["13800138000"]),
        # ¥800 + ¥1,500 in the year.
        ("high_value", NOW, ["13800138000"]),
        # 李四 added to cart at 11:00 and did not pay; 王五 paid half an hour after.
        ("cart_abandon", NOW, ["13900139000"]),
        # 张三: 2 orders, 1 with a coupon; 赵六 used a coupon but bought once only.
        ("price_sensitive", NOW, ["13800138000"]),
        ("new_signups", NOW, []),
        # Five days after the import, everyone joined within the last 7 days.
        (
            "new_signups",
            NOW - timedelta(days=25),
            ["13800138000", "13900139000", "13300133000", "18600186000"],
        ),
    ],
)
def test_each_preset_finds_its_customers(
    engine: Engine, shop: Workspace, preset: str, at: datetime, expected: list[str]
) -> None:
    copied = create_from_preset(engine, workspace_id=shop.id, preset=preset, now=NOW)
    assert phones(engine, shop, copied.definition, at) == expected
    counted = count_segment(engine, workspace_id=shop.id, segment=copied.id, now=at)
    assert counted.total == len(expected)


def test_json_numbers_compare_by_their_full_spelling(engine: Engine, shop: Workspace) -> None:
    # Sent through the API as JSON numbers: a computed score, a 20-digit card number.
    upsert_contacts(
        engine,
        workspace_id=shop.id,
        records=[
            {"phone": "13800138000", "attributes": {"评分": 0.30000000000000004}},
            {"phone": "13900139000", "attributes": {"评分": 0.3, "卡号": 12345678901234567890}},
            {"phone": "13300133000", "attributes": {"评分": True}},
        ],
        consent_source=None,
        list_name=None,
        now=NOW,
    )

    def attribute(op: str, **test: object) -> dict[str, object]:
        return {"kind": "attribute", "field": "attributes.评分", "op": op, **test}

    assert phones(engine, shop, attribute("equals", value="0.3")) == ["13900139000"]
    assert phones(engine, shop, attribute("range", max=0.3)) == ["13900139000"]
    assert phones(engine, shop, attribute("range", min=0.30000000000000001)) == [
        "13800138000",
        "13900139000",
    ]
    assert phones(engine, shop, attribute("equals", value="true")) == ["13300133000"]
    card = {
        "kind": "attribute",
        "field": "attributes.卡号",
        "op": "equals",
        "value": "12345678901234567890",
    }
    assert phones(engine, shop, card) == ["13900139000"]
