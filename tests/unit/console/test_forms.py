"""The segment builder's rows and the definition JSON, and the wizard's fields."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from echelon.console.forms import (
    definition_from_rows,
    definition_text,
    parse_amount,
    parse_count,
    parse_definition_text,
    parse_local,
    rows_from_definition,
    rows_from_form,
)
from echelon.errors import InvalidInput
from echelon.segments.models import definition_json, parse_definition

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_rows_come_in_index_order_and_empty_rows_are_dropped() -> None:
    form = {
        "c10.kind": "tag",
        "c10.tags": " vip ",
        "c2.kind": "consent",
        "c2.state": "granted",
        "c3.kind": "",
        "name": "VIP",
        "c1.bogus-name": "x",
    }
    assert rows_from_form(form) == [
        {"kind": "consent", "state": "granted"},
        {"kind": "tag", "tags": "vip"},
    ]


@pytest.mark.parametrize(
    ("rows", "combinator", "expected"),
    [
        (
            [{"kind": "consent", "purpose": "marketing", "state": "granted"}],
            "and",
            {"kind": "consent", "purpose": "marketing", "state": "granted"},
        ),
        (
            [{"kind": "tag", "tags": "vip、老客, 新客", "match": "all", "not": "on"}],
            "or",
            {"not": {"kind": "tag", "tags": ["vip", "老客", "新客"], "match": "all"}},
        ),
        (
            [
                {"kind": "purchases", "measure": "total", "min": "1,000.50", "days": "365"},
                {"kind": "event", "event": "cart_add", "min": "2", "hours": "24"},
            ],
            "or",
            {
                "or": [
                    {
                        "kind": "purchases",
                        "measure": "total",
                        "min": Decimal("1000.50"),
                        "days": 365,
                    },
                    {"kind": "event", "event": "cart_add", "min": 2, "hours": 24},
                ]
            },
        ),
        (
            [
                {
                    "kind": "attribute",
                    "field": "province",
                    "op": "in",
                    "value": "广东, 浙江",
                    "min": "3",
                }
            ],
            "and",
            {"kind": "attribute", "field": "province", "op": "in", "values": ["广东", "浙江"]},
        ),
        (
            [
                {
                    "kind": "attribute",
                    "field": "attributes.积分",
                    "op": "range",
                    "min": "100",
                    "value": "x",
                }
            ],
            "and",
            {"kind": "attribute", "field": "attributes.积分", "op": "range", "min": 100},
        ),
        (
            [{"kind": "attribute", "field": "birthday", "op": "range", "min": "1990-01-01"}],
            "and",
            {"kind": "attribute", "field": "birthday", "op": "range", "min": "1990-01-01"},
        ),
    ],
)
def test_rows_make_a_definition_the_language_accepts(
    rows: list[dict[str, str]], combinator: str, expected: dict[str, object]
) -> None:
    definition = definition_from_rows(combinator, rows)
    assert definition == expected
    parse_definition(definition)


def test_a_bad_value_is_passed_on_for_the_language_to_name() -> None:
    definition = definition_from_rows("and", [{"kind": "new_contact", "days": "七"}])
    assert definition == {"kind": "new_contact", "days": "七"}
    with pytest.raises(InvalidInput, match="days"):
        parse_definition(definition)


@pytest.mark.parametrize(
    ("combinator", "rows"),
    [("and", []), ("xor", [{"kind": "gender", "value": "female"}]), ("and", [{"kind": "magic"}])],
)
def test_builder_refusals(combinator: str, rows: list[dict[str, str]]) -> None:
    with pytest.raises(InvalidInput):
        definition_from_rows(combinator, rows)


@pytest.mark.parametrize(
    "rows",
    [
        [{"kind": "consent", "purpose": "marketing", "state": "granted"}],
        [
            {"kind": "gender", "value": "female"},
            {"kind": "tag", "tags": "vip、老客", "match": "all", "not": "on"},
            {"kind": "purchases", "measure": "count", "min": "2", "days": "30"},
            {"kind": "engagement", "action": "clicked", "min": "1", "days": "7"},
            {"kind": "attribute", "field": "city", "op": "equals", "value": "杭州"},
        ],
    ],
)
def test_a_flat_definition_comes_back_as_the_same_rows(rows: list[dict[str, str]]) -> None:
    stored = definition_json(parse_definition(definition_from_rows("or", rows)))
    back = rows_from_definition(stored)
    assert back is not None
    combinator, again = back
    original = parse_definition(definition_from_rows("or", rows))
    assert parse_definition(definition_from_rows(combinator, again)) == original


def test_nested_or_filtered_definitions_are_edited_as_json() -> None:
    nested = {"and": [{"or": [{"kind": "gender", "value": "male"}]}]}
    filtered = {
        "kind": "event",
        "event": "purchase",
        "where": [{"property": "category", "op": "equals", "value": "鞋"}],
    }
    assert rows_from_definition(nested) is None
    assert rows_from_definition(filtered) is None
    assert parse_definition_text(definition_text(filtered)) == filtered
    with pytest.raises(InvalidInput, match="JSON"):
        parse_definition_text('{"kind": ')


def test_local_times_amounts_and_counts() -> None:
    assert parse_local("2026-11-11T20:00", SHANGHAI) == datetime(
        2026, 11, 11, 20, 0, tzinfo=SHANGHAI
    )
    assert parse_local("  ", SHANGHAI) is None
    assert parse_amount("¥1,000.50") == Decimal("1000.50")
    assert parse_amount("") is None
    assert parse_count("1,200", field="x") == 1200
    assert parse_count(None, field="x") is None
    for bad in ("abc", "1.234", "NaN"):
        with pytest.raises(InvalidInput):
            parse_amount(bad)
    with pytest.raises(InvalidInput):
        parse_local("11月11日", SHANGHAI)
    with pytest.raises(InvalidInput):
        parse_count("3.5", field="每秒条数")
