"""The definition language: one valid example per kind, normalisation, errors that name
the node and the problem, presets, and the age rule."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.errors import InvalidInput
from echelon.segments.compiler import _birthday_for_age
from echelon.segments.models import InvalidDefinition, definition_json, parse_definition
from echelon.segments.presets import PRESETS, get_preset

ONE_PER_KIND: list[dict[str, Any]] = [
    {"kind": "attribute", "field": "province", "op": "in", "values": ["广东", "浙江省"]},
    {"kind": "attribute", "field": "attributes.会员等级", "op": "equals", "value": "金卡"},
    {"kind": "attribute", "field": "attributes.积分", "op": "range", "min": 1000},
    {"kind": "attribute", "field": "name", "op": "contains", "value": "张"},
    {"kind": "attribute", "field": "birthday", "op": "range", "min": "1990-01-01"},
    {"kind": "attribute", "field": "city", "op": "exists"},
    {"kind": "tag", "tags": ["VIP", "金卡"], "match": "all"},
    {"kind": "gender", "value": "female"},
    {"kind": "age", "min": 25, "max": 35},
    {"kind": "new_contact", "days": 7},
    {"kind": "consent", "purpose": "marketing", "state": "revoked"},
    {"kind": "suppressed", "kinds": ["opt_out"]},
    {"kind": "purchases", "measure": "days_since_last", "min": 90},
    {"kind": "purchases", "measure": "count", "days": 30, "min": 2},
    {"kind": "purchases", "measure": "total", "days": 365, "min": "2000"},
    {"kind": "purchases", "measure": "average", "days": 365, "min": 300},
    {"kind": "purchases", "measure": "coupon_share", "days": 365, "min": 0.5},
    {
        "kind": "event",
        "event": "purchase",
        "days": 30,
        "min": 1,
        "where": [{"property": "category", "op": "equals", "value": "母婴"}],
    },
    {"kind": "event", "event": "app_open", "days": 7, "min": 0, "max": 0},
    {"kind": "event_not_followed", "event": "cart_add", "hours": 24, "then_not": "purchase"},
    {"kind": "engagement", "action": "received", "days": 30, "min": 3},
    {"kind": "engagement", "action": "clicked", "days": 7},
    {"kind": "engagement", "action": "replied", "days": 30},
    {"kind": "segment", "segment": "高价值客户"},
    {"and": [{"kind": "gender", "value": "male"}, {"not": {"kind": "tag", "tags": ["VIP"]}}]},
    {"or": [{"kind": "age", "max": 18}, {"kind": "age", "min": 60}]},
]


@pytest.mark.parametrize("definition", ONE_PER_KIND)
def test_every_kind_parses_and_reads_back_equal(definition: dict[str, Any]) -> None:
    node = parse_definition(definition)
    stored = definition_json(node)
    assert parse_definition(stored) == node
    assert definition_json(parse_definition(stored)) == stored


def test_values_are_stored_canonical() -> None:
    stored = definition_json(
        parse_definition(
            {
                "and": [
                    {"kind": "attribute", "field": "province", "op": "equals", "value": "广东"},
                    {"kind": "attribute", "field": "carrier", "op": "in", "values": ["中国移动"]},
                    {
                        "kind": "attribute",
                        "field": "phone",
                        "op": "equals",
                        "value": "138-0013-8000",
                    },
                    {"kind": "gender", "value": "女"},
                    {"kind": "event", "event": "加购", "days": 1},
                    {"kind": "purchases", "measure": "total", "days": 365, "min": 2000},
                ]
            }
        )
    )
    assert stored == {
        "and": [
            {"kind": "attribute", "field": "province", "op": "equals", "value": "广东省"},
            {"kind": "attribute", "field": "carrier", "op": "in", "values": ["china_mobile"]},
            {"kind": "attribute", "field": "phone", "op": "equals", "value": "+8613800138000"},
            {"kind": "gender", "value": "female"},
            {"kind": "event", "event": "cart_add", "days": 1},
            {"kind": "purchases", "measure": "total", "days": 365, "min": 2000},
        ]
    }


@pytest.mark.parametrize(
    ("definition", "where", "what"),
    [
        ({"kind": "nope"}, "定义", "未知的条件类型「nope」"),
        ({"x": 1}, "定义", '须有 "kind"'),
        ({"and": []}, "定义 › and", "至少需要 1 项"),
        (
            {"and": [{"kind": "gender", "value": "male"}, {"kind": "age"}]},
            "定义 › and › 第 2 项（age）",
            "年龄须给出 min 和/或 max",
        ),
        (
            {"or": [{"kind": "attribute", "field": "province", "op": "equals", "value": "火星"}]},
            "定义 › or › 第 1 项（attribute）",
            "省份「火星」无法识别",
        ),
        (
            {"not": {"kind": "purchases", "measure": "count", "days": 0, "min": 1}},
            "定义 › not（purchases） › days",
            "须 ≥ 1",
        ),
        (
            {"kind": "purchases", "measure": "total", "min": "12.345"},
            "定义（purchases）",
            "最多两位小数",
        ),
        (
            {"kind": "purchases", "measure": "days_since_last", "days": 30, "min": 1},
            "定义（purchases）",
            "不接受 days/hours",
        ),
        ({"kind": "event", "event": "Bad Type!"}, "定义（event） › event", "事件类型"),
        ({"kind": "event", "event": "purchase", "min": 0}, "定义（event）", "人人都符合"),
        (
            {"kind": "event", "event": "purchase", "days": 1, "hours": 2},
            "定义（event）",
            "days 和 hours 只能给一个",
        ),
        (
            {"kind": "event_not_followed", "event": "cart_add", "then_not": "purchase"},
            "定义",
            "须给出 days 或 hours",
        ),
        ({"kind": "tag", "tags": ["VIP"], "colour": "red"}, "定义（tag） › colour", "不认识这一项"),
        (
            {"kind": "attribute", "field": "foo", "op": "exists"},
            "定义（attribute） › field",
            "字段「foo」未知",
        ),
        (
            {"kind": "attribute", "field": "name", "op": "range", "min": "a"},
            "定义（attribute）",
            "name 不支持 range",
        ),
        (
            {"kind": "attribute", "field": "attributes.积分", "op": "range", "min": 5, "max": "9"},
            "定义（attribute）",
            "同为数字或同为文字",
        ),
        (
            {
                "kind": "event",
                "event": "purchase",
                "where": [{"property": "amount", "op": "equals", "value": "1.999"}],
            },
            "定义（event） › where › 第 1 项",
            "最多两位小数",
        ),
        ({"kind": "engagement", "action": "opened"}, "定义（engagement） › action", "应为"),
    ],
)
def test_errors_name_the_node_and_the_problem(
    definition: dict[str, Any], where: str, what: str
) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition(definition)
    assert where in caught.value.message, caught.value.message
    assert what in caught.value.message, caught.value.message


def test_a_huge_definition_is_refused() -> None:
    many = {"or": [{"kind": "gender", "value": "male"}] * 250}
    with pytest.raises(InvalidDefinition, match="条件太多"):
        parse_definition(many)


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_every_preset_is_a_valid_definition(key: str) -> None:
    node = get_preset(key).definition()
    assert parse_definition(definition_json(node)) == node


def test_preset_parameters() -> None:
    high = definition_json(get_preset("high_value").definition({"threshold": "5000"}))
    assert high == {"kind": "purchases", "measure": "total", "days": 365, "min": 5000}
    assert get_preset("加购未付款").key == "cart_abandon"
    with pytest.raises(InvalidInput, match="没有参数 colour"):
        get_preset("high_value").definition({"colour": "1"})
    with pytest.raises(InvalidInput, match="应为数字"):
        get_preset("high_value").definition({"threshold": "很多"})
    with pytest.raises(InvalidDefinition, match="days"):
        get_preset("dormant").definition({"days": "1.5"})
    with pytest.raises(InvalidInput, match="预设「vip」不存在"):
        get_preset("vip")


def _age(birthday: date, today: date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


@given(
    birthday=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    today=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    years=st.integers(min_value=0, max_value=100),
)
def test_age_bound_is_the_latest_birthday_of_that_age(
    birthday: date, today: date, years: int
) -> None:
    assert (birthday <= _birthday_for_age(today, years)) == (_age(birthday, today) >= years)


def test_age_bound_on_leap_days() -> None:
    # Born on 29 Feb 2000: 17 on 28 Feb 2018, 18 from 1 Mar 2018.
    assert _birthday_for_age(date(2018, 2, 28), 18) == date(2000, 2, 28)
    assert _birthday_for_age(date(2018, 3, 1), 18) == date(2000, 3, 1)
    assert _birthday_for_age(date(2020, 2, 29), 18) == date(2002, 2, 28)
    assert _birthday_for_age(date(2020, 2, 29), 18) + timedelta(days=1) == date(2002, 3, 1)
