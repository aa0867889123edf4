"""Reading spreadsheet values: tables of what people write, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon.audience.fields import (
    BadValue,
    parse_amount_fen,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_event_type,
    parse_gender,
    parse_tags,
)
from echelon.audience.regions import canonical_province, split_region

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("cell", "fen"),
    [
        ("199", 19_900),
        ("199.5", 19_950),
        ("¥1,299.00", 129_900),
        ("￥88", 8_800),
        ("88元", 8_800),
        (12.34, 1_234),
        (0.1, 10),
        (7, 700),
        ("", None),
        (None, None),
    ],
)
def test_amounts_become_integer_fen(cell: object, fen: int | None) -> None:
    assert parse_amount_fen(cell, field="金额") == fen  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", ["-1", "1.234", "abc", "NaN", "1e400"])
def test_bad_amounts_are_refused(cell: str) -> None:
    with pytest.raises(BadValue, match="金额"):
        parse_amount_fen(cell, field="金额")


@given(st.decimals(min_value=0, max_value=100_000_000, places=2, allow_nan=False))
def test_any_two_place_amount_round_trips(yuan: Decimal) -> None:
    assert parse_amount_fen(str(yuan), field="金额") == int(yuan * 100)


@pytest.mark.parametrize(
    "cell",
    [
        "1990-05-17",
        "1990/5/17",
        "1990.05.17",
        "19900517",
        "1990年5月17日",
        "１９９０-０５-１７",
        datetime(1990, 5, 17, 8, 30),
        date(1990, 5, 17),
    ],
)
def test_dates_in_every_common_spelling(cell: object) -> None:
    assert parse_date(cell, field="生日") == date(1990, 5, 17)  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", ["17/05/1990", "1990-13-01", "明天"])
def test_unreadable_dates_name_the_field(cell: str) -> None:
    with pytest.raises(BadValue, match="生日"):
        parse_date(cell, field="生日")


def test_times_without_a_zone_are_read_in_the_workspace_zone() -> None:
    parsed = parse_datetime("2026-11-11 00:00", field="时间", zone=SHANGHAI)
    assert parsed == datetime(2026, 11, 10, 16, 0, tzinfo=UTC)
    explicit = parse_datetime("2026-11-11T00:00:00+00:00", field="时间", zone=SHANGHAI)
    assert explicit == datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cell", "gender"),
    [("男", "male"), ("F", "female"), ("女士", "female"), ("保密", None), ("", None)],
)
def test_gender(cell: str, gender: str | None) -> None:
    assert parse_gender(cell) == gender


@pytest.mark.parametrize(
    ("cell", "value"), [("是", True), ("Y", True), ("否", False), ("0", False), ("", None)]
)
def test_yes_no(cell: str, value: bool | None) -> None:
    assert parse_bool(cell, field="营销同意") is value


def test_tags_split_on_any_separator_and_keep_order() -> None:
    assert parse_tags("VIP|母婴，美妆;VIP、 新客") == ["VIP", "母婴", "美妆", "新客"]


@pytest.mark.parametrize(
    ("cell", "kind"),
    [("购买", "purchase"), ("加购", "cart_add"), ("Signup", "signup"), ("app_open", "app_open")],
)
def test_event_types_and_their_chinese_names(cell: str, kind: str) -> None:
    assert parse_event_type(cell) == kind


@pytest.mark.parametrize("cell", ["", "Bad Type!", "1abc", "x" * 40])
def test_bad_event_types(cell: str) -> None:
    with pytest.raises(BadValue):
        parse_event_type(cell)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("江苏省常州市", ("江苏省", "常州市")),
        ("广西南宁市", ("广西壮族自治区", "南宁市")),
        ("北京市", ("北京市", "北京市")),
        ("黑龙江省大兴安岭地区", ("黑龙江省", "大兴安岭地区")),
        ("内蒙古兴安盟", ("内蒙古自治区", "兴安盟")),
        ("中国", (None, None)),
    ],
)
def test_regions_split_into_official_province_and_city(
    text: str, expected: tuple[str | None, str | None]
) -> None:
    assert split_region(text) == expected


@pytest.mark.parametrize(
    ("text", "official"),
    [
        ("广东", "广东省"),
        ("新疆维吾尔自治区", "新疆维吾尔自治区"),
        ("上海", "上海市"),
        ("火星", None),
    ],
)
def test_province_spellings(text: str, official: str | None) -> None:
    assert canonical_province(text) == official
